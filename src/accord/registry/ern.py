"""DDEX ERN 4.3 NewReleaseMessage import: a label's release delivery into an Accord delivery.

:mod:`accord.registry.ern_message` reads the message (header, parties, sound recordings,
releases, deals) into frozen records. :func:`ern_to_delivery` turns it into an Accord delivery document
(``docs/delivery-format.md``) and lists, as :class:`~accord.errors.Problem` values, what an
ERN message cannot say and Accord needs: a recording without an ISRC, the musical works a
recording embodies (ERN 4.3 carries no work link and no publishing shares), or a duration.
:func:`import_ern` imports it through the ordinary delivery importer, all or nothing.

ERN deals (streaming, download, ad-supported …) are a DSP's terms, not a licence for AI
training or generation: they are read but never turned into Accord agreements. See
``docs/ern.md``.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accord import identifiers
from accord.errors import InvalidIdentifier, Problem, Rejected, ValidationError
from accord.registry.ern_message import PARTY_ID, WRITER_ROLES, ErnMessage, ErnRelease, read_ern

if TYPE_CHECKING:
    from accord.registry.importer import ImportReport
    from accord.registry.store import Store

# --- into an Accord delivery ----------------------------------------------------------------------


@dataclass(frozen=True)
class ErnConversion:
    """An ERN message as an Accord delivery document.

    Attributes:
        document: the ``catalog.json`` document (recordings that could not be completed left out).
        problems: what keeps a recording out (no ISRC, no work, no duration, no artist); any
            problem rejects an import unless ``skip_incomplete`` is asked for.
        notes: what was read but deliberately not imported (videos, images, deals, writers, an
            invalid DPID, a creation time without offset read as UTC).
    """

    document: dict[str, Any]
    problems: tuple[Problem, ...]
    notes: tuple[Problem, ...]


def _problem(file: str, where: str, field: str, value: object, expected: str, code: str) -> Problem:
    return Problem(file=file, location=where, field=field, value=str(value), expected=expected, code=code)


def _valid_dpid(value: str) -> str:
    from accord.identifiers import validate_dpid

    try:
        return validate_dpid(value)
    except ValidationError:
        return ""


def _identifier_problem(kind: identifiers.IdentifierKind, value: str) -> str:
    """What is wrong with an identifier, as an expectation ("" when it is valid or absent)."""
    if not value:
        return ""
    try:
        identifiers.validate(kind, value)
    except InvalidIdentifier as exc:
        return f"a valid {identifiers.IdentifierKind(kind).value.upper()}: {exc}"
    return ""


def _release_identifiers(message: ErnMessage, file_name: str, problems: list[Problem]) -> dict[tuple[str, str], str]:
    """Each release's GRid and ICPN (UPC/EAN), compact; an invalid one is a problem (code ``invalid_identifier``)."""
    out: dict[tuple[str, str], str] = {}
    for index, release in enumerate(message.releases):
        where = f"ReleaseList/Release[{index + 1}] ({release.reference})"
        for field, kind, value in (
            ("GRid", identifiers.IdentifierKind.GRID, release.grid),
            ("ICPN", identifiers.IdentifierKind.GTIN, release.icpn),
        ):
            if bad := _identifier_problem(kind, value):
                problems.append(_problem(file_name, where, field, value, bad, "invalid_identifier"))
            elif value:
                out[(release.reference, field)] = identifiers.validate(kind, value)
    return out


