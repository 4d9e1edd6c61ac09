"""Importing a catalog delivery: read → validate → resolve references → write, all or nothing.

One orchestrator with named, timed stages. Every problem is collected before anything
is written; if there is one, :class:`~accord.errors.Rejected` is raised with all of
them and the registry and media store are exactly as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from accord.errors import Problem, Rejected, ValidationError
from accord.registry.delivery import Item, RawDelivery, read_delivery
from accord.registry.entities import Agreement, Catalog, OptOut, Party, Recording, Source, Work
from accord.registry.fields import FieldReader
from accord.registry.rights import read_agreement, read_optout
from accord.registry.standing import standing_problems
from accord.registry.store import ChangeSet, DeliveryInfo, Store, WriteResult
from accord.registry.validation import (
    check_references,
    read_party,
    read_recording,
    read_source,
    read_work,
)

ProgressCallback = Callable[[str, int, int], None]
"""(stage, done, total): called as an import goes, for progress bars."""

SUPPORTED_VERSIONS = ("1.0",)


@dataclass(frozen=True)
class ImportReport:
    """What an import did.

    Attributes:
        delivery_id: the sender's id of the delivery.
        sender: who sent it.
        content_sha256: hash of the delivery's content.
        result: what the write changed (``None`` when the delivery was already imported).
        already_imported: the same content was imported before; nothing was done.
        media_added: media files newly copied into the store.
        stage_seconds: time spent per stage.
    """

    delivery_id: str
    sender: str
    content_sha256: str
    result: WriteResult | None
    already_imported: bool = False
    media_added: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def changed_anything(self) -> bool:
        return self.result is not None and self.result.changed_anything

    def to_dict(self) -> dict[str, Any]:
        res = self.result
        return {
            "status": "imported" if self.changed_anything else "unchanged",
            "delivery_id": self.delivery_id,
            "sender": self.sender,
            "content_sha256": self.content_sha256,
            "already_imported": self.already_imported,
            "added": {k: v for k, v in (res.added if res else {}).items() if v},
            "changed": {k: v for k, v in (res.changed if res else {}).items() if v},
            "unchanged": {k: v for k, v in (res.unchanged if res else {}).items() if v},
            "media_added": self.media_added,
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
        }


@dataclass
class _Validated:
    header: DeliveryInfo
    changes: ChangeSet
    media: dict[str, Path]


def import_delivery(
    store: Store,
    folder: Path,
    *,
    actor: str = "operator",
    as_party: str | None = None,
    progress: ProgressCallback | None = None,
) -> ImportReport:
    """Import a delivery folder into the registry, all or nothing.

    ``as_party``: the party the delivery is imported for; it must be the delivery's sender,
    and every record it adds or changes needs that party's standing
    (:mod:`accord.registry.standing`). ``None`` imports with the operator's full power
    (the audit log records ``acting_as: "operator"``).

    Raises:
        ValidationError: the sender is not ``as_party``.
        Rejected: with every problem found (standing included); nothing was written,
            media included.
    """
    timings: dict[str, float] = {}

    def stage(name: str, started: float) -> None:
        timings[name] = time.perf_counter() - started
        if progress:
            progress(name, 1, 1)

    t0 = time.perf_counter()
    raw = read_delivery(Path(folder))
    if as_party is not None and raw.header.data.get("sender") != as_party:
        sender = raw.header.data.get("sender")
        msg = f"sender: {sender!r} is not {as_party}; a party delivers only as itself"
        raise ValidationError(msg, field="sender", value=str(sender))
    stage("read", t0)

    t0 = time.perf_counter()
    current = store.snapshot()
    valid = validate_delivery(raw, current, as_party=as_party, progress=progress)
    stage("validate", t0)
    header = valid.header

    if store.delivery_by_hash(header.content_sha256) is not None:
        return ImportReport(header.delivery_id, header.sender, header.content_sha256, None, True, 0, timings)

    t0 = time.perf_counter()
    added: list[str] = []
    try:
        for sha, path in sorted(valid.media.items()):
            if store.media.put(path, sha):
                added.append(sha)
        stage("media", t0)
        t0 = time.perf_counter()
        result = store.apply(valid.changes, actor=actor, action="delivery.imported", delivery=header, as_party=as_party)
        stage("write", t0)
    except BaseException:
        store.remove_unreferenced_media(added)  # leave the media store as it was
        raise
    if not result.changed_anything:
        store.remove_unreferenced_media(added)
        added = []
    return ImportReport(header.delivery_id, header.sender, header.content_sha256, result, False, len(added), timings)


def validate_delivery(
    raw: RawDelivery,
    current: Catalog,
    *,
    as_party: str | None = None,
    progress: ProgressCallback | None = None,
) -> _Validated:
    """Every rule of the delivery format, against the registry as it is now; with ``as_party``,
    its standing for every record the delivery adds or changes too.

    Raises:
        Rejected: with every problem found.
    """
    problems: list[Problem] = list(raw.problems)
    head = FieldReader(raw.header, problems, allowed=("accord_delivery", "delivery_id", "sender", "created"))
    version = head.text("accord_delivery")
    if version is not None and version not in SUPPORTED_VERSIONS:
        head.fail(
            "accord_delivery",
            version,
            f"a supported format version ({', '.join(SUPPORTED_VERSIONS)})",
            "invalid_value",
        )
    delivery_id, sender, created = (
        head.text("delivery_id"),
        head.ident("sender"),
        head.instant("created"),
    )

    sources = _unique(raw, "sources", "source_id", problems, lambda it: read_source(it, problems))
    parties = _unique(raw, "parties", "party_id", problems, lambda it: read_party(it, problems))
    works = _unique(raw, "works", "work_id", problems, lambda it: read_work(it, problems))
    media: dict[str, Path] = {}
    rec_items = raw.sections.get("recordings", [])
    recordings: dict[str, tuple[Item, Recording]] = {}
    seen: dict[str, Item] = {}
    for n, item in enumerate(rec_items, start=1):
        got = read_recording(item, problems, raw.folder)
        if progress and (n % 500 == 0 or n == len(rec_items)):
            progress("validate recordings", n, len(rec_items))
        if got is None:
            continue
        rec, files = got
        if rec.isrc in seen:
            problems.append(
                item.loc.problem(
                    "isrc",
                    rec.isrc,
                    f"each ISRC once per delivery (also at {seen[rec.isrc].loc.at('')})",
                    "duplicate",
                )
            )
            continue
        seen[rec.isrc] = item
        recordings[rec.isrc] = (item, rec)
        media.update(files)

    all_parties: dict[str, Party] = {**current.parties, **{k: v for k, (_, v) in parties.items()}}
    all_works: dict[str, Work] = {**current.works, **{k: v for k, (_, v) in works.items()}}
    all_sources: dict[str, Source] = {**current.sources, **{k: v for k, (_, v) in sources.items()}}
    if sender is not None and sender not in all_parties:
        head.fail("sender", sender, "a party in this delivery or the registry", "unknown_reference")
    check_references(works, recordings, all_parties, all_works, all_sources, problems)

    merged = replace(
        current,
        parties=all_parties,
        works=all_works,
        sources=all_sources,
        recordings={**current.recordings, **{k: v for k, (_, v) in recordings.items()}},
    )
    agreements = _unique(
        raw, "agreements", "agreement_id", problems, lambda it: read_agreement(it, problems, merged, viewer=as_party)
    )
    optouts = _unique(
        raw, "optouts", "optout_id", problems, lambda it: read_optout(it, problems, merged, viewer=as_party)
    )
    changes = ChangeSet(
        sources=tuple(v for _, (_, v) in sorted(sources.items())),
        parties=tuple(v for _, (_, v) in sorted(parties.items())),
        works=tuple(v for _, (_, v) in sorted(works.items())),
        recordings=tuple(v for _, (_, v) in sorted(recordings.items())),
        agreements=tuple(v for _, (_, v) in sorted(agreements.items())),
        optouts=tuple(v for _, (_, v) in sorted(optouts.items())),
    )
    if as_party is not None:
        sections = {
            "sources": sources,
            "parties": parties,
            "works": works,
            "recordings": recordings,
            "agreements": agreements,
            "optouts": optouts,
        }
        where = {
            (kind, key): (item.loc.file, item.loc.at(""))
            for kind, found in sections.items()
            for key, (item, _) in found.items()
        }
        problems += standing_problems(changes, current, as_party, where)
    if problems:
        raise Rejected(f"delivery {raw.folder}", problems)
    if delivery_id is None or sender is None or created is None:
        raise Rejected(f"delivery {raw.folder}", problems)

    media_hashes = {
        raw_path: sha for sha, raw_path in ((s, str(p.relative_to(raw.folder.resolve()))) for s, p in media.items())
    }
    header = DeliveryInfo(delivery_id, sender, raw.content_sha256(media_hashes), created, raw.format)
    return _Validated(header, changes, media)


def _unique(
    raw: RawDelivery,
    section: str,
    key: str,
    problems: list[Problem],
    read: Callable[[Item], Source | Party | Work | Agreement | OptOut | None],
) -> dict[str, tuple[Item, Any]]:
    """Read a section's items, rejecting a repeated id."""
    out: dict[str, tuple[Item, Any]] = {}
    for item in raw.sections.get(section, []):
        record = read(item)
        if record is None:
            continue
        ident = getattr(record, key)
        if ident in out:
            first = out[ident][0].loc.at("")
            problems.append(
                item.loc.problem(
                    "id",
                    ident,
                    f"each {section[:-1]} id once per delivery (also at {first})",
                    "duplicate",
                )
            )
            continue
        out[ident] = (item, record)
    return out
