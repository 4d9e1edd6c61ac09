"""What changed between two manifests, and why: read from the manifests alone.

A manifest lists its items and every recording it left out with the policy's reasons,
so two manifests say between them why a recording came in or went out; no registry is
needed. An item of B that A did not hold is *added*: A's exclusion reasons say what was
missing (a licence that has since started, an opt-out since lifted, a training file since
delivered); a recording A did not know at all is a new delivery. An item of A that B does
not hold is *removed*, explained by B's exclusion reasons (a licence ended or narrowed, an
opt-out). An item in both whose leaf differs is *changed* (a new media file, other
agreements relied on, other owners or details).

Each change carries readable reasons (``why``) and machine codes (``codes``): the derived
codes below first, then the policy codes of the exclusion behind it, each once.

Given the parties that asked not to be named (:class:`~accord.datasets.disclosure.Undisclosed`),
every reason blanks out their ids, names, agreement ids and titles as ``(undisclosed)``;
the changes and their counts stay the same.

=======================  ==============================================================
``license_started``      added: an agreement that was missing, not started, not granting
                         the use or territory, or not covering the item now fits
``opt_out_lifted``       added: an opt-out that left it out is no longer in force
``ownership_resolved``   added: ownership that was unknown or incomplete is now whole
``filters_changed``      added or removed: the manifests' filters left it in or out
``new_delivery``         added: A did not know the recording, or had no training file for it
``license_ended``        removed: an agreement relied on expired, or is gone
``license_narrowed``     removed: an agreement no longer grants the use, territory or item
``opt_out``              removed: a party with standing opted out
``ownership_changed``    removed: ownership is now unknown or incomplete; changed: other owners
``no_training_media``    removed: the recording has no training file any more
``recording_removed``    removed: B does not know the recording at all
``media_changed``        changed: a new media file (another sha256)
``agreements_changed``   changed: other agreements are relied on
``details_changed``      changed: other duration, genre or media kind
=======================  ==============================================================
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from accord.datasets.disclosure import Undisclosed
from accord.datasets.manifest import Exclusion, Manifest, ManifestItem

_LICENCE_GAPS = ("no_agreement", "not_covered", "agreement_not_started", "agreement_expired")
_NARROWING = ("use_not_granted", "territory_not_covered", "not_covered")
_OWNERSHIP = (
    "master_ownership_unknown",
    "master_shares_incomplete",
    "publishing_unknown",
    "unknown_work",
    "publishing_shares_incomplete",
)

ADDED_BECAUSE: Mapping[str, str] = {
    **dict.fromkeys((*_LICENCE_GAPS, *_NARROWING), "license_started"),
    "opted_out": "opt_out_lifted",
    **dict.fromkeys(_OWNERSHIP, "ownership_resolved"),
    "filtered_out": "filters_changed",
    "no_training_media": "new_delivery",
    "unknown_recording": "new_delivery",
}
"""A's exclusion code → why the recording is in B."""

REMOVED_BECAUSE: Mapping[str, str] = {
    "agreement_expired": "license_ended",
    "no_agreement": "license_ended",  # an agreement that existed is gone
    "agreement_not_started": "license_ended",  # the one relied on gave way to one not yet started
    **dict.fromkeys(_NARROWING, "license_narrowed"),
    "opted_out": "opt_out",
    **dict.fromkeys(_OWNERSHIP, "ownership_changed"),
    "filtered_out": "filters_changed",
    "no_training_media": "no_training_media",
    "unknown_recording": "recording_removed",
}
"""B's exclusion code → why the recording is not in B."""


@dataclass(frozen=True)
class ItemChange:
    """One recording that came into, went out of, or changed in the training set.

    Attributes:
        isrc: the recording.
        change: ``added``, ``removed`` or ``changed``.
        why: readable reasons, most telling first.
        codes: machine codes (see the module table), then the exclusion's policy codes.
    """

    isrc: str
    change: str
    why: tuple[str, ...]
    codes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"isrc": self.isrc, "change": self.change, "why": list(self.why), "codes": list(self.codes)}


