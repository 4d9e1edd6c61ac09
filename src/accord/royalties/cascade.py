"""The royalty engine's allocation levels over integer-coded keys (NumPy).

The registry tables and the period's usage are coded once (:class:`Codes`, :class:`Registry`);
each level of the cascade (:class:`Cascade`) is then a few array operations over its rows
and one :func:`~accord.royalties.vectorised.allocate_groups`; no string is touched until the
final lines are built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from accord.money import allocate
from accord.registry.entities import PPM_WHOLE
from accord.royalties.inputs import RunInputs
from accord.royalties.vectorised import (
    I64,
    Children,
    Grouped,
    allocate_groups,
    allocate_pairs,
    dictionary,
    encode,
    merge_rows,
    pack,
    starts_of_runs,
)

W = PPM_WHOLE
BASES = ("output", "training")
SUSPENSE_KEYS = ("currency", "reason", "basis", "model_id", "output_id", "isrc", "side", "work_id", "party_id")
LINE_ORDER = ("party", "cur", "basis", "isrc", "work", "model", "out", "side")
"""The lines' sort order (unique per line), by coded column."""


@dataclass(frozen=True)
class Codes:
    """The run's dictionaries: each key's code is its index in the sorted distinct strings."""

    cur: pa.Array
    basis: pa.Array
    model: pa.Array
    out: pa.Array
    isrc: pa.Array
    side: pa.Array
    work: pa.Array
    party: pa.Array
    agreement: pa.Array

    @classmethod
    def build(cls, currencies: Sequence[str], usage: pa.Table, attribution: pa.Table, inputs: RunInputs) -> Codes:
        h = inputs.holders
        return cls(
            cur=pa.array(sorted(currencies), pa.string()),
            basis=dictionary(h["basis"], extra=BASES),
            model=dictionary(usage["model_id"], inputs.items["model_id"]),
            out=dictionary(usage["output_id"], extra=[""]),
            isrc=dictionary(
                attribution["isrc"],
                inputs.items["isrc"],
                inputs.sides["isrc"],
                inputs.works["isrc"],
                h["isrc"],
                extra=[""],
            ),
            side=dictionary(inputs.sides["side"], inputs.works["side"], h["side"]),
            work=dictionary(inputs.works["work_id"], h["work_id"], extra=[""]),
            party=dictionary(h["party_id"], extra=[""]),
            agreement=dictionary(h["agreement_id"], extra=[""]),
        )

    def code(self, name: str, value: str) -> int:
        """The code of ``value`` (-1 when absent: no row carries it)."""
        found = pc.index(getattr(self, name), value).as_py()
        return -1 if found is None else int(found)

    def size(self, name: str) -> int:
        return max(len(getattr(self, name)), 1)

    def strings(self, name: str, codes: np.ndarray) -> pa.Array:
        return getattr(self, name).take(pa.array(codes, pa.int64()))


