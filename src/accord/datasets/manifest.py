"""Training-set manifests: what the policy allowed at one instant, and everything it left out.

A manifest is built from the registry as of one instant for one use (normally
``train``) and territory. Each *item* names a recording, the sha256 of the exact media
file to use, its size and duration, and the agreements relied on. Items are listed by
ISRC (the file's canonical order). The manifest id is the Merkle root
(:mod:`accord.datasets.merkle`) over leaves that commit to the items without revealing
them (format 2): each leaf is ``isrc_key || item_hash``, keyed by a per-manifest secret
salt, and the leaves are sorted by ``isrc_key``, which makes non-inclusion provable
without showing any neighbour's ISRC or content.

The salt is part of the manifest file (kept by the operator, never published); the signed
statement carries only its commitment. A format-1 manifest (leaves were the items' JSON,
sorted by ISRC) can still be read back for audits and training, never proven.

Everything here is pure: building takes a :class:`~accord.registry.entities.Catalog`
and returns a :class:`Manifest`; storing it is :mod:`accord.datasets.repository`'s job.
"""

from __future__ import annotations

import hmac
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from hashlib import sha256
from typing import Any

from accord.datasets.merkle import (
    COMMITTED_FIELDS,
    SALT_SIZE,
    MerkleTree,
    commitment_leaf,
    isrc_key,
    item_blind,
    item_hash,
    salt_commitment,
    value_blind,
    value_commitment,
)
from accord.errors import ValidationError
from accord.licensing import LicensingPolicy, parties_on
from accord.registry.entities import Catalog, MediaRef, Recording, Side, Use
from accord.signing import canonical_json
from accord.timeutil import iso, parse_instant

