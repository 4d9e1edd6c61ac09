"""The royalty engine: DuckDB over a period's usage events and the registry's tables.

Every split is a largest-remainder allocation in integer micro-units, done in SQL
(:func:`allocate_sql`, the same rule as :func:`accord.money.allocate`: floor shares, then the
units left over one each to the largest remainders, ties by key ascending), so each level
sums exactly to the level above::

    revenue (per currency)
      -> training pool | output pool                   policy.training_share_ppm
    training pool -> models                            by the models' usage units
    output pool   -> outputs                           by the outputs' monetising usage units
    output        -> recordings | remainder            by its attribution weights (ppm)
    model (training money, and output remainders)
                  -> the model's manifest items        equal per work, or by duration
    recording     -> master | publishing               the agreement's master split
    side          -> works                             equally (master side: the recording)
    work          -> owners                            by share (unowned remainder: suspense)
    owner         -> payable | operator                the owner's agreement's pool share
                     (no fitting agreement: suspense)

Money that cannot go further (no usage at all, a model with no manifest, an unknown
recording, an unowned share, an owner without a fitting agreement) goes to the suspense
account with a reason, so that ``payable + suspense + operator == revenue`` to the micro-unit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from accord import __version__
from accord.errors import LedgerError
from accord.money import allocate
from accord.registry.entities import PPM_WHOLE
from accord.royalties.inputs import RunInputs
from accord.royalties.policy import RoyaltyPolicy
from accord.royalties.usage import EVENT_SCHEMA
from accord.signing import canonical_json

ENGINE_VERSION = f"accord-royalties/1 ({__version__}; duckdb {duckdb.__version__})"

LINE_COLUMNS = (
    "party_id",
    "currency",
    "basis",
    "side",
    "isrc",
    "work_id",
    "model_id",
    "output_id",
    "units",
    "share_ppm",
    "amount",
    "agreement_id",
)
SUSPENSE_COLUMNS = (
    "currency",
    "reason",
    "basis",
    "model_id",
    "output_id",
    "isrc",
    "side",
    "work_id",
    "party_id",
    "amount",
)


@dataclass(frozen=True)
class RunResult:
    """What a royalty run computed for one period.

    Attributes:
        period: ``YYYY-MM``.
        engine_version: the engine that computed it.
        inputs_hash: hash of the inputs (events, registry tables, policy, engine version).
        revenue: currency → net revenue (micro-units).
        operator: currency → the operator's share.
        lines: the parties' royalty lines (:data:`LINE_COLUMNS`), sorted.
        suspense: unmatched money with its reason (:data:`SUSPENSE_COLUMNS`), sorted.
        notes: decisions a reader should know about.
    """

    period: str
    engine_version: str
    inputs_hash: str
    revenue: dict[str, int]
    operator: dict[str, int]
    lines: pa.Table
    suspense: pa.Table
    notes: tuple[str, ...] = ()

    def payable(self) -> dict[str, int]:
        return _sum_by(self.lines, "currency")

    def unmatched(self) -> dict[str, int]:
        return _sum_by(self.suspense, "currency")


def _sum_by(table: pa.Table, key: str) -> dict[str, int]:
    if table.num_rows == 0:
        return {}
    grouped = table.group_by(key).aggregate([("amount", "sum")])
    return dict(zip(grouped.column(key).to_pylist(), grouped.column("amount_sum").to_pylist(), strict=True))


def allocate_sql(
    con: duckdb.DuckDBPyConnection,
    name: str,
    parent: str,
    child: str,
    keys: Sequence[str],
    lefts: dict[str, str],
) -> None:
    """Create table ``name``: each parent's ``total`` split over its children by ``weight``.

    ``parent`` is a query with a ``total`` column; its rows are numbered ``_gid`` in table
    ``{name}_p``. ``child`` is a query over ``{p}`` (that table) yielding each child's parent
    ``_gid``, the parent's ``total``, the child's ``weight``, its ``keys`` and any column to keep.
    Largest remainder, ties by ``keys`` ascending: exactly :func:`accord.money.allocate`.
    ``lefts[name]`` gets the SQL of the parents with no child of positive weight, for the caller
    to route. Partitions and joins are on the one integer ``_gid``, never on the key columns.
    """
    order = ", ".join(f"f.{k}" for k in keys)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name}_p AS SELECT row_number() OVER () AS _gid, * FROM ({parent})")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {name} AS
        WITH j AS (SELECT * FROM ({child.format(p=f"{name}_p")}) WHERE weight > 0 AND total <> 0),
        s AS (SELECT _gid, sum(weight)::HUGEINT AS _wsum FROM j GROUP BY _gid),
        f AS (SELECT j.*, CAST((j.total::HUGEINT * j.weight) // s._wsum AS BIGINT) AS _base,
                     CAST((j.total::HUGEINT * j.weight) % s._wsum AS BIGINT) AS _rem FROM j JOIN s USING (_gid)),
        l AS (SELECT _gid, any_value(total) - sum(_base) AS _left FROM f GROUP BY _gid),
        fl AS (SELECT f.*, l._left FROM f JOIN l USING (_gid)),
        r AS (SELECT *, 1::BIGINT AS _rn FROM fl WHERE _left = 0  -- nothing left over: no ranking needed
              UNION ALL
              SELECT f.*, row_number() OVER (PARTITION BY f._gid ORDER BY f._rem DESC, {order}) AS _rn
              FROM fl f WHERE f._left > 0)
        SELECT * EXCLUDE (_gid, total, _base, _rem, _left, _rn, weight),
               CAST(_base + CASE WHEN _rn <= _left THEN 1 ELSE 0 END AS BIGINT) AS amount, _gid AS _parent
        FROM r
        """
    )
    lefts[name] = (
        f"SELECT p.* EXCLUDE (_gid) FROM {name}_p p WHERE p.total <> 0 AND p._gid NOT IN (SELECT _parent FROM {name})"
    )


