"""Training-set manifests: what the policy allowed at one instant, and everything it left out.

A manifest is built from the registry as of one instant for one use (normally
``train``) and territory. Each *item* names a recording, the sha256 of the exact media
file to use, its size and duration, and the agreements relied on. Items are sorted by
ISRC (the canonical order) and each item's **leaf bytes** are its canonical JSON
(:func:`accord.signing.canonical_json`); the manifest id is the Merkle root over those
leaves (:mod:`accord.datasets.merkle`). Sorted leaves make non-inclusion provable.

Everything here is pure: building takes a :class:`~accord.registry.entities.Catalog`
and returns a :class:`Manifest`; storing it is :mod:`accord.datasets.repository`'s job.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from accord.datasets.merkle import MerkleTree
from accord.errors import ValidationError
from accord.licensing import LicensingPolicy, parties_on
from accord.registry.entities import Catalog, MediaRef, Recording, Side, Use
from accord.signing import canonical_json
from accord.timeutil import iso, parse_instant

FORMAT = "accord-manifest/1"
TRAINING_MEDIA_KINDS = ("midi",)
"""Media kinds a symbolic model trains on, in order of preference."""

FILTER_KEYS = ("genre", "licensor", "source", "isrc")

ProgressCallback = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ManifestItem:
    """One recording in a training set.

    Attributes:
        isrc: the recording (the leaf key: items are sorted by it).
        media_sha256: the exact file to train on.
        media_kind: its kind (``midi``).
        size: its size in bytes.
        duration_ms: the recording's duration.
        agreements: the agreement ids the decision relied on, sorted.
        master_owners: master owners with a non-zero share, sorted.
        publishers: publishing owners (of embodied works) with a non-zero share, sorted.
        standing: every party with standing to opt it out (owners of any share on either
            side, artists, writers), sorted: what the taint audit indexes.
        works: the works it embodies.
        genre: its style, for conditioning and summaries.
    """

    isrc: str
    media_sha256: str
    media_kind: str
    size: int
    duration_ms: int
    agreements: tuple[str, ...]
    master_owners: tuple[str, ...]
    publishers: tuple[str, ...]
    standing: tuple[str, ...]
    works: tuple[str, ...]
    genre: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "isrc": self.isrc,
            "media_sha256": self.media_sha256,
            "media_kind": self.media_kind,
            "size": self.size,
            "duration_ms": self.duration_ms,
            "agreements": list(self.agreements),
            "master_owners": list(self.master_owners),
            "publishers": list(self.publishers),
            "standing": list(self.standing),
            "works": list(self.works),
            "genre": self.genre,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ManifestItem:
        return cls(
            isrc=d["isrc"],
            media_sha256=d["media_sha256"],
            media_kind=d["media_kind"],
            size=int(d["size"]),
            duration_ms=int(d["duration_ms"]),
            agreements=tuple(d["agreements"]),
            master_owners=tuple(d["master_owners"]),
            publishers=tuple(d["publishers"]),
            standing=tuple(d["standing"]),
            works=tuple(d["works"]),
            genre=d["genre"],
        )

    def leaf(self) -> bytes:
        """The leaf bytes hashed into the Merkle tree: the item's canonical JSON."""
        return canonical_json(self.to_dict())

    @property
    def parties(self) -> frozenset[str]:
        """Owners with a non-zero share, on either side."""
        return frozenset(self.master_owners) | frozenset(self.publishers)


@dataclass(frozen=True)
class Exclusion:
    """A recording left out of a manifest, with why.

    Attributes:
        isrc: the recording.
        reasons: the decision's reasons (``code``, ``side``, ``party_id``, ``subject``, ``message`` ...).
    """

    isrc: str
    reasons: tuple[Mapping[str, str], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"isrc": self.isrc, "reasons": [dict(r) for r in self.reasons]}

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(r["code"] for r in self.reasons)


@dataclass(frozen=True)
class ManifestHeader:
    """What a manifest was built for.

    Attributes:
        use: the use every item is eligible for.
        as_of: the instant the registry was read and the policy asked.
        territory: the territory asked about.
        filters: the filters applied (key → allowed values), sorted.
    """

    use: Use
    as_of: datetime
    territory: str
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "use": self.use.value,
            "as_of": iso(self.as_of),
            "territory": self.territory,
            "filters": {k: list(v) for k, v in self.filters},
        }


@dataclass(frozen=True)
class Manifest:
    """A training set: its items (sorted by ISRC), the recordings left out, and its Merkle root.

    Attributes:
        header: what it was built for.
        items: the eligible recordings, sorted by ISRC.
        excluded: every recording left out, sorted by ISRC, with reasons.
        root: hex Merkle root of the items' leaves: the manifest id.
    """

    header: ManifestHeader
    items: tuple[ManifestItem, ...]
    excluded: tuple[Exclusion, ...]
    root: str
    _index: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update({item.isrc: i for i, item in enumerate(self.items)})

    def index_of(self, isrc: str) -> int | None:
        return self._index.get(isrc)

    def statement(self) -> dict[str, Any]:
        """What the operator signs: the root, the tree size and the header."""
        return {"format": FORMAT, "manifest_root": self.root, "tree_size": len(self.items), **self.header.to_dict()}

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.statement(),
            "items": [i.to_dict() for i in self.items],
            "excluded": [e.to_dict() for e in self.excluded],
        }

    def to_bytes(self) -> bytes:
        """The manifest file's bytes: canonical JSON, identical for identical content."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Manifest:
        """Read a manifest file's content; a file of another shape is a clear error, not a crash."""
        try:
            return cls._from_dict(d)
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"manifest file: {type(exc).__name__} {exc} — not an {FORMAT} manifest (rebuild it)"
            raise ValidationError(msg, field="manifest") from None

    @classmethod
    def _from_dict(cls, d: Mapping[str, Any]) -> Manifest:
        header = ManifestHeader(
            use=Use(d["use"]),
            as_of=parse_instant(d["as_of"], field="as_of"),
            territory=d["territory"],
            filters=tuple((k, tuple(v)) for k, v in sorted(d.get("filters", {}).items())),
        )
        items = tuple(ManifestItem.from_dict(i) for i in d["items"])
        excluded = tuple(Exclusion(e["isrc"], tuple(e["reasons"])) for e in d["excluded"])
        return cls(header, items, excluded, d["manifest_root"])

    def tree(self) -> MerkleTree:
        return MerkleTree([i.leaf() for i in self.items])


