"""Validators for catalog items (sources, parties, works, recordings).

Each ``read_*`` turns one located item into a domain record or ``None``, appending
every problem it finds; cross-references (a party, work or source named somewhere
else) are checked afterwards by :func:`check_references`, against the delivery and the
registry together. See ``docs/delivery-format.md`` for the rules.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path

from accord.errors import Problem
from accord.identifiers import IdentifierKind
from accord.registry.delivery import PARTY_FIELDS, Item
from accord.registry.entities import (
    PPM_WHOLE,
    MediaRef,
    Party,
    PartyKind,
    Recording,
    Share,
    Source,
    Work,
)
from accord.registry.fields import MAX_LIST, FieldReader, text_problem
from accord.registry.media import sha256_file

SHA256 = re.compile(r"^[0-9a-f]{64}$")
MEDIA_KINDS = ("midi", "audio")
MAX_DURATION_MS = 7 * 24 * 3600 * 1000
"""The longest recording accepted: one week, in milliseconds."""
MAX_METADATA = 100
"""The most metadata entries on one recording."""
METADATA_KEY = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")
"""A metadata key: like an id."""
MAX_MEDIA_PATH = 1_024
"""The longest media path, in characters."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def read_source(item: Item, problems: list[Problem]) -> Source | None:
    r = FieldReader(item, problems, allowed=("id", "title", "origin", "terms", "public_domain"))
    sid, title = r.ident("id"), r.text("title")
    origin, terms = r.text("origin", required=False) or "", r.text("terms", required=False) or ""
    pd = r.boolean("public_domain")
    if not r.ok or sid is None or title is None:
        return None
    return Source(sid, title, origin, terms, pd)


def read_party(item: Item, problems: list[Problem]) -> Party | None:
    r = FieldReader(item, problems, allowed=PARTY_FIELDS)
    pid, kind, name = r.ident("id"), r.choice("kind", PartyKind), r.text("name")
    ipi = r.identifier("ipi", IdentifierKind.IPI_NAME)
    isni = r.identifier("isni", IdentifierKind.ISNI)
    dpid = r.identifier("dpid", IdentifierKind.DPID)
    territory = r.country("territory")
    disclose = r.boolean("disclose", default=True)
    if not r.ok or pid is None or kind is None or name is None:
        return None
    return Party(pid, kind, name, ipi, isni, dpid, territory, disclose)


def _shares(r: FieldReader, key: str = "shares") -> tuple[Share, ...] | None:
    value = r.raw(key)
    if not isinstance(value, list) or not value:
        r.fail(
            key,
            value,
            "a non-empty list of {party, share}",
            "missing_field" if not value else "wrong_type",
        )
        return None
    if len(value) > MAX_LIST:
        r.fail(key, f"{len(value)} shares", f"at most {MAX_LIST:,} shares", "invalid_value")
        return None
    shares: dict[str, int] = {}
    for i, obj in enumerate(value):
        loc = obj.get("__loc__") if isinstance(obj, dict) else None
        got = r.share(obj, f"{key}[{i}]", loc)
        if got is None:
            continue
        party, ppm = got
        if party in shares:
            r.fail(
                f"{key}[{i}].party",
                party,
                "each party listed once per set of shares",
                "duplicate",
                loc,
            )
            continue
        shares[party] = ppm
    if not r.ok:
        return None
    total = sum(shares.values())
    if total != PPM_WHOLE:
        pct = f"{total / 10_000:.4f}".rstrip("0").rstrip(".")
        r.fail(
            key,
            f"{pct}%",
            f"shares summing to exactly 100% (they sum to {total:,} ppm, {pct}%)",
            "shares_sum",
        )
        return None
    return tuple(Share(p, s) for p, s in sorted(shares.items()))


def read_work(item: Item, problems: list[Problem]) -> Work | None:
    r = FieldReader(item, problems, allowed=("id", "iswc", "title", "writers", "shares"))
    wid, title = r.ident("id"), r.text("title")
    iswc = r.identifier("iswc", IdentifierKind.ISWC)
    writers = r.text_list("writers")
    shares = _shares(r)
    if not r.ok or wid is None or title is None or writers is None or shares is None:
        return None
    return Work(wid, title, iswc, tuple(writers), shares)


