"""How outputs may leave the platform: plans, as configuration.

Licensed services are walled gardens: a free plan streams only; paid plans get a monthly
download allowance. Plans come from ``ACCORD_PLANS`` (JSON) or the defaults below::

    ACCORD_PLANS='{"free": {"downloads_per_month": 0}, "pro": {"downloads_per_month": 30}}'
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from accord.errors import AccordError, ValidationError

DEFAULT_PLANS_JSON = '{"free": {"downloads_per_month": 0}, "pro": {"downloads_per_month": 30}}'


class Refused(AccordError):
    """A request the platform's policy does not allow (a download over the plan's allowance ...)."""

    code = "refused"


@dataclass(frozen=True)
class Plan:
    """A creator plan.

    Attributes:
        name: its name.
        downloads_per_month: downloads allowed per calendar month (UTC); 0 means stream only.
    """

    name: str
    downloads_per_month: int

    @property
    def stream_only(self) -> bool:
        return self.downloads_per_month == 0


def parse_plans(text: str) -> dict[str, Plan]:
    """Plans from their JSON configuration; every problem named."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"plans: not valid JSON ({exc})"
        raise ValidationError(msg, field="plans") from None
    if not isinstance(raw, dict) or not raw:
        msg = 'plans: expected an object like {"free": {"downloads_per_month": 0}}'
        raise ValidationError(msg, field="plans")
    plans = {}
    for name, spec in raw.items():
        n = spec.get("downloads_per_month") if isinstance(spec, dict) else None
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            msg = f"plans.{name}.downloads_per_month: {n!r} is not an integer >= 0"
            raise ValidationError(msg, field=f"plans.{name}.downloads_per_month", value=n)
        plans[name] = Plan(name, n)
    return plans


def check_download(plan: Plan, downloads_this_month: int) -> None:
    """Raise :class:`Refused` when the plan does not allow one more download this month."""
    if plan.stream_only:
        msg = f"download refused: the {plan.name} plan streams only; play the output in the platform instead"
        raise Refused(msg)
    if downloads_this_month >= plan.downloads_per_month:
        msg = (
            f"download refused: the {plan.name} plan's {plan.downloads_per_month} downloads this month "
            "are used up; the allowance renews on the 1st (UTC)"
        )
        raise Refused(msg)
