"""DDEX ERN 4.3 NewReleaseMessage import: a label's release delivery into an Accord delivery.

:func:`read_ern` reads the message (header, parties, sound recordings, releases, deals) into
frozen records, once :mod:`accord.registry.ern_schema` has checked it as untrusted XML and
against the ERN 4.3 subset schema. :func:`ern_to_delivery` turns it into an Accord delivery document
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
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accord import identifiers
from accord.errors import InvalidIdentifier, Problem, Rejected, ValidationError
from accord.registry.ern_schema import load_ern_xml

if TYPE_CHECKING:
    from accord.registry.importer import ImportReport
    from accord.registry.store import Store

WRITER_ROLES = frozenset({"Composer", "Lyricist", "ComposerLyricist", "Writer", "Author", "Librettist", "Arranger"})
"""ERN contributor roles that make a party a writer in Accord."""

_DURATION = re.compile(r"^P(?:(?P<d>\d+)D)?T?(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?$")
_PARTY_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


@dataclass(frozen=True)
class ErnParty:
    """A party of the PartyList.

    Attributes:
        reference: the message-local ``PartyReference``.
        ids: ``(kind, value)`` pairs: ``("DPID", …)``, ``("ISNI", …)``, ``("IPI", …)`` or
            ``("Proprietary:<namespace>", …)``.
    """

    reference: str
    name: str
    ids: tuple[tuple[str, str], ...]

    def id_of(self, kind: str) -> str:
        """The first id of a kind, ``""`` if none."""
        return next((value for k, value in self.ids if k == kind), "")


@dataclass(frozen=True)
class ErnFile:
    """A delivered file of a resource: its URI and, when given, its hash."""

    uri: str
    hash_algorithm: str
    hash_value: str


@dataclass(frozen=True)
class ErnSoundRecording:
    """A SoundRecording of the ResourceList.

    Attributes:
        isrc: ``""`` when the recording has only proprietary ids.
        contributors: ``(party reference, role)`` pairs (role ``""`` when not given).
        duration_ms: the ISO 8601 ``Duration`` in milliseconds, ``None`` when absent.
    """

    reference: str
    isrc: str
    proprietary_ids: tuple[tuple[str, str], ...]
    title: str
    display_artist_name: str
    artist_references: tuple[str, ...]
    contributors: tuple[tuple[str, str], ...]
    duration_ms: int | None
    p_line: str
    files: tuple[ErnFile, ...]


@dataclass(frozen=True)
class ErnRelease:
    """A Release of the ReleaseList (GRid / ICPN, title, labels, genre, the resources it contains)."""

    reference: str
    grid: str
    icpn: str
    title: str
    label_references: tuple[str, ...]
    genre: str
    resource_references: tuple[str, ...]


@dataclass(frozen=True)
class ErnDeal:
    """One Deal of a ReleaseDeal: territories, commercial models, use types and validity."""

    release_reference: str
    territories: tuple[str, ...]
    excluded_territories: tuple[str, ...]
    commercial_models: tuple[str, ...]
    use_types: tuple[str, ...]
    start: str
    end: str


@dataclass(frozen=True)
class ErnMessage:
    """An ERN 4.3 NewReleaseMessage, as far as Accord reads it.

    Attributes:
        other_resources: ``(element, reference)`` of resources that are not sound recordings
            (videos, images, texts), which Accord does not import.
    """

    message_id: str
    thread_id: str
    profile: str
    created: str
    sender_dpid: str
    sender_name: str
    recipient_dpid: str
    recipient_name: str
    parties: tuple[ErnParty, ...]
    sound_recordings: tuple[ErnSoundRecording, ...]
    other_resources: tuple[tuple[str, str], ...]
    releases: tuple[ErnRelease, ...]
    deals: tuple[ErnDeal, ...]


def _text(node: ET.Element | None, path: str) -> str:
    if node is None:
        return ""
    return (node.findtext(path) or "").strip()


def _all(node: ET.Element, path: str) -> tuple[str, ...]:
    return tuple((e.text or "").strip() for e in node.findall(path) if (e.text or "").strip())


def _default(node: ET.Element, path: str, leaf: str = "") -> str:
    """The ``IsDefault="true"`` occurrence of a repeated element, else the first."""
    found = node.findall(path)
    chosen = next((e for e in found if e.get("IsDefault") == "true"), found[0] if found else None)
    if chosen is None:
        return ""
    return _text(chosen, leaf) if leaf else (chosen.text or "").strip()


def duration_ms(text: str, *, field: str = "Duration") -> int:
    """ISO 8601 duration (``PT4M23.583S``, ``P0DT1H2M3S``) to whole milliseconds (half up)."""
    m = _DURATION.match(text.strip())
    if not m or not any(m.groupdict().values()):
        raise ValidationError(f"{field}: {text!r} is not an ISO 8601 duration like PT3M21S", field=field, value=text)
    seconds = Decimal(m["s"] or 0) + 60 * (int(m["m"] or 0) + 60 * (int(m["h"] or 0) + 24 * int(m["d"] or 0)))
    return int((seconds * 1000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _ids(node: ET.Element | None) -> tuple[tuple[str, str], ...]:
    if node is None:
        return ()
    out: list[tuple[str, str]] = []
    for child in node:
        value = (child.text or "").strip()
        if not value:
            continue
        if child.tag == "ProprietaryId":
            out.append((f"Proprietary:{child.get('Namespace', '')}", value))
        elif child.tag in ("DPID", "ISNI", "ISRC", "GRid", "ICPN"):
            out.append((child.tag, value))
        elif child.tag in ("IpiNameNumber", "IPI"):
            out.append(("IPI", value))
    return tuple(out)


def _party(node: ET.Element) -> ErnParty:
    ids: list[tuple[str, str]] = []
    for pid in node.findall("PartyId"):
        if len(pid) == 0 and (pid.text or "").strip():  # a bare <PartyId> is a DPID
            ids.append(("DPID", (pid.text or "").strip()))
        ids.extend(_ids(pid))
    return ErnParty(_text(node, "PartyReference"), _default(node, "PartyName", "FullName"), tuple(ids))


def _recording(node: ET.Element) -> ErnSoundRecording:
    edition = node.find("SoundRecordingEdition")
    ids = _ids(edition.find("ResourceId") if edition is not None else None)
    files = tuple(
        ErnFile(_text(f, "URI"), _text(f, "HashSum/Algorithm"), _text(f, "HashSum/HashSumValue"))
        for f in node.iterfind("SoundRecordingEdition/TechnicalDetails/DeliveryFile/File")
    )
    duration = _text(node, "Duration")
    title = _default(node, "DisplayTitle", "TitleText") or _text(node, "DisplayTitleText")
    return ErnSoundRecording(
        reference=_text(node, "ResourceReference"),
        isrc=next((v for k, v in ids if k == "ISRC"), ""),
        proprietary_ids=tuple((k, v) for k, v in ids if k.startswith("Proprietary:")),
        title=title,
        display_artist_name=_default(node, "DisplayArtistName"),
        artist_references=_all(node, "DisplayArtist/ArtistPartyReference"),
        contributors=tuple(
            (_text(c, "ContributorPartyReference"), _text(c, "Role")) for c in node.findall("Contributor")
        ),
        duration_ms=duration_ms(duration, field=f"{_text(node, 'ResourceReference')}.Duration") if duration else None,
        p_line=_text(edition, "PLine/PLineText"),
        files=files,
    )


def _release(node: ET.Element) -> ErnRelease:
    ids = dict(_ids(node.find("ReleaseId")))
    return ErnRelease(
        reference=_text(node, "ReleaseReference"),
        grid=ids.get("GRid", ""),
        icpn=ids.get("ICPN", ""),
        title=_default(node, "DisplayTitle", "TitleText") or _text(node, "DisplayTitleText"),
        label_references=_all(node, "ReleaseLabelReference"),
        genre=_default(node, "Genre", "GenreText"),
        resource_references=_all(node, ".//ReleaseResourceReference"),
    )


def parse_ern(data: bytes, name: str = "<ern>") -> ErnMessage:
    """Parse an ERN 4.3 NewReleaseMessage: checked as untrusted XML and against the ERN 4.3 subset
    schema first (:func:`accord.registry.ern_schema.load_ern_xml`), then read into records.

    Raises:
        ValidationError: too large, not XML, a DTD or entity declaration, nested too deep, not an
            ERN 4.3 NewReleaseMessage, a schema violation (with its element path), or a duration
            that is not ISO 8601.
    """
    root = load_ern_xml(data, name)
    header = root.find("MessageHeader")
    resources = root.find("ResourceList")
    deals = [
        ErnDeal(
            release_reference=_text(rd, "DealReleaseReference"),
            territories=_all(deal, "DealTerms/TerritoryCode"),
            excluded_territories=_all(deal, "DealTerms/ExcludedTerritoryCode"),
            commercial_models=_all(deal, "DealTerms/CommercialModelType"),
            use_types=_all(deal, "DealTerms/UseType"),
            start=_text(deal, "DealTerms/ValidityPeriod/StartDate")
            or _text(deal, "DealTerms/ValidityPeriod/StartDateTime"),
            end=_text(deal, "DealTerms/ValidityPeriod/EndDate") or _text(deal, "DealTerms/ValidityPeriod/EndDateTime"),
        )
        for rd in root.iterfind("DealList/ReleaseDeal")
        for deal in rd.findall("Deal")
    ]
    children = list(resources) if resources is not None else []
    return ErnMessage(
        message_id=_text(header, "MessageId"),
        thread_id=_text(header, "MessageThreadId"),
        profile=root.get("ReleaseProfileVersionId", ""),
        created=_text(header, "MessageCreatedDateTime"),
        sender_dpid=_text(header, "MessageSender/PartyId"),
        sender_name=_text(header, "MessageSender/PartyName/FullName"),
        recipient_dpid=_text(header, "MessageRecipient/PartyId"),
        recipient_name=_text(header, "MessageRecipient/PartyName/FullName"),
        parties=tuple(_party(p) for p in root.iterfind("PartyList/Party")),
        sound_recordings=tuple(_recording(r) for r in children if r.tag == "SoundRecording"),
        other_resources=tuple((r.tag, _text(r, "ResourceReference")) for r in children if r.tag != "SoundRecording"),
        releases=tuple(_release(r) for r in root.iterfind("ReleaseList/Release")),
        deals=tuple(deals),
    )


def read_ern(path: Path | str) -> ErnMessage:
    """Read an ERN 4.3 message file; see :func:`parse_ern`."""
    path = Path(path)
    return parse_ern(path.read_bytes(), path.name)


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
        if not _PARTY_ID.match(party_id):
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