_INPUT_VIEWS = """
CREATE TEMP VIEW in_attribution AS SELECT * FROM raw_attribution;
CREATE TEMP VIEW in_items AS SELECT model_id, isrc, sum(weight)::BIGINT AS weight FROM raw_items GROUP BY ALL;
CREATE TEMP VIEW in_sides AS SELECT isrc, side, sum(weight)::BIGINT AS weight FROM raw_sides GROUP BY ALL;
CREATE TEMP VIEW in_works AS SELECT isrc, side, work_id, max(weight)::BIGINT AS weight FROM raw_works GROUP BY ALL;
CREATE TEMP VIEW in_holders AS
SELECT isrc, side, work_id, basis, party_id, sum(weight)::BIGINT AS weight, sum(share_ppm)::BIGINT AS share_ppm,
       min(agreement_id) AS agreement_id, min(pool_ppm)::BIGINT AS pool_ppm
FROM raw_holders GROUP BY isrc, side, work_id, basis, party_id;
"""
"""Each key once (a repeated row is merged), so that no allocation sees a parent twice."""


def inputs_hash(con: duckdb.DuckDBPyConnection, files: Sequence[Path], policy: RoyaltyPolicy, period: str) -> str:
    """Hash of everything a run reads: the event files (named by their content), the registry tables, the policy.

    Of the attribution table, only the rows of outputs used in the period count (the others
    cannot change the result); call it once the ``usage`` table exists.
    """
    digest = hashlib.sha256()
    digest.update(canonical_json({"engine": ENGINE_VERSION, "period": period, "policy": policy.to_dict()}))
    digest.update("\n".join(sorted(p.name + "@" + p.parent.name for p in files)).encode())
    for table in ("attribution", "items", "sides", "works", "holders"):
        where = " WHERE t.output_id IN (SELECT output_id FROM usage)" if table == "attribution" else ""
        sql = f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0) FROM in_{table} t{where}"
        row = con.execute(sql).fetchall()[0]
        digest.update(f"{table}:{row[0]}:{row[1]}".encode())
    return digest.hexdigest()