def parse_filters(specs: Iterable[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``["genre=reel,jig", "licensor=P-AURORA"]`` → sorted ``(key, values)`` pairs."""
    out: dict[str, set[str]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip().lower()
        if not sep or key not in FILTER_KEYS or not values.strip():
            msg = f"filter: {spec!r} is not KEY=VALUE[,VALUE] with KEY one of {', '.join(FILTER_KEYS)}"
            raise ValidationError(msg, field="filter", value=spec)
        out.setdefault(key, set()).update(v.strip() for v in values.split(",") if v.strip())
    return tuple((k, tuple(sorted(v))) for k, v in sorted(out.items()))


def _passes(rec: Recording, catalog: Catalog, filters: Mapping[str, tuple[str, ...]]) -> str | None:
    """``None`` when the recording passes every filter, else the filter that left it out."""
    for key, allowed in filters.items():
        if key == "genre" and rec.genre not in {a.lower() for a in allowed}:
            return f"genre {rec.genre or '(none)'} not in {', '.join(allowed)}"
        if key == "source" and rec.source not in allowed:
            return f"source {rec.source or '(none)'} not in {', '.join(allowed)}"
        if key == "isrc" and rec.isrc not in allowed:
            return "ISRC not listed"
        if key == "licensor":
            owners = {s.party_id for s in rec.shares if s.ppm}
            for wid in rec.works:
                work = catalog.works.get(wid)
                owners |= {s.party_id for s in work.shares if s.ppm} if work else set()
            if not owners & set(allowed):
                return f"no licensor in {', '.join(allowed)}"
    return None


def training_media(rec: Recording) -> MediaRef | None:
    """The file a symbolic model trains on: the first MIDI file by hash (deterministic)."""
    for kind in TRAINING_MEDIA_KINDS:
        files = sorted((m for m in rec.media if m.kind == kind), key=lambda m: m.sha256)
        if files:
            return files[0]
    return None


def build_manifest(
    catalog: Catalog,
    *,
    use: Use | str = Use.TRAIN,
    as_of: datetime,
    territory: str,
    filters: tuple[tuple[str, tuple[str, ...]], ...] = (),
    progress: ProgressCallback | None = None,
) -> Manifest:
    """Ask the policy about every recording in ``catalog`` (the registry as of ``as_of``)."""
    policy = LicensingPolicy(catalog)
    wanted = dict(filters)
    items: list[ManifestItem] = []
    excluded: list[Exclusion] = []
    isrcs = sorted(catalog.recordings)  # canonical order: by ISRC
    for n, isrc in enumerate(isrcs, start=1):
        rec = catalog.recordings[isrc]
        decision = policy.decide(isrc, use, as_of, territory)
        if progress and (n % 1000 == 0 or n == len(isrcs)):
            progress("deciding", n, len(isrcs))
        filtered = _passes(rec, catalog, wanted)
        if filtered is not None:
            excluded.append(Exclusion(isrc, ({"code": "filtered_out", "message": f"left out by filter: {filtered}"},)))
            continue
        if not decision.eligible:
            excluded.append(Exclusion(isrc, tuple(r.to_dict() for r in decision.reasons)))
            continue
        media = training_media(rec)
        if media is None:
            excluded.append(
                Exclusion(isrc, ({"code": "no_training_media", "message": f"{isrc} has no MIDI file on record"},))
            )
            continue
        works = [catalog.works[wid] for wid in rec.works]
        publishers = {s.party_id for w in works for s in w.shares if s.ppm}
        items.append(
            ManifestItem(
                isrc=isrc,
                media_sha256=media.sha256,
                media_kind=media.kind,
                size=media.size,
                duration_ms=rec.duration_ms,
                agreements=decision.relied_on,
                master_owners=tuple(sorted(s.party_id for s in rec.shares if s.ppm)),
                publishers=tuple(sorted(publishers)),
                standing=tuple(sorted(parties_on(catalog, rec))),
                works=rec.works,
                genre=rec.genre,
            )
        )
    header = ManifestHeader(Use(use), as_of, territory.upper(), filters)
    root = MerkleTree([i.leaf() for i in items]).root.hex()
    return Manifest(header, tuple(items), tuple(excluded), root)


def exclusion_summary(manifest: Manifest) -> Counter[str]:
    """Excluded recordings per reason code (a recording counts once per code)."""
    counts: Counter[str] = Counter()
    for e in manifest.excluded:
        counts.update(e.codes)
    return counts


def licensor_of_side(item: ManifestItem, side: Side) -> tuple[str, ...]:
    return item.master_owners if side is Side.MASTER else item.publishers
