"""The royalty policy of a period: how revenue is split before the agreements' own terms apply.

Most terms come from the agreements themselves (each licensor's rights-pool share of net
revenue, the master/publishing split, the training-pool method, minimum guarantees,
advances). The policy holds the period-level settings that no single agreement can decide:

* ``training_share_ppm``: the part of revenue that forms the training pool; the rest is the
  output pool (default 50/50).
* ``training_pool_method``: how a model's training money is split among its manifest's items
  (``equal_per_work`` or ``pro_rata_duration``) for every agreement; empty (the default) means
  each agreement's own method, honoured per licensor in one run (the pot is split equally per
  work, then a ``pro_rata_duration`` licensor's share is re-split over its items by duration).
* ``kind_weights``: how many units each usage event kind counts for.
* ``output_kinds``: the kinds that monetise an output (a generation alone does not).
* ``reserve_ppm``: the part of each period's royalty income held in reserve, released in the
  next period's close.

Set it in ``ACCORD_ROYALTY_POLICY`` (JSON, or the path of a JSON file) as
``{"default": {...}, "2026-11": {...}}``: a period's entry overrides the default's fields.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from accord.errors import ValidationError
from accord.money import check_ppm
from accord.registry.entities import TrainingPoolMethod
from accord.royalties.usage_checks import USAGE_KINDS
from accord.settings import Settings

DEFAULT_KIND_WEIGHTS = (("download", 1), ("generation", 1), ("play", 1), ("stream", 1))


@dataclass(frozen=True)
class RoyaltyPolicy:
    """Period-level royalty settings.

    Attributes:
        training_share_ppm: the training pool's part of revenue; the output pool gets the rest.
        training_pool_method: ``equal_per_work``, ``pro_rata_duration`` or ``""`` (each agreement's own).
        kind_weights: (kind, units) for each usage kind, sorted by kind.
        output_kinds: kinds that monetise an output (they weight the output pool), sorted.
        reserve_ppm: part of royalty income held in reserve until the next period's close.
    """

    training_share_ppm: int = 500_000
    training_pool_method: str = ""
    kind_weights: tuple[tuple[str, int], ...] = DEFAULT_KIND_WEIGHTS
    output_kinds: tuple[str, ...] = ("download", "play", "stream")
    reserve_ppm: int = 0

    def __post_init__(self) -> None:
        check_ppm(self.training_share_ppm, field="policy.training_share_ppm")
        check_ppm(self.reserve_ppm, field="policy.reserve_ppm")
        if self.training_pool_method and self.training_pool_method not in set(TrainingPoolMethod):
            msg = (
                f"policy.training_pool_method: {self.training_pool_method!r} is not one of "
                f"{', '.join(TrainingPoolMethod)} (or empty: as the agreements say)"
            )
            raise ValidationError(msg, field="policy.training_pool_method", value=self.training_pool_method)
        for kind, weight in self.kind_weights:
            if kind not in USAGE_KINDS or isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
                msg = f"policy.kind_weights: {kind!r}={weight!r}; expected a usage kind ({USAGE_KINDS}) and an int >= 0"
                raise ValidationError(msg, field="policy.kind_weights", value=kind)
        for kind in self.output_kinds:
            if kind not in USAGE_KINDS:
                msg = f"policy.output_kinds: {kind!r} is not a usage kind ({', '.join(USAGE_KINDS)})"
                raise ValidationError(msg, field="policy.output_kinds", value=kind)

    def to_dict(self) -> dict[str, Any]:
        return {
            "training_share_ppm": self.training_share_ppm,
            "training_pool_method": self.training_pool_method,
            "kind_weights": dict(self.kind_weights),
            "output_kinds": list(self.output_kinds),
            "reserve_ppm": self.reserve_ppm,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: RoyaltyPolicy | None = None) -> RoyaltyPolicy:
        """A policy from a mapping; fields not given keep ``base``'s (or the defaults)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            msg = f"policy: unknown field(s) {', '.join(unknown)}; expected some of {', '.join(sorted(known))}"
            raise ValidationError(msg, field="policy", value=unknown[0])
        changes: dict[str, Any] = {}
        for key, value in data.items():
            if key == "kind_weights":
                weights = dict(DEFAULT_KIND_WEIGHTS) | dict(value)
                changes[key] = tuple(sorted(weights.items()))
            elif key == "output_kinds":
                changes[key] = tuple(sorted(set(value)))
            else:
                changes[key] = value
        return replace(base or cls(), **changes)


def load_policy(settings: Settings, period: str) -> RoyaltyPolicy:
    """The policy for ``period``: the defaults, then the setting's ``default``, then its period entry."""
    text = settings.royalty_policy.strip()
    if not text:
        return RoyaltyPolicy()
    if not text.startswith("{"):
        path = Path(text)
        if not path.is_file():
            msg = f"royalty_policy: {text!r} is neither JSON nor an existing file"
            raise ValidationError(msg, field="royalty_policy", value=text)
        text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"royalty_policy: not valid JSON ({exc.msg} at line {exc.lineno})"
        raise ValidationError(msg, field="royalty_policy") from None
    if not isinstance(data, dict):
        msg = 'royalty_policy: expected an object {"default": {...}, "YYYY-MM": {...}}'
        raise ValidationError(msg, field="royalty_policy")
    policy = RoyaltyPolicy.from_dict(data.get("default", {}))
    return RoyaltyPolicy.from_dict(data.get(period, {}), policy)