def compute(inputs: RunInputs, files: Sequence[Path], policy: RoyaltyPolicy, *, threads: int = 0) -> RunResult:
    """Run the period: allocate its revenue down to each owner, deterministically."""
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {threads}")
    for table in ("attribution", "items", "sides", "works", "holders"):
        con.register(f"raw_{table}", getattr(inputs, table))
    con.execute(_INPUT_VIEWS)
    kinds = pa.table(
        {
            "kind": [k for k, _ in policy.kind_weights],
            "w": pa.array([w for _, w in policy.kind_weights], pa.int64()),
            "monetises": [k in policy.output_kinds for k, _ in policy.kind_weights],
        }
    )
    con.register("kind_weights", kinds)
    if files:
        names = ", ".join("'" + str(p).replace("'", "''") + "'" for p in files)
        source = f"read_parquet([{names}], hive_partitioning = false)"
        con.execute(f"CREATE TEMP VIEW ev AS SELECT * FROM {source} WHERE period = '{inputs.period}'")
    else:
        con.register("ev_empty", EVENT_SCHEMA.empty_table())
        con.execute("CREATE TEMP VIEW ev AS SELECT * FROM ev_empty")
    con.execute(
        """
        CREATE TEMP TABLE usage AS
        SELECT output_id, model_id, sum(k.w)::BIGINT AS units, count(*)::BIGINT AS n,
               coalesce(sum(k.w) FILTER (WHERE k.monetises), 0)::BIGINT AS units_out,
               count(*) FILTER (WHERE k.monetises)::BIGINT AS n_out
        FROM ev JOIN kind_weights k USING (kind) WHERE ev.kind <> 'revenue' GROUP BY output_id, model_id;
        CREATE TEMP TABLE model_usage AS
        SELECT model_id, sum(units)::BIGINT AS units, sum(n)::BIGINT AS n FROM usage GROUP BY model_id;
        CREATE TEMP TABLE revenue AS
        SELECT currency, sum(amount)::BIGINT AS total FROM ev WHERE kind = 'revenue' GROUP BY currency;
        """
    )
    digest = inputs_hash(con, files, policy, inputs.period)
    revenue = dict(con.execute("SELECT currency, total FROM revenue ORDER BY currency").fetchall())
    row = con.execute("SELECT coalesce(sum(units), 0), coalesce(sum(units_out), 0) FROM usage").fetchall()[0]
    training_units, output_units = int(row[0]), int(row[1])
    pools, suspense_top = _pools(revenue, training_units, output_units, policy)
    schema = pa.schema([("currency", pa.string()), ("basis", pa.string()), ("total", pa.int64())])
    con.register("pools", pa.table(pools, schema))
    lefts = _cascade(con)
    lines = con.sql(_LINES_SQL).to_arrow_table()
    suspense = _suspense(con, suspense_top, lefts)
    operator = dict(
        con.execute(
            "SELECT currency, sum(operator)::BIGINT FROM owner_split GROUP BY currency ORDER BY currency"
        ).fetchall()
    )
    operator = {c: int(operator.get(c, 0)) for c in revenue}
    result = RunResult(inputs.period, ENGINE_VERSION, digest, revenue, operator, lines, suspense, tuple(inputs.notes))
    _check_conservation(result)
    return result


def _pools(
    revenue: dict[str, int], training_units: int, output_units: int, policy: RoyaltyPolicy
) -> tuple[dict[str, list[object]], list[tuple[str, int]]]:
    pools: dict[str, list[object]] = {"currency": [], "basis": [], "total": []}
    no_usage: list[tuple[str, int]] = []
    # an empty pool's share goes to the other pool: money follows the usage there is
    out_w = (PPM_WHOLE - policy.training_share_ppm) if output_units else 0
    train_w = policy.training_share_ppm if training_units else 0
    if not out_w and not train_w:
        train_w = PPM_WHOLE if training_units else 0
    weights = [out_w, train_w]
    for currency, total in sorted(revenue.items()):
        if not any(weights):
            no_usage.append((currency, total))
            continue
        out, train = allocate(total, weights, ["output", "training"])
        pools["currency"] += [currency, currency]
        pools["basis"] += ["output", "training"]
        pools["total"] += [out, train]
    return pools, no_usage