def ern_to_delivery(
    message: ErnMessage,
    *,
    works_by_isrc: Mapping[str, Sequence[str]] | None = None,
    master_owner: str | None = None,
    file_name: str = "",
) -> ErnConversion:
    """Turn an ERN message into an Accord delivery document.

    Party ids are ``{sender DPID}:{PartyReference}`` (the message sender's own party id is its
    DPID). Each sound recording becomes a recording with its ISRC, display title, display
    artists, duration, genre (from its release) and ERN details kept as metadata; its master
    share is 100% ``master_owner`` (default: the message sender, who delivers the release as its
    owner); its works are ``works_by_isrc[isrc]``, ids of works the registry holds or that a
    publisher delivers, because ERN 4.3 links no musical work and carries no publishing share.
    """
    works_by_isrc = works_by_isrc or {}
    problems: list[Problem] = []
    notes: list[Problem] = []
    sender = message.sender_dpid or "ERN-SENDER"
    prefix = message.sender_dpid or "ERN"
    owner = master_owner or sender
    parties = {p.reference: p for p in message.parties}
    genre_of: dict[str, str] = {}
    release_of: dict[str, ErnRelease] = {}
    for each in message.releases:
        for ref in each.resource_references:
            genre_of.setdefault(ref, each.genre)
            release_of.setdefault(ref, each)
    release_ids = _release_identifiers(message, file_name, problems)
    used: dict[str, str] = {}  # ERN party reference → Accord party id
    recordings: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, rec in enumerate(message.sound_recordings):
        where = f"ResourceList/SoundRecording[{index + 1}] ({rec.reference})"
        missing: list[Problem] = []
        bad_isrc = _identifier_problem(identifiers.IdentifierKind.ISRC, rec.isrc)
        if not rec.isrc:
            ids = ", ".join(v for _, v in rec.proprietary_ids) or "none"
            missing.append(_problem(file_name, where, "ISRC", f"proprietary ids: {ids}", "an ISRC", "ern_no_isrc"))
        elif bad_isrc:
            missing.append(_problem(file_name, where, "ISRC", rec.isrc, bad_isrc, "invalid_identifier"))
        elif rec.isrc in seen:
            missing.append(_problem(file_name, where, "ISRC", rec.isrc, "each ISRC once per message", "ern_dup_isrc"))
        if rec.isrc and not bad_isrc and not works_by_isrc.get(rec.isrc):
            expected = "the work ids it embodies (ERN 4.3 carries none): pass works_by_isrc"
            missing.append(_problem(file_name, where, "works", "", expected, "ern_no_works"))
        if rec.duration_ms is None or rec.duration_ms <= 0:
            missing.append(_problem(file_name, where, "Duration", rec.duration_ms, "a duration > 0", "ern_no_duration"))
        artists = rec.artist_references or tuple(r for r, role in rec.contributors if role not in WRITER_ROLES)
        unknown = [a for a in artists if a not in parties]
        if not artists or unknown:
            value = ", ".join(unknown) or "none"
            missing.append(_problem(file_name, where, "DisplayArtist", value, "artists in PartyList", "ern_no_artist"))
        for ref, role in rec.contributors:
            if role in WRITER_ROLES:
                expected = "writers are registered with the works, not from ERN"
                notes.append(_problem(file_name, where, "Contributor", f"{ref} ({role})", expected, "ern_writer"))
        if missing:
            problems.extend(missing)
            continue
        seen.add(rec.isrc)
        for ref in artists:
            used[ref] = f"{prefix}:{ref}"
        release = release_of.get(rec.reference)
        metadata = {
            "ern_message_id": message.message_id,
            "ern_resource_reference": rec.reference,
            "display_artist": rec.display_artist_name,
            "p_line": rec.p_line,
            "release_title": release.title if release else "",
            "release_grid": release_ids.get((release.reference, "GRid"), "") if release else "",
            "release_icpn": release_ids.get((release.reference, "ICPN"), "") if release else "",
        }
        recordings.append(
            {
                "isrc": rec.isrc,
                "title": rec.title,
                "artists": [used[a] for a in artists],
                "duration_ms": rec.duration_ms,
                **({"genre": genre_of[rec.reference].lower()} if genre_of.get(rec.reference) else {}),
                "works": list(works_by_isrc[rec.isrc]),
                "shares": [{"party": owner, "share": "100"}],
                "metadata": {k: v for k, v in metadata.items() if v},
            }
        )
    if not message.sound_recordings:
        where = "ResourceList"
        problems.append(_problem(file_name, where, "SoundRecording", 0, "at least one sound recording", "ern_empty"))
    for tag, ref in message.other_resources:
        expected = "sound recordings only (videos, images and texts are not imported)"
        notes.append(_problem(file_name, f"ResourceList/{tag} ({ref})", tag, ref, expected, "ern_resource_skipped"))
    if message.deals:
        expected = "an Accord agreement: DSP deal terms are not a licence for AI training or generation"
        notes.append(_problem(file_name, "DealList", "Deal", len(message.deals), expected, "ern_deals_not_agreements"))
    sender_party: dict[str, Any] = {"id": sender, "kind": "label", "name": message.sender_name or sender}
    if _valid_dpid(message.sender_dpid):
        sender_party["dpid"] = _valid_dpid(message.sender_dpid)
    elif message.sender_dpid:
        expected = "a valid DDEX party id (kept as the party id, not as its DPID)"
        notes.append(_problem(file_name, "MessageHeader/MessageSender", "PartyId", message.sender_dpid, expected,
                              "ern_bad_dpid"))  # fmt: skip
    out_parties = [sender_party]
    for ref, party_id in sorted(used.items(), key=lambda item: item[1]):
        if not PARTY_ID.match(party_id):
            expected = "a party id of at most 64 letters, digits, '.', '_', ':' or '-'"
            problems.append(_problem(file_name, f"PartyList ({ref})", "PartyReference", party_id, expected, "ern_id"))
        entry: dict[str, Any] = {"id": party_id, "kind": "artist", "name": parties[ref].name or ref}
        if _valid_dpid(parties[ref].id_of("DPID")):
            entry["dpid"] = _valid_dpid(parties[ref].id_of("DPID"))
        out_parties.append(entry)
    created = message.created
    if created and not re.search(r"(Z|[+-]\d{2}:?\d{2})$", created):
        notes.append(_problem(file_name, "MessageHeader", "MessageCreatedDateTime", created,
                              "a date-time with an offset; read as UTC", "ern_created_utc"))  # fmt: skip
        created += "Z"
    document = {
        "accord_delivery": "1.0",
        "delivery_id": f"ERN-{message.message_id or message.thread_id or 'unnamed'}",
        "sender": sender,
        "created": created,
        "parties": out_parties,
        "recordings": recordings,
    }
    return ErnConversion(document, tuple(problems), tuple(notes))


