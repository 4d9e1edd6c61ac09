"""The attribution record and the JSON it puts in an output's content credential.

An :class:`Attribution` says, for one output, how much each item of the model's training
manifest shaped it, in integer parts per million, with the share no method explains
(``unattributed_ppm``) kept explicit: ``sum(items) + unattributed == 1_000_000`` exactly.
The same weights are summed to works and to rights holders (master and publishing side
separately). :meth:`Attribution.to_credential` is the contract the royalty engine reads::

    {"status": "computed", "method": str, "method_version": str, "reliable": bool,
     "unattributed_ppm": int,
     "items": [{"isrc": str, "weight_ppm": int}, ...],          # weight desc, then isrc
     "works": [{"work_id": str, "weight_ppm": int}, ...],       # weight desc, then work_id
     "holders": {"master": [{"party_id": str, "weight_ppm": int}, ...],
                 "publishing": [{"party_id": str, "weight_ppm": int}, ...]},
     "top": [{"isrc": str, "title": str, "weight_ppm": int,
              "works": [{"work_id": str, "title": str}, ...]}, ...]}  # at most 10, for display

An output's public credential carries the **public form** (:mod:`accord.attribution.disclosure`):
an entry that would name a party that asked not to be named is ``{"commitment": <64 hex>,
"weight_ppm": int}`` instead (sorted by its commitment among equal weights), and is left out of
``top``, which is then the first of the named items of the full form's top. Sums are unchanged.

This module is pure (no PyTorch, no NumPy), so the credential check can import it cheaply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PPM_WHOLE = 1_000_000
TOP_N = 10
COMPUTED = "computed"
SIDES = ("master", "publishing")
COMMITMENT = "commitment"
"""The field of an entry committed to rather than named (:mod:`accord.attribution.disclosure`)."""


@dataclass(frozen=True)
class WorkRef:
    """A work as shown next to an attributed item.

    Attributes:
        work_id: the work.
        title: its title (``""`` when the registry has none).
    """

    work_id: str
    title: str


@dataclass(frozen=True)
class ItemWeight:
    """One manifest item's share of an output.

    Attributes:
        isrc: the recording (an item of the model's manifest).
        weight_ppm: its share in parts per million of the whole output.
        title: the recording's title, for display.
        works: the works it embodies.
        score: the method's raw score (not part of the credential).
    """

    isrc: str
    weight_ppm: int
    title: str = ""
    works: tuple[WorkRef, ...] = ()
    score: float = 0.0


@dataclass(frozen=True)
class Attribution:
    """Who shaped one output, and how much is not explained.

    Attributes:
        method: the method's registry name (``trak``, ``tracin``, ``gradsim``, ``embedding``).
        method_version: the method's version (changes whenever its scores would).
        reliable: whether the evidence is strong enough to pay by (see ``docs/attribution.md``).
        unattributed_ppm: the share no item is credited with (it goes to the training pool).
        items: named items, weight descending then ISRC; every weight > 0.
        works: ``(work_id, ppm)`` weight descending then id.
        master: ``(party_id, ppm)`` of master owners, weight descending then id.
        publishing: ``(party_id, ppm)`` of publishing owners, weight descending then id.
        manifest_root: the manifest the items come from.
        details: how the weights were reached (scores, thresholds, timings); not in the credential.
    """

    method: str
    method_version: str
    reliable: bool
    unattributed_ppm: int
    items: tuple[ItemWeight, ...]
    works: tuple[tuple[str, int], ...]
    master: tuple[tuple[str, int], ...]
    publishing: tuple[tuple[str, int], ...]
    manifest_root: str
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def attributed_ppm(self) -> int:
        return PPM_WHOLE - self.unattributed_ppm

    def to_credential(self) -> dict[str, Any]:
        """The credential's ``attribution`` field (the contract above, exactly)."""
        return {
            "status": COMPUTED,
            "method": self.method,
            "method_version": self.method_version,
            "reliable": self.reliable,
            "unattributed_ppm": self.unattributed_ppm,
            "items": [{"isrc": i.isrc, "weight_ppm": i.weight_ppm} for i in self.items],
            "works": [{"work_id": w, "weight_ppm": p} for w, p in self.works],
            "holders": {
                "master": [{"party_id": h, "weight_ppm": p} for h, p in self.master],
                "publishing": [{"party_id": h, "weight_ppm": p} for h, p in self.publishing],
            },
            "top": [
                {
                    "isrc": i.isrc,
                    "title": i.title,
                    "weight_ppm": i.weight_ppm,
                    "works": [{"work_id": w.work_id, "title": w.title} for w in i.works],
                }
                for i in self.items[:TOP_N]
            ],
        }


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_commitment(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _weighted_list(value: Any, key: str, where: str) -> list[str]:
    """Problems of a ``[{key: str, "weight_ppm": int}, ...]`` list sorted by weight desc then key.

    An entry may be committed instead (the public form, :mod:`accord.attribution.disclosure`):
    ``{"commitment": <64 lower-case hex digits>, "weight_ppm": int}``, sorted by its commitment.
    """
    if not isinstance(value, list):
        return [f"{where}: {value!r} is not a list"]
    problems: list[str] = []
    for n, entry in enumerate(value):
        if not isinstance(entry, Mapping) or set(entry) not in ({key, "weight_ppm"}, {COMMITMENT, "weight_ppm"}):
            problems.append(
                f"{where}[{n}]: {entry!r} is not an object with exactly {key} (or {COMMITMENT}) and weight_ppm"
            )
        elif key in entry and (not isinstance(entry[key], str) or not entry[key]):
            problems.append(f"{where}[{n}].{key}: {entry[key]!r} is not a non-empty string")
        elif COMMITMENT in entry and not _is_commitment(entry[COMMITMENT]):
            problems.append(f"{where}[{n}].{COMMITMENT}: {entry[COMMITMENT]!r} is not 64 lower-case hex digits")
        elif not _is_int(entry["weight_ppm"]) or not 0 < entry["weight_ppm"] <= PPM_WHOLE:
            problems.append(f"{where}[{n}].weight_ppm: {entry['weight_ppm']!r} is not an integer in 1..1,000,000")
    if problems:
        return problems
    order = [(-e["weight_ppm"], e.get(key, e.get(COMMITMENT))) for e in value]
    if order != sorted(order):
        problems.append(f"{where}: not sorted by weight_ppm descending, then {key} (or {COMMITMENT})")
    if len({e[key] for e in value if key in e}) != sum(key in e for e in value):
        problems.append(f"{where}: a {key} appears twice")
    if len({e[COMMITMENT] for e in value if COMMITMENT in e}) != sum(COMMITMENT in e for e in value):
        problems.append(f"{where}: a {COMMITMENT} appears twice")
    return problems


def attribution_problems(value: Any, *, where: str = "credential.attribution") -> list[str]:
    """Every way ``value`` breaks the attribution contract (empty: it holds).

    A field that is not ``computed`` (``pending`` in credentials made before attribution
    existed) only needs its ``status``; a computed one must be the contract exactly, with
    ``sum(items) + unattributed_ppm == 1_000_000`` and no side's holders above the items' total.
    """
    if not isinstance(value, Mapping) or not isinstance(value.get("status"), str) or not value["status"]:
        return [f"{where}: {value!r} is not an object with a status"]
    if value["status"] != COMPUTED:
        return []
    expected = {
        "status",
        "method",
        "method_version",
        "reliable",
        "unattributed_ppm",
        "items",
        "works",
        "holders",
        "top",
    }
    problems = [f"{where}.{k}: missing" for k in sorted(expected - set(value))]
    problems += [f"{where}.{k}: unexpected field" for k in sorted(set(value) - expected)]
    if problems:
        return problems
    for name in ("method", "method_version"):
        if not isinstance(value[name], str) or not value[name]:
            problems.append(f"{where}.{name}: {value[name]!r} is not a non-empty string")
    if not isinstance(value["reliable"], bool):
        problems.append(f"{where}.reliable: {value['reliable']!r} is not true or false")
    unattributed = value["unattributed_ppm"]
    if not _is_int(unattributed) or not 0 <= unattributed <= PPM_WHOLE:
        problems.append(f"{where}.unattributed_ppm: {unattributed!r} is not an integer in 0..1,000,000")
    problems += _weighted_list(value["items"], "isrc", f"{where}.items")
    problems += _weighted_list(value["works"], "work_id", f"{where}.works")
    holders = value["holders"]
    if not isinstance(holders, Mapping) or set(holders) != set(SIDES):
        problems.append(f"{where}.holders: {holders!r} is not an object with exactly master and publishing")
    else:
        for side in SIDES:
            problems += _weighted_list(holders[side], "party_id", f"{where}.holders.{side}")
    if not isinstance(value["top"], list) or len(value["top"]) > TOP_N:
        problems.append(f"{where}.top: expected a list of at most {TOP_N} entries")
    if problems:
        return problems
    items_total = sum(e["weight_ppm"] for e in value["items"])
    if items_total + unattributed != PPM_WHOLE:
        problems.append(
            f"{where}: items sum to {items_total} ppm and unattributed is {unattributed} ppm;"
            f" expected them to sum to exactly {PPM_WHOLE}"
        )
    for name, entries in (("works", value["works"]), *((f"holders.{s}", holders[s]) for s in SIDES)):
        total = sum(e["weight_ppm"] for e in entries)
        if total > items_total:
            problems.append(f"{where}.{name}: sum to {total} ppm, more than the items' {items_total} ppm")
    named = [e["isrc"] for e in value["items"] if "isrc" in e]
    committed = len(value["items"]) - len(named)
    top = [t.get("isrc") if isinstance(t, Mapping) else None for t in value["top"]]
    if not committed and top != named[:TOP_N]:
        problems.append(f"{where}.top: expected the first {min(TOP_N, len(named))} items, in order")
    elif committed and (top != named[: len(top)] or len(top) < min(TOP_N, len(value["items"])) - committed):
        problems.append(
            f"{where}.top: expected the first items named in the full attribution's top {TOP_N}, in order"
            f" ({committed} committed items left out)"
        )
    return problems


def not_computed(reason: str) -> dict[str, Any]:
    """The credential field for an output whose attribution could not be computed (with why)."""
    return {"status": "not_computed", "note": reason}


def sorted_weights(pairs: Sequence[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    """Pairs without zero weights, sorted by weight descending then id (the contract's order)."""
    return tuple(sorted(((k, v) for k, v in pairs if v > 0), key=lambda kv: (-kv[1], kv[0])))