def read_recording(item: Item, problems: list[Problem], folder: Path) -> tuple[Recording, dict[str, Path]] | None:
    """A recording, and the media files (sha256 → path in the delivery) it brings."""
    r = FieldReader(
        item,
        problems,
        allowed=(
            "isrc",
            "title",
            "artists",
            "duration_ms",
            "genre",
            "works",
            "shares",
            "media",
            "source",
            "metadata",
        ),
    )
    isrc = r.identifier("isrc", IdentifierKind.ISRC, required=True)
    title = r.text("title")
    artists = r.text_list("artists")
    duration = r.integer("duration_ms", minimum=1, maximum=MAX_DURATION_MS)
    genre = (r.text("genre", required=False) or "").lower()
    works = r.text_list("works")
    if works is not None and not works:
        r.fail(
            "works",
            [],
            "at least one embodied work (unknown publishing is not eligible)",
            "missing_field",
        )
    shares = _shares(r)
    source = r.ident("source", required=False) or ""
    metadata = _metadata(r)
    media, files = _media(r, folder)
    if (
        not r.ok
        or isrc is None
        or title is None
        or artists is None
        or duration is None
        or not works
        or shares is None
        or metadata is None
        or media is None
    ):
        return None
    rec = Recording(
        isrc=isrc,
        title=title,
        artists=tuple(artists),
        duration_ms=duration,
        works=tuple(works),
        shares=shares,
        genre=genre,
        media=tuple(sorted(media, key=lambda m: m.sha256)),
        source=source,
        metadata=metadata,
    )
    return rec, files


def _metadata(r: FieldReader) -> tuple[tuple[str, str], ...] | None:
    value = r.raw("metadata")
    if value is None:
        return ()
    if not isinstance(value, dict):
        r.fail("metadata", value, "an object of text, number or boolean values", "wrong_type")
        return None
    if len(value) > MAX_METADATA:
        r.fail("metadata", f"{len(value)} entries", f"at most {MAX_METADATA} entries", "invalid_value")
        return None
    out = []
    for k, v in value.items():
        if not METADATA_KEY.match(str(k)):
            r.fail(f"metadata.{str(k)[:64]}", k, f"a key matching {METADATA_KEY.pattern}", "invalid_value")
            continue
        if isinstance(v, dict | list) or v is None:
            r.fail(f"metadata.{k}", v, "a text, number or boolean value", "wrong_type")
            continue
        text = unicodedata.normalize("NFC", str(v).lower() if isinstance(v, bool) else str(v))
        if bad := text_problem("metadata", text):
            r.fail(f"metadata.{k}", text, bad, "invalid_value")
            continue
        out.append((str(k), text))
    if not r.ok:
        return None
    return tuple(sorted(out))