def import_ern(
    store: Store,
    path: Path | str,
    *,
    works_by_isrc: Mapping[str, Sequence[str]] | None = None,
    master_owner: str | None = None,
    skip_incomplete: bool = False,
    actor: str = "operator",
    as_party: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> ImportReport:
    """Import an ERN 4.3 message through the delivery importer (all or nothing); ``as_party``
    and ``progress`` as for :func:`~accord.registry.importer.import_delivery` (the party's standing is checked).

    Raises:
        Rejected: the conversion found problems (unless ``skip_incomplete``: then the
            incomplete recordings are left out), or the delivery importer refused it.
    """
    from accord.registry.importer import import_delivery

    path = Path(path)
    conversion = ern_to_delivery(
        read_ern(path), works_by_isrc=works_by_isrc, master_owner=master_owner, file_name=path.name
    )
    # A bad party id or no recording at all spoils the whole message; under skip_incomplete an
    # incomplete recording (no or bad ISRC, no works ...) is left out, and so is a bad release GRid/ICPN
    # (the recordings are imported without it).
    blocking = [p for p in conversion.problems if not skip_incomplete or p.code in ("ern_id", "ern_empty")]
    if blocking or not conversion.document["recordings"]:
        raise Rejected(f"ERN message {path.name}", list(blocking or conversion.problems))
    with tempfile.TemporaryDirectory(prefix="accord-ern-") as folder:
        doc = json.dumps(conversion.document, indent=2, sort_keys=True, ensure_ascii=False)
        (Path(folder) / "catalog.json").write_text(doc, encoding="utf-8")
        return import_delivery(store, Path(folder), actor=actor, as_party=as_party, progress=progress)
