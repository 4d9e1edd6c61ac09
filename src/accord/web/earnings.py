"""Earnings, statements and royalty periods for the portal, over :mod:`accord.royalties`.

The royalty engine owns runs, periods, the ledger and statements; this module only asks it
for what a page shows (a party's closed periods and their statements; the operator's
periods, runs and ledger check) and draws the earnings chart as inline SVG (no JavaScript
library, no build step).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from html import escape
from types import ModuleType
from typing import Any

from accord.api.auth import Principal
from accord.errors import NotFound
from accord.registry.store import Store
from accord.settings import Settings


@dataclass(frozen=True)
class PeriodEarnings:
    """What one party earned in one closed period.

    Attributes:
        period: ``YYYY-MM``.
        currency: ISO 4217 code.
        income: basis → micro-units (``training``, ``output``).
        closing_balance: owed at period end, micro-units.
        paid: paid out in the period, micro-units.
        lines: statement lines.
    """

    period: str
    currency: str
    income: dict[str, int]
    closing_balance: int
    paid: int
    lines: int

    @property
    def total(self) -> int:
        return sum(self.income.values())


def _module(name: str) -> ModuleType | None:
    """A royalties module, if this installation has it."""
    try:
        return importlib.import_module(f"accord.royalties.{name}")
    except ImportError:
        return None


def statements_of(store: Store, settings: Settings, principal: Principal) -> list[Any]:
    """The principal's statements of every closed period (one per period and currency), oldest first.

    Who may see which statement is :func:`accord.api.royalties.statements_for`'s rule (a rights
    holder: its own, of closed periods only), the same as the API's.
    """
    periods = _module("periods")
    if periods is None or _module("accounts") is None:
        return []
    from accord.api.royalties import statements_for

    found = [s for p in sorted(periods.closed_periods(store)) for s in statements_for(store, settings, principal, p)]
    return sorted(found, key=lambda s: (s.period, s.currency))


def periods_for(store: Store, settings: Settings, principal: Principal) -> list[PeriodEarnings]:
    """What the principal earned in each closed period, oldest first."""
    return [_earnings(s) for s in statements_of(store, settings, principal)]


def _earnings(statement: Any) -> PeriodEarnings:
    return PeriodEarnings(
        statement.period,
        statement.currency,
        dict(statement.income),
        statement.closing_balance,
        statement.paid,
        len(statement.lines),
    )


def statement_file(
    store: Store, settings: Settings, principal: Principal, period: str, currency: str, fmt: str
) -> tuple[str, str, str]:
    """``(body, media type, file name)`` of one of the principal's statements (404 if not its own or not closed)."""
    from accord.api.royalties import statement_for
    from accord.royalties import statements as st

    writers = {
        "csv": (st.csv_text, "text/csv"),
        "json": (st.json_text, "application/json"),
        "html": (st.html_text, "text/html"),
    }
    if fmt not in writers:
        msg = f"statement {period}/{currency}.{fmt}: not found"
        raise NotFound(msg)
    found = statement_for(store, settings, principal, period, currency, None)
    write, media = writers[fmt]
    return write(found), media, f"statement-{found.party_id}-{found.period}-{found.currency}.{fmt}"


@dataclass(frozen=True)
class PeriodRow:
    """One royalty period as the operator reviews it.

    Attributes:
        period: ``YYYY-MM``.
        status: ``open`` or ``closed``.
        run_id: its latest run (final when closed), or ``""``.
        run_status: ``draft`` or ``final``, or ``""``.
        revenue: currency → net revenue of the run, micro-units.
        payable: currency → paid into the parties' accounts.
        unmatched: currency → held in suspense (usage matching no agreement).
        operator: currency → the operator's share.
    """

    period: str
    status: str
    run_id: str = ""
    run_status: str = ""
    revenue: dict[str, int] | None = None
    payable: dict[str, int] | None = None
    unmatched: dict[str, int] | None = None
    operator: dict[str, int] | None = None


def _period_row(store: Store, settings: Settings, period: str) -> PeriodRow:
    from accord.royalties import periods, run

    status = periods.period_status(store, period)
    try:
        latest = run.latest_run(store, settings, period)
    except NotFound:
        return PeriodRow(period, status)
    s = latest.summary
    return PeriodRow(
        period,
        status,
        latest.run_id,
        latest.status,
        s.get("revenue"),
        s.get("payable"),
        s.get("unmatched"),
        s.get("operator"),
    )