def _media(r: FieldReader, folder: Path) -> tuple[list[MediaRef] | None, dict[str, Path]]:
    value = r.raw("media")
    files: dict[str, Path] = {}
    if value is None:
        return [], files
    if not isinstance(value, list):
        r.fail("media", value, "a list of {path, kind, sha256}", "wrong_type")
        return None, files
    if len(value) > MAX_LIST:
        r.fail("media", f"{len(value)} files", f"at most {MAX_LIST:,} media files", "invalid_value")
        return None, files
    refs = []
    root = folder.resolve()
    for i, obj in enumerate(value):
        path = f"media[{i}]"
        if not isinstance(obj, dict):
            r.fail(path, obj, "{path, kind, sha256}", "wrong_type")
            continue
        extra = set(obj) - {"path", "kind", "sha256"}
        if extra:
            r.fail(f"{path}.{sorted(extra)[0]}", obj, "only path, kind and sha256", "unknown_field")
        rel, kind, given = obj.get("path"), obj.get("kind"), obj.get("sha256")
        if kind not in MEDIA_KINDS:
            r.fail(f"{path}.kind", kind, f"one of {', '.join(MEDIA_KINDS)}", "invalid_value")
        if not isinstance(rel, str) or not rel:
            r.fail(f"{path}.path", rel, "a path relative to the delivery folder", "missing_field")
            continue
        if len(rel) > MAX_MEDIA_PATH or _CONTROL.search(rel):
            expected = f"a path of at most {MAX_MEDIA_PATH} characters without control characters"
            r.fail(f"{path}.path", rel, expected, "invalid_value")
            continue
        target = (folder / rel).resolve()
        if Path(rel).is_absolute() or not target.is_relative_to(root):
            r.fail(f"{path}.path", rel, "a path inside the delivery folder", "path_outside")
            continue
        if not target.is_file():
            r.fail(f"{path}.path", rel, "a file that exists in the delivery", "media_missing")
            continue
        actual = sha256_file(target)
        if given is not None:
            if not isinstance(given, str) or not SHA256.match(given.lower()):
                r.fail(f"{path}.sha256", given, "64 hexadecimal digits", "invalid_value")
                continue
            if given.lower() != actual:
                r.fail(
                    f"{path}.sha256",
                    given,
                    f"the file's sha256, which is {actual}",
                    "media_hash_mismatch",
                )
                continue
        if isinstance(kind, str) and kind in MEDIA_KINDS:
            refs.append(MediaRef(actual, kind, target.stat().st_size, Path(rel).name))
            files[actual] = target
    return refs, files


def check_references(
    works: Mapping[str, tuple[Item, Work]],
    recordings: Mapping[str, tuple[Item, Recording]],
    parties: Mapping[str, Party],
    known_works: Mapping[str, Work],
    sources: Mapping[str, Source],
    problems: list[Problem],
) -> None:
    """Every party, work and source named by a delivered work or recording must exist."""
    # ISWCs held by registered works this delivery does not restate, then the delivery's in order:
    # a second work claiming an ISWC is the one reported.
    iswcs: dict[str, str] = {w.iswc: wid for wid, w in known_works.items() if w.iswc and wid not in works}
    for wid, (item, work) in works.items():
        for i, writer in enumerate(work.writers):
            if writer not in parties:
                problems.append(
                    item.loc.problem(
                        f"writers[{i}]",
                        writer,
                        "a party in this delivery or the registry",
                        "unknown_reference",
                    )
                )
        _check_share_parties(item, work.shares, parties, problems)
        if work.iswc:
            other = iswcs.setdefault(work.iswc, wid)
            if other != wid:
                problems.append(
                    item.loc.problem("iswc", work.iswc, f"an ISWC not already held by work {other}", "duplicate")
                )
    for _isrc, (item, rec) in recordings.items():
        for i, artist in enumerate(rec.artists):
            if artist not in parties:
                problems.append(
                    item.loc.problem(
                        f"artists[{i}]",
                        artist,
                        "a party in this delivery or the registry",
                        "unknown_reference",
                    )
                )
        for i, wid in enumerate(rec.works):
            if wid not in known_works:
                problems.append(
                    item.loc.problem(
                        f"works[{i}]",
                        wid,
                        "a work in this delivery or the registry",
                        "unknown_reference",
                    )
                )
        if rec.source and rec.source not in sources:
            problems.append(
                item.loc.problem(
                    "source",
                    rec.source,
                    "a source id in this delivery or the registry",
                    "unknown_reference",
                )
            )
        _check_share_parties(item, rec.shares, parties, problems)


def _check_share_parties(
    item: Item, shares: tuple[Share, ...], parties: Mapping[str, Party], problems: list[Problem]
) -> None:
    raw = item.data.get("shares") or []
    for share in shares:
        if share.party_id in parties:
            continue
        idx = next(
            (i for i, s in enumerate(raw) if isinstance(s, dict) and s.get("party") == share.party_id),
            0,
        )
        obj = raw[idx] if idx < len(raw) else {}
        loc = obj.get("__loc__") if isinstance(obj, dict) else None
        problems.append(
            (loc or item.loc).problem(
                f"shares[{idx}].party",
                share.party_id,
                "a party in this delivery or the registry",
                "unknown_reference",
            )
        )