@dataclass(frozen=True)
class Registry:
    """The registry tables coded and merged as the engine's views define them (each key once)."""

    items: Grouped
    sides: Grouped
    works: Grouped
    holders: Grouped
    attr_out: np.ndarray
    attr_isrc: np.ndarray
    attr_weight: np.ndarray
    durations: Grouped
    by_duration: np.ndarray

    @classmethod
    def build(cls, inputs: RunInputs, attribution: pa.Table, codes: Codes) -> Registry:
        n = {k: codes.size(k) for k in ("model", "isrc", "side", "work", "basis", "party")}
        add, most, least = np.add, np.maximum, np.minimum

        def col(t: pa.Table, name: str) -> np.ndarray:
            return np.asarray(t[name].to_numpy(), I64)

        def key(t: pa.Table, names: Sequence[tuple[str, str]]) -> np.ndarray:
            return pack([encode(t[c], getattr(codes, d)) for c, d in names], [n[d] for _, d in names])

        t = inputs.items
        items = merge_rows(key(t, [("model_id", "model"), ("isrc", "isrc")]), {"weight": (col(t, "weight"), add)})
        t = inputs.sides
        sides = merge_rows(key(t, [("isrc", "isrc"), ("side", "side")]), {"weight": (col(t, "weight"), add)})
        t = inputs.works
        works = merge_rows(
            key(t, [("isrc", "isrc"), ("side", "side"), ("work_id", "work")]), {"weight": (col(t, "weight"), most)}
        )
        t = inputs.holders
        names = [("isrc", "isrc"), ("side", "side"), ("work_id", "work"), ("basis", "basis"), ("party_id", "party")]
        holders = merge_rows(
            key(t, names),
            {
                "weight": (col(t, "weight"), add),
                "share_ppm": (col(t, "share_ppm"), add),
                "agreement": (encode(t["agreement_id"], codes.agreement), least),
                "pool_ppm": (col(t, "pool_ppm"), least),
            },
        )
        out, isrc = encode(attribution["output_id"], codes.out), encode(attribution["isrc"], codes.isrc)
        weight = col(attribution, "weight")
        pair = pack([out, isrc], [codes.size("out"), n["isrc"]])
        shift = int(weight.max()).bit_length() if len(weight) else 0
        if len(pair) and int(pair.max()).bit_length() + shift <= 62 and int(weight.min()) >= 0:
            order = np.argsort((pair << shift) | weight, kind="stable")
        else:
            order = np.lexsort((weight, pair))  # canonical: nothing depends on the table's row order
        t = inputs.durations
        durations = merge_rows(key(t, [("model_id", "model"), ("isrc", "isrc")]), {"ms": (col(t, "duration_ms"), most)})
        method = {a.agreement_id: str(a.terms.training_pool_method) for a in inputs.agreements.values()}
        agreements = codes.agreement.to_pylist()
        by_duration = np.array(
            [i for i, aid in enumerate(agreements) if method.get(aid) == "pro_rata_duration"], dtype=I64
        )
        return cls(items, sides, works, holders, out[order], isrc[order], weight[order], durations, by_duration)


def resplit(
    amount: np.ndarray, ms: np.ndarray, starts: np.ndarray, key: np.ndarray, *, exact: bool = False
) -> np.ndarray:
    """Each group's total (groups: contiguous rows from ``starts``) re-split by ``amount x ms``.

    Largest remainder, ties by ``key`` ascending (:func:`accord.money.allocate` per group); a group
    whose weights are all 0 keeps its amounts. Vectorised (:func:`allocate_groups` over the rows of
    positive weight) unless the weights could overflow int64 or ``exact`` asks for the Python
    integers (the plain per-group version, which a property test compares with the fast one).
    """
    counts = np.diff(np.r_[starts, len(amount)])
    if len(amount) == 0:
        return amount.copy()
    if not exact and int(amount.max()) * max(int(ms.max()), 1) * int(counts.max()) < 2**62:
        weight = amount * ms
        total = np.add.reduceat(amount, starts)
        parent = np.repeat(np.arange(len(starts), dtype=I64), counts)
        live = np.add.reduceat(weight, starts) > 0
        pos = (weight > 0) & live[parent]
        got = allocate_groups(total[live], np.bincount(parent[pos], minlength=len(starts))[live], weight[pos], key[pos])
        new = np.where(live[parent], 0, amount)
        new[pos] = got
        return new
    new = amount.copy()
    for a, b in zip(starts, np.r_[starts[1:], len(amount)], strict=True):
        weights = [int(x) * int(m) for x, m in zip(amount[a:b], ms[a:b], strict=True)]
        if any(weights):
            keys = [f"{int(k):019d}" for k in key[a:b]]
            new[a:b] = allocate(int(amount[a:b].sum()), weights, keys)
    return new