def operator_view(store: Store, settings: Settings, period: str) -> dict[str, Any]:
    """The royalty periods (this month, last month, every closed one, the one asked), the review of one."""
    periods = _module("periods")
    if periods is None or _module("run") is None:
        return {"available": False, "periods": [], "period": period, "review": []}
    now = periods.period_of(store.clock())
    wanted = {now, periods.previous_period(now), *periods.closed_periods(store)}
    if period:
        wanted.add(periods.parse_period(period))
    rows = [_period_row(store, settings, p) for p in sorted(wanted, reverse=True)]
    review = _review(store, settings, period) if period else []
    return {"available": True, "periods": rows, "period": period, "review": review, "default_period": now}


def _review(store: Store, settings: Settings, period: str) -> list[dict[str, Any]]:
    """Per party and currency: training pool, output pool, total of the period's latest run."""
    from accord.royalties import run

    try:
        result = run.load_result(run.latest_run(store, settings, period))
    except NotFound:
        return []
    totals: dict[tuple[str, str], dict[str, int]] = {}
    lines = result.lines.select(["party_id", "currency", "basis", "amount"]).to_pylist()
    for line in lines:
        entry = totals.setdefault((line["party_id"], line["currency"]), {"training": 0, "output": 0})
        entry[line["basis"]] = entry.get(line["basis"], 0) + int(line["amount"])
    return [
        {"party": party, "currency": cur, **amounts, "total": sum(amounts.values())}
        for (party, cur), amounts in sorted(totals.items())  # by party id: a stable order
    ]


def run_period(store: Store, settings: Settings, period: str, *, actor: str) -> str:
    """Run (or re-run) an open period; the run's id."""
    from accord.royalties import run

    return str(run.run_period(store, settings, period, actor=actor).run_id)


def close_period(store: Store, settings: Settings, period: str, *, actor: str) -> None:
    """Close a period: it must reproduce its latest run; it is posted to the ledger and never changes."""
    from accord.royalties import run

    run.close_period(store, settings, period, actor=actor)


def verify_ledger(store: Store, settings: Settings) -> dict[str, Any]:
    """The ledger checked now (hash chain, and its end against the latest signed head): verdict, problems, head."""
    ledger, heads = _module("ledger"), _module("heads")
    if ledger is None or heads is None:
        return {"available": False}
    check = ledger.verify(store, heads.operator_public_key(settings.home))
    summary = f"{check.checked} transfer(s) checked; head {check.head[:16]}…" if check.checked else "no transfer yet"
    return {"available": True, "valid": check.ok, "problems": list(check.problems), "summary": summary}


def money_text(micros: int, currency: str) -> str:
    """``12345678, EUR`` → ``EUR 12.35`` (display only; statements keep the micro-units)."""
    cents = (abs(micros) + 5_000) // 10_000
    sign = "-" if micros < 0 else ""
    return f"{currency} {sign}{cents // 100:,}.{cents % 100:02d}"


def bar_chart(periods: list[PeriodEarnings], *, width: int = 720, height: int = 240) -> str:
    """Earnings per period as a stacked SVG bar chart (training pool, output pool), or ``""``."""
    if not periods:
        return ""
    colours = {"training": "#3b6ea8", "output": "#d98c2b"}
    top = max(p.total for p in periods) or 1
    pad_l, pad_b, pad_t = 70, 30, 20
    plot_h = height - pad_b - pad_t
    step = (width - pad_l - 10) / len(periods)
    bar_w = min(60.0, step * 0.6)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="Earnings per period">',
        f'<line x1="{pad_l}" y1="{pad_t + plot_h}" x2="{width - 10}" y2="{pad_t + plot_h}" stroke="#999"/>',
        f'<text x="{pad_l - 6}" y="{pad_t + 4}" text-anchor="end" class="axis">'
        f"{escape(money_text(top, periods[0].currency))}</text>",
    ]
    for i, p in enumerate(periods):
        x = pad_l + i * step + (step - bar_w) / 2
        y = float(pad_t + plot_h)
        for basis in ("training", "output"):
            h = plot_h * p.income.get(basis, 0) / top
            if h > 0:
                y -= h
                title = f"{p.period} {basis}: {money_text(p.income.get(basis, 0), p.currency)}"
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                    f'fill="{colours[basis]}"><title>{escape(title)}</title></rect>'
                )
        cx, label = x + bar_w / 2, escape(p.period)
        parts.append(f'<text x="{cx:.1f}" y="{height - 10}" text-anchor="middle" class="axis">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)