@dataclass(frozen=True)
class ManifestDiff:
    """The changes from manifest A to manifest B, each list sorted by ISRC.

    Attributes:
        a: A's root.
        b: B's root.
        added: items of B that A did not hold.
        removed: items of A that B does not hold.
        changed: items in both whose media, agreements, owners or details differ.
    """

    a: str
    b: str
    added: tuple[ItemChange, ...] = ()
    removed: tuple[ItemChange, ...] = ()
    changed: tuple[ItemChange, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def counts_by_code(self) -> dict[str, int]:
        """How many changes carry each code (sorted by code)."""
        counts = Counter(code for c in (*self.added, *self.removed, *self.changed) for code in c.codes)
        return {code: counts[code] for code in sorted(counts)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "counts": {"added": len(self.added), "removed": len(self.removed), "changed": len(self.changed)},
            "counts_by_code": self.counts_by_code(),
            "added": [c.to_dict() for c in self.added],
            "removed": [c.to_dict() for c in self.removed],
            "changed": [c.to_dict() for c in self.changed],
        }


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    """Each value once, in first-seen order (reasons come in the policy's deterministic order)."""
    return tuple(dict.fromkeys(values))


def _listed(ids: Iterable[str]) -> str:
    return ", ".join(ids) or "none"


def _added(isrc: str, item: ManifestItem, was: Exclusion | None) -> ItemChange:
    relied = f"now licensed under {_listed(item.agreements)}"
    if was is None:
        why = (f"{isrc} was not in the catalog when A was built: a new delivery", relied)
        return ItemChange(isrc, "added", why, ("new_delivery",))
    derived = [ADDED_BECAUSE.get(r["code"], "license_started") for r in was.reasons]
    then = [f"A left it out: {r.get('message') or r['code']}" for r in was.reasons]
    codes = _unique([*derived, *(r["code"] for r in was.reasons)])
    return ItemChange(isrc, "added", _unique([*then, relied]), codes)


def _removed(isrc: str, item: ManifestItem, now: Exclusion | None) -> ItemChange:
    relied = f"A relied on {_listed(item.agreements)}"
    if now is None:
        why = (f"{isrc} is not in the catalog B was built from: the recording was removed", relied)
        return ItemChange(isrc, "removed", why, ("recording_removed",))
    derived = [REMOVED_BECAUSE.get(r["code"], r["code"]) for r in now.reasons]
    then = [f"B leaves it out: {r.get('message') or r['code']}" for r in now.reasons]
    codes = _unique([*derived, *(r["code"] for r in now.reasons)])
    return ItemChange(isrc, "removed", _unique([*then, relied]), codes)


def _changed(old: ManifestItem, new: ManifestItem) -> ItemChange | None:
    why: list[str] = []
    codes: list[str] = []
    if (old.media_sha256, old.size) != (new.media_sha256, new.size):
        codes.append("media_changed")
        why.append(
            f"a new media file: {old.media_sha256[:12]}… ({old.size} bytes) → "
            f"{new.media_sha256[:12]}… ({new.size} bytes)"
        )
    if old.agreements != new.agreements:
        codes.append("agreements_changed")
        gone, came = (
            sorted(set(old.agreements) - set(new.agreements)),
            sorted(set(new.agreements) - set(old.agreements)),
        )
        why.append(
            f"agreements relied on: {_listed(old.agreements)} → {_listed(new.agreements)}"
            f" (no longer: {_listed(gone)}; new: {_listed(came)})"
        )
    if (old.master_owners, old.publishers, old.works) != (new.master_owners, new.publishers, new.works):
        codes.append("ownership_changed")
        why.append(
            f"owners: master {_listed(old.master_owners)} → {_listed(new.master_owners)}, "
            f"publishing {_listed(old.publishers)} → {_listed(new.publishers)}, "
            f"works {_listed(old.works)} → {_listed(new.works)}"
        )
    if (old.duration_ms, old.genre, old.media_kind) != (new.duration_ms, new.genre, new.media_kind):
        codes.append("details_changed")
        why.append(
            f"details: {old.duration_ms} ms, genre {old.genre or '(none)'}, {old.media_kind} → "
            f"{new.duration_ms} ms, genre {new.genre or '(none)'}, {new.media_kind}"
        )
    return ItemChange(old.isrc, "changed", tuple(why), tuple(codes)) if codes else None


def _redacted(change: ItemChange, undisclosed: Undisclosed | None) -> ItemChange:
    if undisclosed is None:
        return change
    return ItemChange(change.isrc, change.change, _unique(undisclosed.redact(w) for w in change.why), change.codes)


def diff_manifests(a: Manifest, b: Manifest, *, undisclosed: Undisclosed | None = None) -> ManifestDiff:
    """What changed from ``a`` to ``b`` (normally an older and a newer build for the same use).

    With ``undisclosed``, no reason names a party that asked not to be named, nor its
    agreements or titles.
    """
    a_items, b_items = {i.isrc: i for i in a.items}, {i.isrc: i for i in b.items}
    a_out, b_out = {e.isrc: e for e in a.excluded}, {e.isrc: e for e in b.excluded}
    # sorted by ISRC: the manifests' own canonical order, so a diff is byte-identical when re-run
    added = tuple(_added(k, b_items[k], a_out.get(k)) for k in sorted(b_items.keys() - a_items.keys()))
    removed = tuple(_removed(k, a_items[k], b_out.get(k)) for k in sorted(a_items.keys() - b_items.keys()))
    both = (_changed(a_items[k], b_items[k]) for k in sorted(a_items.keys() & b_items.keys()))
    changed = tuple(c for c in both if c is not None)
    return ManifestDiff(
        a.root,
        b.root,
        tuple(_redacted(c, undisclosed) for c in added),
        tuple(_redacted(c, undisclosed) for c in removed),
        tuple(_redacted(c, undisclosed) for c in changed),
    )