def _positive(g: Grouped, child_size: int) -> tuple[Children, np.ndarray, dict[str, np.ndarray]]:
    """The rows of positive weight, by parent key (the packed key less its last code), and the last code."""
    keep = np.flatnonzero(g.columns["weight"] > 0)
    k = g.key[keep]
    return Children.of(k // child_size), k % child_size, {name: v[keep] for name, v in g.columns.items()}


def _split(
    total: np.ndarray, counts: np.ndarray, rows: np.ndarray, weight: np.ndarray, key: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each parent's ``total`` over its children (``counts`` each; ``rows`` of the child table, in parent order).

    Returns the parent of each child row and the child's amount.
    """
    live = counts > 0
    amount = allocate_groups(total[live], counts[live], weight[rows], key[rows])
    return np.repeat(np.arange(len(total), dtype=I64), counts), amount


def _cross(live: np.ndarray, children: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every live parent has all ``children``."""
    counts = np.where(live, len(children), 0).astype(I64)
    return counts, np.tile(children, int(live.sum()))


class Cascade:
    """The allocation levels, over coded rows, from the pools down to each owner.

    After construction: :attr:`operator` (currency → the operator's share), :meth:`lines`
    and :meth:`suspense`.
    """

    def __init__(self, codes: Codes, reg: Registry, usage: pa.Table, pools: Mapping[str, Sequence[object]]) -> None:
        self.codes, self.reg, c = codes, reg, codes
        self.lost: list[tuple[str, str, dict[str, np.ndarray]]] = []
        e_out, e_model = encode(usage["output_id"], c.out), encode(usage["model_id"], c.model)
        units, n = np.asarray(usage["units"].to_numpy(), I64), np.asarray(usage["n"].to_numpy(), I64)
        units_out, n_out = np.asarray(usage["units_out"].to_numpy(), I64), np.asarray(usage["n_out"].to_numpy(), I64)
        p_cur = encode(pa.array(list(pools["currency"]), pa.string()), c.cur)
        training = np.array([b == "training" for b in pools["basis"]], bool)
        p_total = np.array(list(pools["total"]), I64)

        # training pool -> models, by their usage units (all kinds)
        mu = merge_rows(e_model, {"units": (units, np.add), "n": (n, np.add)})
        t_cur, t_total = p_cur[training], p_total[training]
        counts, rows = _cross(t_total != 0, np.flatnonzero(mu.columns["units"] > 0))
        self._lose("no_model_usage", "training", (t_total != 0) & (counts == 0), t_total, cur=t_cur)
        parent, mm_amount = _split(t_total, counts, rows, mu.columns["units"], mu.key)
        mm_cur, mm_model = t_cur[parent], mu.key[rows]

        # output pool -> outputs, by their monetising units
        o_cur, o_total = p_cur[~training], p_total[~training]
        counts, rows = _cross(o_total != 0, np.flatnonzero(units_out > 0))
        self._lose("no_output_usage", "output", (o_total != 0) & (counts == 0), o_total, cur=o_cur)
        u_key = pack([e_out, e_model], [c.size("out"), c.size("model")])
        parent, om_amount = _split(o_total, counts, rows, units_out, u_key)
        om_cur, om_usage = o_cur[parent], rows

        # output -> its attributed recordings | remainder (isrc ""), by the attribution weights
        a_keep = np.flatnonzero(reg.attr_weight > 0)
        counts, rows = Children.of(reg.attr_out[a_keep]).expand(e_out[om_usage], om_amount != 0)
        rows = a_keep[rows]
        lost = (om_amount != 0) & (counts == 0)
        self._lose("no_attribution", "output", lost, om_amount, cur=om_cur, out=e_out[om_usage])
        parent, am_amount = _split(om_amount, counts, rows, reg.attr_weight, reg.attr_isrc)
        am_cur, am_usage, am_isrc = om_cur[parent], om_usage[parent], reg.attr_isrc[rows]
        rest = am_isrc == c.code("isrc", "")

        # model pot (training money + output remainders) -> the model's manifest items
        pot = merge_rows(
            pack(
                [np.r_[mm_cur, am_cur[rest]], np.r_[mm_model, e_model[am_usage[rest]]]],
                [c.size("cur"), c.size("model")],
            ),
            {"total": (np.r_[mm_amount, am_amount[rest]], np.add)},
        )
        pot_cur, pot_model, pot_total = pot.key // c.size("model"), pot.key % c.size("model"), pot.columns["total"]
        pot_units = mu.columns["n"][np.searchsorted(mu.key, pot_model)] if len(pot_model) else pot_model
        i_children, i_isrc, i_cols = _positive(reg.items, c.size("isrc"))
        counts, rows = i_children.expand(pot_model, pot_total != 0)
        lost = (pot_total != 0) & (counts == 0)
        self._lose("no_manifest", "training", lost, pot_total, cur=pot_cur, model=pot_model)
        parent, im_amount = _split(pot_total, counts, rows, i_cols["weight"], i_isrc)

        # recording money: training per (model, isrc); output per (model, isrc, output)
        o_rows = np.flatnonzero(~rest)
        o_usage = am_usage[o_rows]
        rec_o = merge_rows(
            pack(
                [am_cur[o_rows], e_model[o_usage], am_isrc[o_rows], e_out[o_usage]],
                [c.size(k) for k in ("cur", "model", "isrc", "out")],
            ),
            {"total": (am_amount[o_rows], np.add), "units": (n_out[o_usage], np.maximum)},
        )
        first = o_rows[rec_o.rows]
        k = len(parent)
        self.rec = {
            "cur": np.r_[pot_cur[parent], am_cur[first]],
            "basis": np.r_[np.full(k, c.code("basis", "training")), np.full(len(first), c.code("basis", "output"))],
            "model": np.r_[pot_model[parent], e_model[am_usage[first]]],
            "out": np.r_[np.full(k, c.code("out", "")), e_out[am_usage[first]]],
            "isrc": np.r_[i_isrc[rows], am_isrc[first]],
            "units": np.r_[pot_units[parent], rec_o.columns["units"]],
        }
        self._down(reg, np.r_[im_amount, rec_o.columns["total"]])

    def _lose(self, reason: str, basis: str, mask: np.ndarray, total: np.ndarray, **keys: np.ndarray) -> None:
        """Money that cannot go further at a top level: suspense (``keys``: coded columns)."""
        cols = {name: v[mask] for name, v in keys.items()}
        cols["amount"] = total[mask]
        self.lost.append((reason, basis, cols))

    def _lose_rec(self, reason: str, mask: np.ndarray, r: np.ndarray, amount: np.ndarray, **keys: np.ndarray) -> None:
        cols = {name: self.rec[name][r[mask]] for name in ("cur", "basis", "model", "out", "isrc")}
        cols.update({name: v[mask] for name, v in keys.items()})
        cols["amount"] = amount[mask]
        self.lost.append((reason, "", cols))

    def _down(self, reg: Registry, rec_total: np.ndarray) -> None:
        """Recording -> side -> work -> owner -> payable | operator."""
        c, rec = self.codes, self.rec
        ns, nw, nb = c.size("side"), c.size("work"), c.size("basis")
        # recording -> master | publishing
        children, s_side, cols = _positive(reg.sides, ns)
        counts, rows = children.expand(rec["isrc"], rec_total != 0)
        r = np.arange(len(rec_total), dtype=I64)
        self._lose_rec("unknown_recording", (rec_total != 0) & (counts == 0), r, rec_total)
        r, amount = _split(rec_total, counts, rows, cols["weight"], s_side)
        side = s_side[rows]
        # side -> works, equally (master side: the recording)
        children, w_work, cols = _positive(reg.works, nw)
        counts, rows = children.expand(rec["isrc"][r] * ns + side, amount != 0)
        self._lose_rec("no_works", (amount != 0) & (counts == 0), r, amount, side=side)
        parent, amount = _split(amount, counts, rows, cols["weight"], w_work)
        r, side, work = r[parent], side[parent], w_work[rows]
        # work -> owners, by share (an unowned rest is the owner "")
        children, h_party, cols = _positive(reg.holders, c.size("party"))
        counts, rows = children.expand(((rec["isrc"][r] * ns + side) * nw + work) * nb + rec["basis"][r], amount != 0)
        self._lose_rec("no_owner", (amount != 0) & (counts == 0), r, amount, side=side, work=work)
        parent, amount = _split(amount, counts, rows, cols["weight"], h_party)
        r, side, work, party = r[parent], side[parent], work[parent], h_party[rows]
        agreement, share, pool = cols["agreement"][rows], cols["share_ppm"][rows], cols["pool_ppm"][rows]
        # no fitting agreement, or nobody owns it: suspense
        none = agreement == c.code("agreement", "")
        self._lose_rec("owner", none, r, amount, side=side, work=work, party=party)
        ok = np.flatnonzero(~none)
        r, side, work, party, agreement = r[ok], side[ok], work[ok], party[ok], agreement[ok]
        share, pool, amount = share[ok], pool[ok], amount[ok]
        # owner -> allocate(amount, [pool, W - pool], ["payable", "operator"]): a tie to "operator" (key order)
        payable = allocate_pairs(amount, pool, W, ties_to_first=False)
        payable = self._by_duration(r, work, side, party, agreement, payable)
        op = merge_rows(rec["cur"][r], {"operator": (amount - payable, np.add)})
        self.operator = {
            str(c.cur[int(k)].as_py()): int(v) for k, v in zip(op.key, op.columns["operator"], strict=True)
        }
        keep = np.flatnonzero(payable != 0)
        self.owner = {
            "r": r[keep], "side": side[keep], "work": work[keep], "party": party[keep],
            "agreement": agreement[keep], "share_ppm": share[keep], "amount": payable[keep],
        }  # fmt: skip

    def _by_duration(
        self,
        r: np.ndarray,
        work: np.ndarray,
        side: np.ndarray,
        party: np.ndarray,
        agreement: np.ndarray,
        payable: np.ndarray,
    ) -> np.ndarray:
        """Each licensor's training money re-split over its items by its own agreement's method.

        The pot is split equally per work (as above); then, for an agreement that says
        ``pro_rata_duration``, the payable of its training lines in each (currency, model, party,
        agreement) group is re-split over those lines by ``equal-per-work amount x the item's
        duration in the model's manifest`` (largest remainder, ties by isrc, work, side codes).
        The group's total, and so every other party's money and the operator's, is unchanged.
        """
        reg, c, rec = self.reg, self.codes, self.rec
        training = rec["basis"][r] == c.code("basis", "training")
        rows = np.flatnonzero(training & np.isin(agreement, reg.by_duration) & (payable > 0))
        if len(rows) == 0:
            return payable
        payable = payable.copy()
        model, isrc = rec["model"][r[rows]], rec["isrc"][r[rows]]
        item = model * c.size("isrc") + isrc
        pos = np.clip(np.searchsorted(reg.durations.key, item), 0, max(len(reg.durations.key) - 1, 0))
        found = len(reg.durations.key) > 0
        ms = (
            np.where(found & (reg.durations.key[pos] == item), reg.durations.columns["ms"][pos], 0)
            if found
            else item * 0
        )
        group = pack(
            [rec["cur"][r[rows]], model, party[rows], agreement[rows]],
            [c.size("cur"), c.size("model"), c.size("party"), c.size("agreement")],
        )
        order = np.lexsort((side[rows], work[rows], isrc, group))
        rows, group, ms, isrc = rows[order], group[order], ms[order], isrc[order]
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        key = pack([isrc, work[rows], side[rows]], [c.size("isrc"), c.size("work"), c.size("side")])
        payable[rows] = resplit(payable[rows], ms, starts, key)
        return payable

    def lines(self) -> pa.Table:
        """The parties' royalty lines, sorted by party, currency, basis, isrc, work, model, output, side."""
        c, o, r = self.codes, self.owner, self.owner["r"]
        cols = {
            "party": o["party"], "cur": self.rec["cur"][r], "basis": self.rec["basis"][r], "isrc": self.rec["isrc"][r],
            "work": o["work"], "model": self.rec["model"][r], "out": self.rec["out"][r], "side": o["side"],
        }  # fmt: skip
        order = self._line_order(cols)
        s = {k: v[order] for k, v in cols.items()}
        return pa.table(
            {
                "party_id": c.strings("party", s["party"]),
                "currency": c.strings("cur", s["cur"]),
                "basis": c.strings("basis", s["basis"]),
                "side": c.strings("side", s["side"]),
                "isrc": c.strings("isrc", s["isrc"]),
                "work_id": c.strings("work", s["work"]),
                "model_id": c.strings("model", s["model"]),
                "output_id": c.strings("out", s["out"]),
                "units": pa.array(self.rec["units"][r][order], pa.int64()),
                "share_ppm": pa.array(o["share_ppm"][order], pa.int64()),
                "amount": pa.array(o["amount"][order], pa.int64()),
                "agreement_id": c.strings("agreement", o["agreement"][order]),
            }
        )

    def _line_order(self, cols: dict[str, np.ndarray]) -> np.ndarray:
        """Lines are unique by :data:`LINE_ORDER`; a work is ranked among its recording's works (a few bits)."""
        c = self.codes
        nw = c.size("work")
        g = self.reg.works.key
        pairs = np.unique((g // (c.size("side") * nw)) * nw + g % nw)
        local = np.arange(len(pairs), dtype=I64) - starts_of_runs(pairs // nw)
        work = local[np.searchsorted(pairs, cols["isrc"] * nw + cols["work"])] if len(pairs) else cols["work"]
        sizes = [int(local.max()) + 1 if k == "work" and len(local) else c.size(k) for k in LINE_ORDER]
        keys = [work if k == "work" else cols[k] for k in LINE_ORDER]
        room = 1
        for size in sizes:
            room *= size
        if room < 2**63:  # one int64 key; keys are unique, so any sort gives the one order
            return np.argsort(pack(keys, sizes))
        return _sort_order([cols[k] for k in LINE_ORDER], [c.size(k) for k in LINE_ORDER])

    def suspense(self, no_usage: Sequence[tuple[str, int]]) -> pa.Table:
        """Unmatched money with its reason, sorted by :data:`SUSPENSE_KEYS`."""
        c = self.codes
        no_usage = [(cur, t) for cur, t in no_usage if t != 0]
        names = {"cur": "currency", "basis": "basis", "model": "model_id", "out": "output_id", "isrc": "isrc"}
        names |= {"side": "side", "work": "work_id", "party": "party_id"}
        parts = [
            pa.table(
                {
                    "currency": pa.array([cur for cur, _ in no_usage], pa.string()),
                    "reason": pa.array(["no_usage"] * len(no_usage), pa.string()),
                    **{k: pa.array([""] * len(no_usage), pa.string()) for k in SUSPENSE_KEYS[2:]},
                    "amount": pa.array([t for _, t in no_usage], pa.int64()),
                }
            )
        ]
        for reason, basis, cols in self.lost:
            keep = np.flatnonzero(cols["amount"] != 0)
            size = len(keep)
            out: dict[str, pa.Array] = {}
            for code_name, col in names.items():
                if code_name in cols:
                    out[col] = c.strings(code_name, cols[code_name][keep])
                elif code_name == "basis":
                    out[col] = pa.array([basis] * size, pa.string())
                else:
                    out[col] = pa.array([""] * size, pa.string())
            if reason == "owner":
                unowned = pc.equal(out["party_id"], "")
                out["reason"] = pc.if_else(unowned, "unowned_share", "no_agreement")
            else:
                out["reason"] = pa.array([reason] * size, pa.string())
            out["amount"] = pa.array(cols["amount"][keep], pa.int64())
            parts.append(pa.table({k: out[k] for k in (*SUSPENSE_KEYS, "amount")}))
        table = pa.concat_tables(parts).combine_chunks()
        return table.take(pc.sort_indices(table, [(k, "ascending") for k in SUSPENSE_KEYS]))


def _sort_order(keys: Sequence[np.ndarray], sizes: Sequence[int]) -> np.ndarray:
    """The row order by ``keys`` (first most significant), packing as many keys per int64 as fit."""
    packed: list[np.ndarray] = []
    group: list[int] = []
    room = 1
    for i, s in enumerate(sizes):
        if group and room * s >= 2**62:
            packed.append(pack([keys[j] for j in group], [sizes[j] for j in group]))
            group, room = [], 1
        group.append(i)
        room *= s
    packed.append(pack([keys[j] for j in group], [sizes[j] for j in group]))
    if len(packed) == 1:
        return np.argsort(packed[0], kind="stable")
    return np.lexsort(packed[::-1])
