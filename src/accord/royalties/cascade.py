"""The royalty engine's allocation levels over integer-coded keys (NumPy).

The registry tables and the period's usage are coded once (:class:`Codes`, :class:`Registry`);
each level of the cascade (:class:`Cascade`) is then a few array operations over its rows
and one :func:`~accord.royalties.vectorised.allocate_groups`; no string is touched until the
final lines are built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from itertools import pairwise

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from accord.money import allocate
from accord.registry.entities import PPM_WHOLE
from accord.royalties.coding import Codes, Registry, parallel
from accord.royalties.lines import line_order, line_table, mixed_parties, recording_order
from accord.royalties.vectorised import (
    I64,
    Children,
    Grouped,
    allocate_groups,
    allocate_pairs,
    encode,
    merge_rows,
    pack,
    starts_of_runs,
)

W = PPM_WHOLE
OWNER_COLUMNS = ("r", "side", "work", "rank", "party", "agreement", "share_ppm", "amount")
"""The owner rows' columns (:attr:`Cascade.owner`): codes, the work's rank in its recording, share, payable."""
CHUNK_ROWS = 1 << 15
"""Recording rows per chunk of the owner levels: a chunk's arrays stay in the CPU's caches."""
SUSPENSE_KEYS = ("currency", "reason", "basis", "model_id", "output_id", "isrc", "side", "work_id", "party_id")


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


Lost = tuple[str, str, dict[str, np.ndarray]]
"""Money that goes no further: (reason, basis, coded columns with ``amount``)."""
Positive = tuple[Children, np.ndarray, dict[str, np.ndarray]]


def _positive(g: Grouped, child_size: int) -> Positive:
    """The rows of positive weight, by parent key (the packed key less its last code), and the last code.

    The columns include ``key``, the rows' packed keys.
    """
    keep = np.flatnonzero(g.columns["weight"] > 0)
    k = g.key[keep]
    cols = {name: v[keep] for name, v in g.columns.items()}
    cols["key"] = k
    return Children.of(k // child_size), k % child_size, cols


def _split(
    total: np.ndarray, counts: np.ndarray, rows: np.ndarray, weight: np.ndarray, key: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each parent's ``total`` over its children (``counts`` each; ``rows`` of the child table, in parent order).

    Returns the parent of each child row and the child's amount.
    """
    live = counts > 0
    amount = allocate_groups(total[live], counts[live], weight[rows], key[rows])
    return np.repeat(np.arange(len(total), dtype=I64), counts), amount


class _Attributed:
    """Outputs' money down to their attributed recordings (and the remainder, isrc ``""``), a chunk at a time.

    :meth:`split` takes a chunk of (output, model) money rows and returns, by index into the chunk's
    rows plus its offset, the rows that have no attribution (``lost``), the remainders for the model's
    pot (``rest_om``, ``rest_amount``) and one output recording row per (row, isrc) (``out_om``,
    ``out_isrc``, ``out_amount``: one row's attribution rows, sorted by isrc, hold an isrc twice
    side by side, summed here).
    """

    COLUMNS = ("lost", "rest_om", "rest_amount", "out_om", "out_isrc", "out_amount")

    def __init__(self, children: Children, keep: np.ndarray, reg: Registry, rest_code: int) -> None:
        self.children, self.keep, self.reg, self.rest_code = children, keep, reg, rest_code

    def split(self, amount: np.ndarray, usage: np.ndarray, e_out: np.ndarray, offset: int = 0) -> dict[str, np.ndarray]:
        reg = self.reg
        counts, rows = self.children.expand(e_out[usage], amount != 0)
        rows = self.keep[rows]
        live = counts > 0
        got = allocate_groups(amount[live], counts[live], reg.attr_weight[rows], reg.attr_isrc[rows])
        parent = np.repeat(np.arange(len(amount), dtype=I64), counts)
        isrc = reg.attr_isrc[rows]
        rest = isrc == self.rest_code
        o = np.flatnonzero(~rest)
        o_parent, o_isrc = parent[o], isrc[o]
        runs = np.flatnonzero(np.r_[True, (o_parent[1:] != o_parent[:-1]) | (o_isrc[1:] != o_isrc[:-1])])
        runs = runs if len(o) else runs[:0]
        return {
            "lost": np.flatnonzero((amount != 0) & ~live) + offset,
            "rest_om": parent[rest] + offset,
            "rest_amount": got[rest],
            "out_om": o_parent[runs] + offset,
            "out_isrc": o_isrc[runs],
            "out_amount": np.add.reduceat(got[o], runs) if len(runs) else got[o],
        }