FORMAT = "accord-manifest/2"
FORMAT_V1 = "accord-manifest/1"
"""Leaves were the items' canonical JSON sorted by ISRC: readable, never proven (proofs would show neighbours)."""
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

    def committed_form(self, salt: bytes) -> dict[str, Any]:
        """The item with each id of its party and agreement lists replaced by its commitment (hex, sorted)."""
        out = self.to_dict()
        for name in COMMITTED_FIELDS:
            out[name] = sorted(value_commitment(value_blind(salt, self.isrc, name, v), v).hex() for v in out[name])
        return out

    def leaf(self) -> bytes:
        """The item's canonical JSON: the leaf bytes of a format-1 manifest."""
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
    """A training set: its items (listed by ISRC), the recordings left out, and its Merkle root.

    Attributes:
        header: what it was built for.
        items: the eligible recordings, sorted by ISRC.
        excluded: every recording left out, sorted by ISRC, with reasons.
        root: hex Merkle root of the leaves: the manifest id.
        salt: the secret the leaves are keyed with (format 2); ``None`` for a format-1
            manifest, whose leaves are the items' JSON sorted by ISRC (no proofs).
    """

    header: ManifestHeader
    items: tuple[ManifestItem, ...]
    excluded: tuple[Exclusion, ...]
    root: str
    salt: bytes | None = None
    _index: dict[str, int] = field(default_factory=dict, init=False, compare=False, repr=False)
    _keys: list[bytes] = field(default_factory=list, init=False, compare=False, repr=False)
    _order: list[int] = field(default_factory=list, init=False, compare=False, repr=False)
    _positions: dict[str, int] = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update({item.isrc: i for i, item in enumerate(self.items)})
        if self.salt is not None:
            salt = self.salt
            # leaf order: by the keyed hash of the ISRC, so neighbours say nothing of each other's ISRC
            keyed = sorted((isrc_key(salt, item.isrc), i) for i, item in enumerate(self.items))
            self._keys.extend(k for k, _ in keyed)
            self._order.extend(i for _, i in keyed)
            self._positions.update({self.items[i].isrc: pos for pos, (_, i) in enumerate(keyed)})

    @property
    def format(self) -> str:
        return FORMAT if self.salt is not None else FORMAT_V1

    def index_of(self, isrc: str) -> int | None:
        """Where the recording is in :attr:`items` (``None``: not in the manifest)."""
        return self._index.get(isrc)

    def leaf_index_of(self, isrc: str) -> int | None:
        """Which leaf of the tree the recording is (format 2; ``None``: not in the manifest)."""
        return self._positions.get(isrc)

    def isrc_key(self, isrc: str) -> bytes:
        """The keyed hash of any ISRC under this manifest's salt (format 2 only)."""
        return isrc_key(self._salt(), isrc)

    def blind(self, isrc: str) -> bytes:
        """The blinding value of a recording's item hash (format 2 only)."""
        return item_blind(self._salt(), isrc)

    def leaf_key(self, index: int) -> bytes:
        """The keyed ISRC hash of leaf ``index`` (format 2 only)."""
        return self._keys[index]

    def leaf_item_hash(self, index: int) -> bytes:
        """The item hash of leaf ``index`` (format 2 only)."""
        item = self.items[self._order[index]]
        return item_hash(self.blind(item.isrc), canonical_json(item.committed_form(self._salt())))

    def first_leaf_after(self, key: bytes) -> int:
        """The index of the first leaf whose keyed hash is not below ``key`` (``len(items)``: none)."""
        return bisect_left(self._keys, key)

    def _salt(self) -> bytes:
        if self.salt is None:
            msg = f"manifest {self.root}: format {FORMAT_V1} has no salt; rebuild it (accord dataset build)"
            raise ValidationError(msg, field="manifest", value=self.root)
        return self.salt

    def statement(self) -> dict[str, Any]:
        """What the operator signs: the root, the tree size, the salt's commitment and the header."""
        out: dict[str, Any] = {"format": self.format, "manifest_root": self.root, "tree_size": len(self.items)}
        if self.salt is not None:
            out["salt_commitment"] = salt_commitment(self.salt).hex()
        return {**out, **self.header.to_dict()}

    def to_dict(self) -> dict[str, Any]:
        secret = {"salt": self.salt.hex()} if self.salt is not None else {}
        return {
            **self.statement(),
            **secret,
            "items": [i.to_dict() for i in self.items],
            "excluded": [e.to_dict() for e in self.excluded],
        }

    def to_bytes(self) -> bytes:
        """The manifest file's bytes: canonical JSON, identical for identical content (it holds the salt)."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Manifest:
        """Read a manifest file's content; a file of another shape is a clear error, not a crash."""
        fmt = d.get("format") if isinstance(d, Mapping) else None
        if fmt not in (FORMAT, FORMAT_V1):
            msg = f"manifest file: format {fmt!r} is not {FORMAT} (or the older {FORMAT_V1}); rebuild it"
            raise ValidationError(msg, field="manifest", value=str(fmt))
        try:
            return cls._from_dict(d)
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"manifest file: {type(exc).__name__} {exc} — not an {fmt} manifest (rebuild it)"
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
        salt = bytes.fromhex(d["salt"]) if d["format"] == FORMAT else None
        if salt is not None and len(salt) != SALT_SIZE:
            msg = f"salt: {len(salt)} bytes, expected {SALT_SIZE}"
            raise ValueError(msg)
        return cls(header, items, excluded, d["manifest_root"], salt)

    def tree(self) -> MerkleTree:
        """The Merkle tree over the leaves (format 2: commitments in keyed order; format 1: items' JSON)."""
        if self.salt is None:
            return MerkleTree([i.leaf() for i in self.items])
        return MerkleTree([commitment_leaf(self._keys[n], self.leaf_item_hash(n)) for n in range(len(self.items))])


def derive_salt(secret: bytes, items: Iterable[ManifestItem]) -> bytes:
    """A manifest's salt: ``HMAC-SHA256(secret, "accord-salt" || 0x00 || canonical JSON of the items)``.

    Deterministic and a function of the items alone (as the root always was), so the same
    training set built again has the same root. The operator's builds pass a secret of its
    own (:func:`accord.datasets.service.salt_secret`); with the empty secret the salt follows
    from the content alone (for in-memory use, never published).
    """
    content = canonical_json([i.to_dict() for i in items])
    return hmac.new(secret, b"accord-salt\x00" + content, sha256).digest()


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
    secret: bytes = b"",
) -> Manifest:
    """Ask the policy about every recording in ``catalog`` (the registry as of ``as_of``).

    ``secret`` keys the manifest's salt (:func:`derive_salt`): the operator's builds pass
    their own; the default suits manifests that are never published.
    """
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
    salt = derive_salt(secret, items)
    unrooted = Manifest(header, tuple(items), tuple(excluded), "", salt)
    return Manifest(header, unrooted.items, unrooted.excluded, unrooted.tree().root.hex(), salt)


def exclusion_summary(manifest: Manifest) -> Counter[str]:
    """Excluded recordings per reason code (a recording counts once per code)."""
    counts: Counter[str] = Counter()
    for e in manifest.excluded:
        counts.update(e.codes)
    return counts


def licensor_of_side(item: ManifestItem, side: Side) -> tuple[str, ...]:
    return item.master_owners if side is Side.MASTER else item.publishers
