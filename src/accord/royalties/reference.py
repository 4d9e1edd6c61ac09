"""The royalty cascade written for a reader: plain per-row Python, integers only, one step per rule.

This is the *reference* implementation that ``docs/royalties.md`` points to. It follows the
document's rules step by step (each function cites its section) and is compared with the
vectorised engine (:mod:`accord.royalties.engine`, :mod:`accord.royalties.cascade`) by
``tests/test_royalties_reference.py``: exactly equal per line, per suspense reason, per party
and currency. It is slow on purpose: no arrays, no SQL, no codes; every split is one call of
:func:`accord.money.allocate` (largest remainder, ties by a stable key).

It reads what the engine reads, but from the registry's own objects rather than the engine's
derived tables: a :class:`~accord.registry.entities.Catalog` (as of the period's end), each
model's manifest items, each output's credential, the period's usage events and the policy.
:func:`close` then applies §4a to the run's lines: advances granted once and recouped from the
licensor's payable (oldest agreement first), and guarantee shortfalls at a term's end, carrying its own
balances from one period to the next.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from typing import Any

from accord.datasets.manifest import ManifestItem
from accord.money import allocate
from accord.registry.entities import (
    PPM_WHOLE,
    Agreement,
    Catalog,
    GuaranteeSettlement,
    GuaranteeTerm,
    Side,
    TrainingPoolMethod,
    Use,
)
from accord.royalties.periods import period_bounds
from accord.royalties.policy import RoyaltyPolicy

W = PPM_WHOLE
USE_OF_BASIS = {"training": Use.TRAIN, "output": Use.GENERATE}
"""§3 Matching: the use an agreement must grant for each basis."""

Key = tuple[str, ...]


def split(total: int, children: Sequence[tuple[Key, int]]) -> dict[Key, int]:
    """``total`` over ``children`` (key, weight) of positive weight: :func:`accord.money.allocate`.

    The tie-break is the children's keys in ascending order (tuples of ids compared field by
    field), handed to ``allocate`` as their rank so that it is exactly that order.
    """
    live = sorted((k, w) for k, w in children if w > 0)
    ranks = [f"{i:09d}" for i in range(len(live))]
    parts = allocate(total, [w for _, w in live], ranks)
    return {k: p for (k, _), p in zip(live, parts, strict=True)}


@dataclass
class Reference:
    """What the reference computes for one period (the engine's :class:`~accord.royalties.engine.RunResult`).

    Attributes:
        revenue: currency → net revenue (micro-units).
        operator: currency → the operator's share.
        lines: (party, currency, basis, side, isrc, work, model, output) → the line's fields
            (``units``, ``share_ppm``, ``amount``, ``agreement_id``); amounts > 0 only.
        suspense: (currency, reason, basis, model, output, isrc, side, work, party) → amount.
    """

    revenue: dict[str, int] = field(default_factory=dict)
    operator: dict[str, int] = field(default_factory=dict)
    lines: dict[Key, dict[str, Any]] = field(default_factory=dict)
    suspense: dict[Key, int] = field(default_factory=lambda: defaultdict(int))

    def payable(self) -> dict[tuple[str, str], int]:
        """(party, currency) → income of the period."""
        out: dict[tuple[str, str], int] = defaultdict(int)
        for key, line in self.lines.items():
            out[(key[0], key[1])] += line["amount"]
        return dict(out)

    def lose(self, amount: int, currency: str, reason: str, **where: str) -> None:
        """§3 "Suspense, never dropped": money that cannot go further, with its reason."""
        if amount:
            names = ("basis", "model", "output", "isrc", "side", "work", "party")
            self.suspense[(currency, reason, *(where.get(n, "") for n in names))] += amount


def attribution_of(credential: Mapping[str, Any] | None) -> list[tuple[str, int]]:
    """§3 Attribution: (isrc, weight ppm) of a computed, reliable attribution, ``""`` the unattributed part.

    Anything else (pending, unreliable, missing, not adding up to the whole) is all ``""``:
    the model's training-method pot.
    """
    attr = credential.get("attribution") if isinstance(credential, Mapping) else None
    if not isinstance(attr, Mapping) or attr.get("status") != "computed" or attr.get("reliable") is not True:
        return [("", W)]
    weights: dict[str, int] = defaultdict(int)
    for item in attr.get("items") or []:
        ok = isinstance(item, Mapping) and isinstance(item.get("isrc"), str) and item["isrc"]
        weight = item.get("weight_ppm") if ok else None
        if type(weight) is not int or weight <= 0:
            return [("", W)]
        weights[item["isrc"]] += weight
    rest = attr.get("unattributed_ppm")
    if type(rest) is not int or rest < 0 or sum(weights.values()) + rest != W:
        return [("", W)]
    return [*weights.items(), ("", rest)]


class Registry:
    """The facts §3 reads from the registry as of the period's end, answered one question at a time."""

    def __init__(self, catalog: Catalog, period: str) -> None:
        self.catalog = catalog
        start, end = period_bounds(period)
        # "in force at some instant of the period"; lowest agreement id first
        self.agreements = sorted(
            (a for a in catalog.agreements.values() if a.start < end and (a.end is None or a.end > start)),
            key=lambda a: a.agreement_id,
        )
        self.of_licensor: dict[tuple[str, str], list[Agreement]] = defaultdict(list)  # an index, in id order
        for a in self.agreements:
            self.of_licensor[(a.licensor, Side(a.side).value)].append(a)

    def owners(self, isrc: str, side: str, work: str) -> list[tuple[str, int]]:
        """§3 "work -> owners by share": (party, share ppm) with a share, and ``""`` for an unowned rest."""
        if side == Side.MASTER:
            shares = self.catalog.recordings[isrc].shares
        else:
            found = self.catalog.works.get(work)
            shares = found.shares if found is not None else ()
        total: dict[str, int] = defaultdict(int)
        for s in shares:
            total[s.party_id] += s.ppm
        owners = [(p, v) for p, v in sorted(total.items()) if v > 0]
        rest = W - sum(v for _, v in owners)
        return [*owners, ("", rest)] if rest > 0 else owners

    def fits(self, a: Agreement, party: str, side: str, subject: str, basis: str | None) -> bool:
        """§3 Matching: the owner's agreement on that side, granting the basis's use, covering the subject."""
        if a.licensor != party or Side(a.side).value != side:
            return False
        if basis is not None and USE_OF_BASIS[basis] not in a.uses:
            return False
        listed = a.coverage.recordings if side == Side.MASTER else a.coverage.works
        return a.coverage.catalog or subject in listed

    def agreement(self, party: str, side: str, subject: str, basis: str) -> Agreement | None:
        """§3 Matching: lowest agreement id first."""
        return next((a for a in self.of_licensor[(party, side)] if self.fits(a, party, side, subject, basis)), None)

    def works(self, isrc: str) -> list[str]:
        return sorted(set(self.catalog.recordings[isrc].works))

    def master_split(self, isrc: str) -> int:
        """§3 Matching: the lowest-id fitting master agreement's split (else publishing, else 50/50)."""
        master = [(p, Side.MASTER.value, isrc) for p, _ in self.owners(isrc, Side.MASTER.value, "") if p]
        publishing = [
            (p, Side.PUBLISHING.value, w) for w in self.works(isrc) for p, _ in self.owners(isrc, "publishing", w) if p
        ]
        for subjects in (master, publishing):
            fitting = [a for p, s, x in subjects for a in self.of_licensor[(p, s)] if self.fits(a, p, s, x, None)]
            fitting = [a for a in fitting if Use.TRAIN in a.uses or Use.GENERATE in a.uses]
            if fitting:
                return min(fitting, key=lambda a: a.agreement_id).terms.master_split_ppm
        return W // 2


def compute(
    catalog: Catalog,
    models: Mapping[str, Sequence[ManifestItem]],
    credentials: Mapping[str, Mapping[str, Any]],
    events: Iterable[Mapping[str, Any]],
    policy: RoyaltyPolicy,
    period: str,
) -> Reference:
    """§3 "The run: from revenue to each owner", per currency, one level at a time.

    ``events`` are the period's usage log rows (``kind``, ``output_id``, ``model_id``, and for
    revenue ``amount`` and ``currency``; rows of another ``period`` are ignored).
    """
    reg, ref = Registry(catalog, period), Reference()
    weight_of = dict(policy.kind_weights)
    model_units: dict[str, int] = defaultdict(int)  # §3: "by each model's usage units (all kinds)"
    model_events: dict[str, int] = defaultdict(int)
    output_units: dict[tuple[str, str], int] = defaultdict(int)  # "by each output's monetising units"
    output_events: dict[tuple[str, str], int] = defaultdict(int)
    for e in events:
        if e.get("period", period) != period:
            continue
        if e["kind"] == "revenue":
            ref.revenue[e["currency"]] = ref.revenue.get(e["currency"], 0) + int(e["amount"])
        elif e["kind"] in weight_of:
            units = weight_of[e["kind"]]
            model_units[e["model_id"]] += units
            model_events[e["model_id"]] += 1
            if e["kind"] in policy.output_kinds:
                output_units[(e["output_id"], e["model_id"])] += units
                output_events[(e["output_id"], e["model_id"])] += 1
    for currency in sorted(ref.revenue):
        ref.operator[currency] = 0
        _currency(reg, ref, currency, models, credentials, policy, model_units, model_events, output_units)
    for (_, _, basis, _, _, _, model, output), line in ref.lines.items():
        line["units"] = model_events[model] if basis == "training" else output_events[(output, model)]
    if not policy.training_pool_method:
        _by_duration(ref, reg, models)
    ref.suspense = {k: v for k, v in ref.suspense.items() if v}
    return ref


def _currency(
    reg: Registry,
    ref: Reference,
    currency: str,
    models: Mapping[str, Sequence[ManifestItem]],
    credentials: Mapping[str, Mapping[str, Any]],
    policy: RoyaltyPolicy,
    model_units: Mapping[str, int],
    model_events: Mapping[str, int],
    output_units: Mapping[tuple[str, str], int],
) -> None:
    """§2 ``training_share_ppm`` and §3, for one currency's revenue."""
    revenue = ref.revenue[currency]
    # §2: "an empty pool's part goes to the other"
    has_training, has_output = sum(model_units.values()) > 0, sum(output_units.values()) > 0
    if not has_training and not has_output:
        ref.lose(revenue, currency, "no_usage")
        return
    output_w = W - policy.training_share_ppm if has_output else 0
    training_w = policy.training_share_ppm if has_training else 0
    if not output_w and not training_w:
        training_w = W
    output_pool, training_pool = allocate(revenue, [output_w, training_w], ["output", "training"])
    pots: dict[str, int] = defaultdict(int)  # model -> its pot (training money + output remainders)
    for (model,), amount in split(training_pool, [((m,), u) for m, u in model_units.items()]).items():
        pots[model] += amount
    by_output = split(output_pool, [((o, m), u) for (o, m), u in output_units.items()])
    for (output, model), amount in sorted(by_output.items()):
        for (isrc,), part in split(amount, [((i,), w) for i, w in attribution_of(credentials.get(output))]).items():
            if isrc == "":
                pots[model] += part  # the unattributed part joins the model's training-method pot
            else:
                _recording(reg, ref, part, currency, "output", model, output, isrc)
    for model, pot in sorted(pots.items()):
        items: dict[str, int] = defaultdict(int)
        for item in models.get(model, ()):
            by_duration = policy.training_pool_method == TrainingPoolMethod.PRO_RATA_DURATION
            items[item.isrc] += max(item.duration_ms, 0) if by_duration else 1
        if not any(items.values()):
            ref.lose(pot, currency, "no_manifest", basis="training", model=model)
            continue
        for (isrc,), part in split(pot, [((i,), w) for i, w in items.items()]).items():
            _recording(reg, ref, part, currency, "training", model, "", isrc)


def _recording(reg: Registry, ref: Reference, amount: int, currency: str, basis: str, model: str, output: str,
               isrc: str) -> None:  # fmt: skip
    """§3 recording -> master | publishing -> works -> owners -> payable | operator."""
    where = {"basis": basis, "model": model, "output": output, "isrc": isrc}
    if amount == 0:
        return
    if isrc not in reg.catalog.recordings:
        ref.lose(amount, currency, "unknown_recording", **where)
        return
    master = reg.master_split(isrc)
    sides = split(amount, [(("master",), master), (("publishing",), W - master)])
    for (side,), side_amount in sides.items():
        works = [""] if side == Side.MASTER else reg.works(isrc)
        if not works:
            ref.lose(side_amount, currency, "no_works", side=side, **where)
            continue
        for (work,), work_amount in split(side_amount, [((w,), 1) for w in works]).items():
            owners = reg.owners(isrc, side, work)
            for (party,), owned in split(work_amount, [((p,), s) for p, s in owners]).items():
                _owner(reg, ref, owned, currency, side, work, party, dict(owners)[party], **where)


def _owner(reg: Registry, ref: Reference, amount: int, currency: str, side: str, work: str, party: str, share: int,
           **where: str) -> None:  # fmt: skip
    """§3 owner -> payable | operator, by the owner's agreement's pool share; no agreement: suspense."""
    if amount == 0:
        return
    if party == "":
        ref.lose(amount, currency, "unowned_share", side=side, work=work, **where)
        return
    subject = where["isrc"] if side == Side.MASTER else work
    a = reg.agreement(party, side, subject, where["basis"])
    if a is None:
        ref.lose(amount, currency, "no_agreement", side=side, work=work, party=party, **where)
        return
    pool = a.terms.pool_share_ppm
    payable, operator = allocate(amount, [pool, W - pool], ["payable", "operator"])
    ref.operator[currency] += operator
    if payable:
        key = (party, currency, where["basis"], side, where["isrc"], work, where["model"], where["output"])
        ref.lines[key] = {"share_ppm": share, "amount": payable, "agreement_id": a.agreement_id}


def _by_duration(ref: Reference, reg: Registry, models: Mapping[str, Sequence[ManifestItem]]) -> None:
    """§3 "Each agreement's training-pool method": a ``pro_rata_duration`` licensor's training money,
    per (currency, model, agreement), re-split over its items by equal-per-work amount × duration."""
    methods = {a.agreement_id: a.terms.training_pool_method for a in reg.agreements}
    groups: dict[Key, list[Key]] = defaultdict(list)
    for key, line in ref.lines.items():
        party, currency, basis, _side, _isrc, _work, model, _ = key
        if basis == "training" and methods.get(line["agreement_id"]) == TrainingPoolMethod.PRO_RATA_DURATION:
            groups[(currency, model, party, line["agreement_id"])].append(key)
    for (_, model, _, _), keys in sorted(groups.items()):
        duration: dict[str, int] = {}
        for item in models.get(model, ()):
            duration[item.isrc] = max(duration.get(item.isrc, 0), max(item.duration_ms, 0))
        weights = [((k[4], k[5], k[3]), ref.lines[k]["amount"] * duration.get(k[4], 0)) for k in keys]
        if len(keys) < 2 or not any(w for _, w in weights):
            continue
        total = sum(ref.lines[k]["amount"] for k in keys)
        parts = split(total, weights)
        for k in keys:
            ref.lines[k]["amount"] = parts.get((k[4], k[5], k[3]), 0)
    ref.lines = {k: v for k, v in ref.lines.items() if v["amount"]}


@dataclass
class Books:
    """The reference's own balances carried from period to period (§4, §4a; one currency per advance).

    Attributes:
        payable: (party, currency) → payable balance.
        outstanding: (party, currency, agreement) → advance not yet recouped.
        granted: agreements whose advance has been paid.
        guarantee: (party, currency) → shortfalls paid into the guarantee account.
        term_earned: (agreement, term start) → the term's earnings to date.
    """

    payable: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    outstanding: dict[tuple[str, str, str], int] = field(default_factory=lambda: defaultdict(int))
    granted: set[str] = field(default_factory=set)
    guarantee: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    term_earned: dict[tuple[str, date], int] = field(default_factory=lambda: defaultdict(int))


@dataclass(frozen=True)
class Settled:
    """What :func:`close` did in one period.

    Attributes:
        advanced: agreement → advance paid this period.
        recouped: (party, currency, agreement) → recouped this period.
        shortfall: agreement → minimum-guarantee shortfall paid this period.
    """

    advanced: dict[str, int]
    recouped: dict[tuple[str, str, str], int]
    shortfall: dict[str, int]


TERM_MONTHS = {GuaranteeTerm.MONTHLY: 1, GuaranteeTerm.QUARTERLY: 3, GuaranteeTerm.YEARLY: 12}


def guarantee_term(a: Agreement, period: str) -> tuple[date, int, str] | None:
    """§4a "Term grid" and "Proration by days": the term ``period`` falls in, as (its first day,
    its guarantee, its last period), or ``None`` (no guarantee, or an ``agreement`` term).

    Terms are counted from the month of the agreement's start, 1, 3 or 12 months long; the term
    guarantees ``guarantee × days in force / days of the term``, half to even, a day counting
    when the agreement is in force at its start (UTC); its last period is the last month with
    a day in force.
    """
    mg, step = a.terms.minimum_guarantee, TERM_MONTHS.get(GuaranteeTerm(a.terms.guarantee_term))
    if mg is None or step is None:
        return None
    here, _ = period_bounds(period)
    anchor = a.start.year * 12 + a.start.month - 1
    first = anchor + (here.year * 12 + here.month - 1 - anchor) // step * step
    start, end = date(first // 12, first % 12 + 1, 1), date((first + step) // 12, (first + step) % 12 + 1, 1)
    days = [start + timedelta(days=d) for d in range((end - start).days)]
    in_force = [d for d in days if a.start <= _midnight(d) and (a.end is None or a.end > _midnight(d))]
    if not in_force:
        return None
    return start, round(Fraction(mg.micros * len(in_force), len(days))), f"{in_force[-1]:%Y-%m}"


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def close(ref: Reference, catalog: Catalog, period: str, books: Books) -> Settled:
    """§4a for one period, in one currency per agreement: ``term_end`` guarantees, advances.

    Shortfall, in a term's last period: ``max(0, the term's guarantee − the term's earnings)``,
    earnings counted in the guarantee's currency only (the reference converts nothing). Advances: paid the first period
    the agreement is in force; the licensor's payable in the advance's currency (opening balance
    plus this period's income) recoups what is outstanding, agreements oldest id first, never
    more than is outstanding. ``books`` is updated in place.
    """
    in_force = Registry(catalog, period).agreements
    earned: dict[tuple[str, str], int] = defaultdict(int)
    for (_, currency, *_), line in ref.lines.items():
        earned[(line["agreement_id"], currency)] += line["amount"]
    for (party, currency), amount in ref.payable().items():
        books.payable[(party, currency)] += amount
    shortfall: dict[str, int] = {}
    for a in in_force:
        term, mg = guarantee_term(a, period), a.terms.minimum_guarantee
        if term is None or mg is None:
            continue
        start, guaranteed, last = term
        books.term_earned[(a.agreement_id, start)] += earned.get((a.agreement_id, mg.currency), 0)
        if period != last or a.terms.guarantee_settlement != GuaranteeSettlement.TERM_END:
            continue  # term_end: one shortfall, in the term's last period
        short = max(0, guaranteed - books.term_earned[(a.agreement_id, start)])
        if short:
            shortfall[a.agreement_id] = short
            books.guarantee[(a.licensor, mg.currency)] += short
    advanced: dict[str, int] = {}
    for a in in_force:
        adv = a.terms.advance
        if adv is not None and adv.micros > 0 and a.agreement_id not in books.granted:
            advanced[a.agreement_id] = adv.micros
            books.granted.add(a.agreement_id)
            books.outstanding[(a.licensor, adv.currency, a.agreement_id)] += adv.micros
    recouped: dict[tuple[str, str, str], int] = {}
    for key in sorted(k for k, v in books.outstanding.items() if v > 0):
        party, currency, _ = key
        take = min(books.outstanding[key], max(0, books.payable[(party, currency)]))
        if take:
            recouped[key] = take
            books.outstanding[key] -= take
            books.payable[(party, currency)] -= take
    return Settled(advanced, recouped, shortfall)