def _columns(tasks: Mapping[str, Callable[[], np.ndarray]], workers: int) -> dict[str, np.ndarray]:
    """Each column's task run, ``workers`` at a time."""
    return dict(zip(tasks, parallel(list(tasks.values()), workers), strict=True))


def _concatenate(parts: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, I64)


def _cross(live: np.ndarray, children: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every live parent has all ``children``."""
    counts = np.where(live, len(children), 0).astype(I64)
    return counts, np.tile(children, int(live.sum()))


class Cascade:
    """The allocation levels, over coded rows, from the pools down to each owner.

    After construction: :attr:`operator` (currency → the operator's share), :meth:`lines`
    and :meth:`suspense`.
    """

    def __init__(
        self,
        codes: Codes,
        reg: Registry,
        usage: pa.Table,
        pools: Mapping[str, Sequence[object]],
        *,
        workers: int = 1,
    ) -> None:
        self.codes, self.reg, c = codes, reg, codes
        self.workers = max(int(workers), 1)
        self.lost: list[Lost] = []
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

        # output -> its attributed recordings | remainder (isrc ""), by the attribution weights;
        # each output's money goes down on its own, so chunks of outputs are split side by side
        a_keep = np.flatnonzero(reg.attr_weight > 0)
        attributed = _Attributed(Children.of(reg.attr_out[a_keep]), a_keep, reg, c.code("isrc", ""))
        cuts = [*range(0, len(om_amount), CHUNK_ROWS), len(om_amount)]
        tasks = [partial(attributed.split, om_amount[lo:hi], om_usage[lo:hi], e_out, lo) for lo, hi in pairwise(cuts)]
        parts = parallel(tasks, self.workers) if len(om_amount) else []
        am = {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0, I64) for k in _Attributed.COLUMNS}
        lost = np.zeros(len(om_amount), bool)
        lost[am["lost"]] = True
        self._lose("no_attribution", "output", lost, om_amount, cur=om_cur, out=e_out[om_usage])
        rest_usage, out_usage = om_usage[am["rest_om"]], om_usage[am["out_om"]]

        # model pot (training money + output remainders) -> the model's manifest items
        pot = merge_rows(
            pack(
                [np.r_[mm_cur, om_cur[am["rest_om"]]], np.r_[mm_model, e_model[rest_usage]]],
                [c.size("cur"), c.size("model")],
            ),
            {"total": (np.r_[mm_amount, am["rest_amount"]], np.add)},
        )
        pot_cur, pot_model, pot_total = pot.key // c.size("model"), pot.key % c.size("model"), pot.columns["total"]
        pot_units = mu.columns["n"][np.searchsorted(mu.key, pot_model)] if len(pot_model) else pot_model
        i_children, i_isrc, i_cols = _positive(reg.items, c.size("isrc"))
        counts, rows = i_children.expand(pot_model, pot_total != 0)
        lost = (pot_total != 0) & (counts == 0)
        self._lose("no_manifest", "training", lost, pot_total, cur=pot_cur, model=pot_model)
        parent, im_amount = _split(pot_total, counts, rows, i_cols["weight"], i_isrc)

        # recording money: training per (model, isrc); output per (model, isrc, output)
        k, m = len(parent), len(out_usage)
        self.rec = {
            "cur": np.r_[pot_cur[parent], om_cur[am["out_om"]]],
            "basis": np.r_[np.full(k, c.code("basis", "training")), np.full(m, c.code("basis", "output"))],
            "model": np.r_[pot_model[parent], e_model[out_usage]],
            "out": np.r_[np.full(k, c.code("out", "")), e_out[out_usage]],
            "isrc": np.r_[i_isrc[rows], am["out_isrc"]],
            "units": np.r_[pot_units[parent], n_out[out_usage]],
        }
        o_total = am["out_amount"]
        # in line order (less party, work, side), so the owner rows come out nearly in line order
        order = recording_order(self.rec, c, self.workers)
        self.rec = _columns({k: partial(np.take, v, order) for k, v in self.rec.items()}, self.workers)
        self._down(reg, np.r_[im_amount, o_total][order])

    def _lose(self, reason: str, basis: str, mask: np.ndarray, total: np.ndarray, **keys: np.ndarray) -> None:
        """Money that cannot go further at a top level: suspense (``keys``: coded columns)."""
        cols = {name: v[mask] for name, v in keys.items()}
        cols["amount"] = total[mask]
        self.lost.append((reason, basis, cols))

    def _lose_rec(
        self, lost: list[Lost], reason: str, mask: np.ndarray, r: np.ndarray, amount: np.ndarray, **keys: np.ndarray
    ) -> None:
        rows = r[mask]
        cols = {name: self.rec[name][rows] for name in ("cur", "basis", "model", "out", "isrc")}
        cols.update({name: v[mask] for name, v in keys.items()})
        cols["amount"] = amount[mask]
        lost.append((reason, "", cols))

    def _down(self, reg: Registry, rec_total: np.ndarray) -> None:
        """Recording -> side -> work -> owner -> payable | operator.

        Each recording row's money goes down its own tree, so the rows are cut into
        :attr:`workers` contiguous chunks computed side by side (NumPy releases the GIL) and
        joined in row order: the result does not depend on the number of chunks.
        """
        c = self.codes
        ns, nw, nb = c.size("side"), c.size("work"), c.size("basis")
        sides, works = _positive(reg.sides, ns), _positive(reg.works, nw)
        holders = _positive(reg.holders, c.size("party"))
        # each (work row, basis) located among the holders once; each work ranked among its recording's works
        slots = holders[0].locate((works[2]["key"][:, None] * nb + np.arange(nb, dtype=I64)).ravel())
        g = reg.works.key
        pairs = np.unique((g // (ns * nw)) * nw + g % nw)
        local = np.arange(len(pairs), dtype=I64) - starts_of_runs(pairs // nw)
        k = works[2]["key"]
        work_rank = local[np.searchsorted(pairs, (k // (ns * nw)) * nw + k % nw)] if len(pairs) else k
        self.work_ranks = int(local.max()) + 1 if len(local) else nw
        cuts = [*range(0, len(rec_total), CHUNK_ROWS), len(rec_total)]

        def chunk(lo: int, hi: int) -> tuple[dict[str, np.ndarray], list[Lost], dict[int, int]]:
            return self._owners(rec_total[lo:hi], lo, sides, works, holders, slots, work_rank)

        parts = parallel([partial(chunk, lo, hi) for lo, hi in pairwise(cuts) if lo < hi], self.workers)
        for lost in zip(*(p[1] for p in parts), strict=True):  # each reason's rows in row order
            self.lost.append((lost[0][0], lost[0][1], {k: np.concatenate([x[2][k] for x in lost]) for k in lost[0][2]}))
        operator: dict[int, int] = {}
        for part in parts:
            for cur, kept in part[2].items():
                operator[cur] = operator.get(cur, 0) + kept
        self.operator = {str(c.cur[i].as_py()): v for i, v in sorted(operator.items())}
        o = _columns({k: partial(_concatenate, [p[0][k] for p in parts]) for k in OWNER_COLUMNS}, self.workers)
        if len(reg.by_duration):
            o["amount"] = self._by_duration(o["r"], o["work"], o["side"], o["party"], o["agreement"], o["amount"])
            keep = np.flatnonzero(o["amount"] != 0)
            o = {k: v[keep] for k, v in o.items()}
        self.owner = o

    def _owners(
        self,
        rec_total: np.ndarray,
        lo: int,
        sides: Positive,
        works: Positive,
        holders: Positive,
        slots: np.ndarray,
        work_rank: np.ndarray,
    ) -> tuple[dict[str, np.ndarray], list[Lost], dict[int, int]]:
        """The owner rows of recording rows ``lo ..`` (``rec_total``: their money), what they lose, and
        the operator's share per currency code. Codes are int32 (half the memory of the line columns)."""
        c, rec = self.codes, self.rec
        ns, nb = c.size("side"), c.size("basis")
        lost: list[Lost] = []
        # recording -> master | publishing
        children, s_side, cols = sides
        r = np.arange(lo, lo + len(rec_total), dtype=I64)
        counts, rows = children.expand(rec["isrc"][r], rec_total != 0)
        self._lose_rec(lost, "unknown_recording", (rec_total != 0) & (counts == 0), r, rec_total)
        parent, amount = _split(rec_total, counts, rows, cols["weight"], s_side)
        r, side = r[parent], s_side[rows]
        # side -> works, equally (master side: the recording)
        children, w_work, cols = works
        counts, rows = children.expand(rec["isrc"][r] * ns + side, amount != 0)
        self._lose_rec(lost, "no_works", (amount != 0) & (counts == 0), r, amount, side=side)
        parent, amount = _split(amount, counts, rows, cols["weight"], w_work)
        r, side, work, w_row = r[parent], side[parent], w_work[rows], rows
        # work -> owners, by share (an unowned rest is the owner "")
        children, h_party, cols = holders
        counts, rows = children.expand_at(slots[w_row * nb + rec["basis"][r]], amount != 0)
        self._lose_rec(lost, "no_owner", (amount != 0) & (counts == 0), r, amount, side=side, work=work)
        parent, amount = _split(amount, counts, rows, cols["weight"], h_party)
        r, side, work, w_row, party = r[parent], side[parent], work[parent], w_row[parent], h_party[rows]
        agreement, share, pool = cols["agreement"][rows], cols["share_ppm"][rows], cols["pool_ppm"][rows]
        # no fitting agreement, or nobody owns it: suspense
        none = agreement == c.code("agreement", "")
        self._lose_rec(lost, "owner", none, r, amount, side=side, work=work, party=party)
        ok = np.flatnonzero(~none)
        amount = amount[ok]
        # owner -> allocate(amount, [pool, W - pool], ["payable", "operator"]): a tie to "operator" (key order)
        payable = allocate_pairs(amount, pool[ok], W, ties_to_first=False)
        cur, kept = rec["cur"][r[ok]], amount - payable
        present = np.flatnonzero(np.bincount(cur, minlength=1))  # the currencies here (usually one)
        operator = {int(i): int(kept.sum() if len(present) == 1 else kept[cur == i].sum()) for i in present}
        # a line of no money is no line (a duration re-split only moves money between lines of money)
        keep = ok[payable != 0]
        out = {"r": r, "side": side, "work": work, "party": party, "agreement": agreement}
        out = {k: v[keep].astype(np.int32) for k, v in out.items()}
        out["rank"] = work_rank[w_row[keep]].astype(np.int32)
        out["share_ppm"], out["amount"] = share[keep], payable[payable != 0]
        return out, lost, operator

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
        """The parties' royalty lines, sorted by party, currency, basis, isrc, work, model, output, side.

        Text columns are dictionary arrays over the run's dictionaries (:mod:`accord.royalties.lines`).
        """
        mixed = mixed_parties(self.reg.holders, self.codes)
        order = line_order(self.owner, self.rec, self.codes, self.work_ranks, mixed, self.workers)
        return line_table(self.owner, self.rec, self.codes, order, self.workers)

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