def _cascade(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Revenue pools down to owners, one allocation per level; returns the SQL of what could not go down."""
    lefts: dict[str, str] = {}
    allocate_sql(
        con,
        "model_money",
        "SELECT currency, total FROM pools WHERE basis = 'training'",
        "SELECT p._gid, p.total, p.currency, m.model_id, m.units AS weight, m.n FROM {p} p CROSS JOIN model_usage m",
        ["model_id"],
        lefts,
    )
    allocate_sql(
        con,
        "output_money",
        "SELECT currency, total FROM pools WHERE basis = 'output'",
        "SELECT p._gid, p.total, p.currency, u.output_id, u.model_id, u.units_out AS weight, u.n_out "
        "FROM {p} p CROSS JOIN usage u",
        ["output_id", "model_id"],
        lefts,
    )
    allocate_sql(
        con,
        "attr_money",
        "SELECT currency, output_id, model_id, n_out, amount AS total FROM output_money",
        "SELECT p._gid, p.total, p.currency, p.output_id, p.model_id, a.isrc, a.weight, p.n_out "
        "FROM {p} p JOIN in_attribution a USING (output_id)",
        ["isrc"],
        lefts,
    )
    # the unattributed remainder (and all of an unreliable output) is paid by the training-pool method
    con.execute(
        """
        CREATE TEMP TABLE model_pots AS
        SELECT p.currency, p.model_id, sum(p.total)::BIGINT AS total, max(u.n)::BIGINT AS units FROM (
            SELECT currency, model_id, amount AS total FROM model_money
            UNION ALL
            SELECT currency, model_id, amount FROM attr_money WHERE isrc = ''
        ) p JOIN model_usage u USING (model_id) GROUP BY p.currency, p.model_id
        """
    )
    allocate_sql(
        con,
        "item_money",
        "SELECT currency, model_id, units, total FROM model_pots",
        "SELECT p._gid, p.total, p.currency, p.model_id, i.isrc, i.weight, p.units FROM {p} p "
        "JOIN in_items i USING (model_id)",
        ["isrc"],
        lefts,
    )
    con.execute(
        """
        CREATE TEMP TABLE rec_money AS
        SELECT currency, 'training' AS basis, model_id, isrc, '' AS output_id, amount AS total, units FROM item_money
        UNION ALL
        SELECT currency, 'output', model_id, isrc, output_id, sum(amount)::BIGINT, max(n_out) FROM attr_money
        WHERE isrc <> '' GROUP BY currency, model_id, isrc, output_id
        """
    )
    allocate_sql(
        con,
        "side_money",
        "SELECT * FROM rec_money",
        "SELECT p._gid, p.total, p.currency, p.basis, p.model_id, p.output_id, p.isrc, s.side, s.weight, p.units "
        "FROM {p} p JOIN in_sides s USING (isrc)",
        ["side"],
        lefts,
    )
    allocate_sql(
        con,
        "work_money",
        "SELECT * EXCLUDE (amount, _parent), amount AS total FROM side_money",
        "SELECT p._gid, p.total, p.currency, p.basis, p.model_id, p.output_id, p.isrc, p.side, w.work_id, w.weight, "
        "p.units FROM {p} p JOIN in_works w USING (isrc, side)",
        ["work_id"],
        lefts,
    )
    allocate_sql(
        con,
        "owner_money",
        "SELECT * EXCLUDE (amount, _parent), amount AS total FROM work_money",
        "SELECT p._gid, p.total, p.currency, p.basis, p.model_id, p.output_id, p.isrc, p.side, p.work_id, "
        "h.party_id, h.weight, h.share_ppm, h.agreement_id, h.pool_ppm, p.units FROM {p} p "
        "JOIN in_holders h USING (isrc, side, work_id, basis)",
        ["party_id"],
        lefts,
    )
    # owner -> payable | operator: allocate(amount, [pool, whole - pool], ["payable", "operator"]);
    # the one unit left over (if any) goes to the larger remainder, a tie to "operator" (key order)
    con.execute(
        f"""
        CREATE TEMP TABLE owner_split AS
        WITH o AS (
            SELECT *, amount::HUGEINT * pool_ppm AS xp, amount::HUGEINT * ({PPM_WHOLE} - pool_ppm) AS xo
            FROM owner_money WHERE agreement_id <> ''),
        u AS (
            SELECT * EXCLUDE (xp, xo),
                   xp // {PPM_WHOLE} AS p,
                   CASE WHEN amount - xp // {PPM_WHOLE} - xo // {PPM_WHOLE} = 1
                        AND xp % {PPM_WHOLE} > xo % {PPM_WHOLE} THEN 1 ELSE 0 END AS bump
            FROM o)
        SELECT * EXCLUDE (p, bump, _parent),
               CAST(p + bump AS BIGINT) AS payable, CAST(amount - p - bump AS BIGINT) AS operator
        FROM u
        """
    )
    return lefts


_LINES_SQL = """
SELECT party_id, currency, basis, side, isrc, work_id, model_id, output_id, units,
       share_ppm, payable AS amount, agreement_id
FROM owner_split WHERE payable <> 0
ORDER BY party_id, currency, basis, isrc, work_id, model_id, output_id, side
"""


def _suspense(con: duckdb.DuckDBPyConnection, no_usage: list[tuple[str, int]], lefts: dict[str, str]) -> pa.Table:
    con.register(
        "no_usage",
        pa.table(
            {"currency": [c for c, _ in no_usage], "total": pa.array([t for _, t in no_usage], pa.int64())},
        ),
    )
    ctes = ", ".join(f"{name}_left AS ({sql})" for name, sql in sorted(lefts.items()))
    sql = f"""
    WITH {ctes}
    SELECT * FROM (
        SELECT currency, 'no_usage' AS reason, '' AS basis, '' AS model_id, '' AS output_id, '' AS isrc,
               '' AS side, '' AS work_id, '' AS party_id, total AS amount FROM no_usage
        UNION ALL SELECT currency, 'no_model_usage', 'training', '', '', '', '', '', '', total FROM model_money_left
        UNION ALL SELECT currency, 'no_output_usage', 'output', '', '', '', '', '', '', total FROM output_money_left
        UNION ALL SELECT currency, 'no_attribution', 'output', '', output_id, '', '', '', '', total
                  FROM attr_money_left
        UNION ALL SELECT currency, 'no_manifest', 'training', model_id, '', '', '', '', '', total FROM item_money_left
        UNION ALL SELECT currency, 'unknown_recording', basis, model_id, output_id, isrc, '', '', '', total
                  FROM side_money_left
        UNION ALL SELECT currency, 'no_works', basis, model_id, output_id, isrc, side, '', '', total
                  FROM work_money_left
        UNION ALL SELECT currency, 'no_owner', basis, model_id, output_id, isrc, side, work_id, '', total
                  FROM owner_money_left
        UNION ALL SELECT currency, CASE WHEN party_id = '' THEN 'unowned_share' ELSE 'no_agreement' END,
               basis, model_id, output_id, isrc, side, work_id, party_id, amount
                  FROM owner_money WHERE agreement_id = ''
    ) WHERE amount <> 0
    ORDER BY currency, reason, basis, model_id, output_id, isrc, side, work_id, party_id
    """
    return con.sql(sql).to_arrow_table()


def _check_conservation(result: RunResult) -> None:
    """Every micro-unit of revenue is payable, in suspense or the operator's (an engine invariant)."""
    payable, unmatched = result.payable(), result.unmatched()
    for currency, total in result.revenue.items():
        got = payable.get(currency, 0) + unmatched.get(currency, 0) + result.operator.get(currency, 0)
        if got != total:
            msg = f"royalty run {result.period} {currency}: allocated {got} of revenue {total} micro-units"
            raise LedgerError(msg)
