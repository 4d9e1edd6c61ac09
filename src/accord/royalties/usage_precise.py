"""The precise path of a usage batch's checks: every rule, row by row, in DuckDB; every problem named.

:data:`STAGE_SQL` stages the batch's string columns (registered in DuckDB as ``raw_in``, with
the registry's known outputs and models and the ISO country and currency codes) into ``ev``:
trimmed, parsed, joined to what they refer to, repeated ids marked. :func:`problems` then runs
one check per field rule over ``ev`` and returns what fails, as :class:`~accord.errors.Problem`
rows, by row then field. :func:`precise_events` is the whole path, used by
:func:`accord.royalties.usage.ingest_table` whenever the fast path
(:func:`~accord.royalties.usage_fast.fast_events`) does not vouch for every row.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from accord.errors import Problem, Rejected
from accord.royalties.periods import period_bounds
from accord.royalties.usage_checks import (
    AMOUNT_DIGITS,
    KINDS,
    MAX_PROBLEMS,
    REVENUE_SOURCES,
    USAGE_KINDS,
    countries,
    currencies,
)
from accord.royalties.usage_fast import VALID_SCHEMA, micro_units_of

STAGE_SQL = """
CREATE TEMP TABLE staged AS
SELECT "row", nullif(trim(event_id), '') AS event_id, lower(trim(kind)) AS kind,
       trim("timestamp") AS ts_text, try_cast(trim("timestamp") AS TIMESTAMPTZ) AS at_raw,
       nullif(trim(creator), '') AS creator, nullif(trim(output_id), '') AS output_id,
       nullif(trim(model_id), '') AS model_id, upper(trim(territory)) AS territory,
       trim(amount) AS amount, upper(trim(currency)) AS currency, trim(period) AS period_text,
       lower(trim(source)) AS source
FROM raw_in;
CREATE TEMP TABLE repeated AS
SELECT event_id, min("row") AS first_row,
       count(DISTINCT (kind, ts_text, creator, output_id, model_id, territory, amount, currency, period_text, source))
           > 1 AS conflict
FROM staged WHERE event_id IN (SELECT event_id FROM staged GROUP BY event_id HAVING count(*) > 1)
GROUP BY event_id;
CREATE TEMP TABLE ev AS
SELECT s.*,
       CASE WHEN regexp_matches(coalesce(ts_text, ''), '(Z|z|[+-][0-9]{2}:?[0-9]{2})$') THEN at_raw END AS ts,
       CASE WHEN kind = 'revenue' THEN period_text ELSE strftime(at_raw, '%Y-%m') END AS natural_period,
       r.first_row IS NULL OR r.first_row = s."row" AS first,
       coalesce(r.conflict AND r.first_row <> s."row", false) AS dup_conflict,
       k.output_id IS NOT NULL AS known_output, k.model_id AS output_model,
       m.model_id IS NOT NULL AS known_model,
       c.code IS NOT NULL AS known_territory,
       cur.code IS NOT NULL AS known_currency
FROM staged s
LEFT JOIN repeated r ON r.event_id = s.event_id
LEFT JOIN known_outputs k ON k.output_id = s.output_id
LEFT JOIN (SELECT DISTINCT model_id FROM known_models) m ON m.model_id = s.model_id
LEFT JOIN countries c ON c.code = s.territory
LEFT JOIN currencies cur ON cur.code = s.currency;
"""


def problems(con: duckdb.DuckDBPyConnection, period: str | None, source: str) -> list[Problem]:
    """Every problem of the staged batch, by row then field (at most :data:`MAX_PROBLEMS`)."""
    kinds = ", ".join(f"'{k}'" for k in KINDS)
    usage = ", ".join(f"'{k}'" for k in USAGE_KINDS)
    sources = ", ".join(f"'{k}'" for k in REVENUE_SOURCES)
    window = "false"
    if period is not None:
        start, end = period_bounds(period)
        window = f"(ts < TIMESTAMPTZ '{start.isoformat()}' OR ts >= TIMESTAMPTZ '{end.isoformat()}')"
    checks = [
        ("event_id", "event_id", "event_id IS NULL OR length(event_id) > 96", "a non-empty id of at most 96 chars"),
        ("kind", "kind", f"kind IS NULL OR kind NOT IN ({kinds})", f"one of {', '.join(KINDS)}"),
        ("timestamp", "ts_text", "ts IS NULL", "an ISO 8601 date-time with an offset, e.g. 2026-11-03T10:00:00Z"),
        ("timestamp", "ts_text", f"ts IS NOT NULL AND {window}", f"a timestamp inside period {period}"),
        ("creator", "creator", f"kind IN ({usage}) AND creator IS NULL", "the id of the creator"),
        (
            "output_id",
            "output_id",
            "output_id IS NULL AND kind <> 'revenue' OR output_id IS NOT NULL AND NOT known_output",
            "the id of a released output (accord output list)",
        ),
        (
            "model_id",
            "model_id",
            f"kind IN ({usage}) AND (model_id IS NULL OR NOT known_model)",
            "the id of a registered model (accord model list)",
        ),
        (
            "model_id",
            "model_id",
            f"kind IN ({usage}) AND known_model AND known_output AND model_id <> output_model",
            "the model that made the output",
        ),
        (
            "territory",
            "territory",
            f"(kind IN ({usage}) OR coalesce(territory, '') <> '') AND NOT known_territory",
            "an ISO 3166-1 alpha-2 territory, e.g. GB",
        ),
        (
            "amount",
            "amount",
            "kind = 'revenue' AND starts_with(coalesce(amount, ''), '-')",
            "an amount >= 0 (negative revenue is an adjustment, not usage)",
        ),
        (
            "amount",
            "amount",
            "kind = 'revenue' AND NOT starts_with(coalesce(amount, ''), '-') AND "
            f"NOT regexp_full_match(coalesce(amount, ''), '[0-9]{{1,{AMOUNT_DIGITS}}}(\\.[0-9]{{1,6}})?')",
            f"a decimal amount in major units below 10^{AMOUNT_DIGITS}, at most 6 decimals, e.g. 1250.00",
        ),
        (
            "currency",
            "currency",
            "kind = 'revenue' AND NOT known_currency",
            "an ISO 4217 currency code, e.g. EUR",
        ),
        (
            "source",
            "source",
            f"kind = 'revenue' AND coalesce(source, '') NOT IN ({sources})",
            f"one of {', '.join(REVENUE_SOURCES)}",
        ),
        (
            "period",
            "period_text",
            "kind = 'revenue' AND NOT regexp_full_match(coalesce(period_text, ''), '[0-9]{4}-(0[1-9]|1[0-2])')",
            "the revenue's period, YYYY-MM",
        ),
        (
            "timestamp",
            "ts_text",
            "kind = 'revenue' AND ts IS NOT NULL AND regexp_full_match(coalesce(period_text, ''), "
            "'[0-9]{4}-(0[1-9]|1[0-2])') AND strftime(ts, '%Y-%m') <> period_text",
            "a timestamp inside the revenue's period",
        ),
        (
            "period",
            "period_text",
            f"kind = 'revenue' AND {period is not None} AND coalesce(period_text, '') <> '{period or ''}'",
            f"the period being ingested, {period}",
        ),
        (
            "event_id",
            "event_id",
            "dup_conflict",
            "a unique id: this id appears earlier in the batch with different content",
        ),
    ]
    parts = [
        f"SELECT row, '{field}' AS field, coalesce(CAST({col} AS VARCHAR), '') AS value, '{_q(why)}' AS expected, "
        f"'{code}' AS code, {n} AS n FROM ev WHERE {cond}"
        for n, (field, col, cond, why) in enumerate(checks)
        for code in [_code(field, why)]
    ]
    sql = " UNION ALL ".join(parts) + f" ORDER BY row, n LIMIT {MAX_PROBLEMS}"
    rows = con.execute(sql).fetchall()
    return [Problem(source, f"row {r[0]}", r[1], r[2], r[3], r[4]) for r in rows]


def _q(text: str) -> str:
    return text.replace("'", "''")


def _code(field: str, why: str) -> str:
    if why.startswith("an amount >= 0"):
        return "negative_amount"
    if "inside" in why:
        return "outside_period"
    if "unique" in why:
        return "duplicate_id"
    if why.startswith(("the id of", "the model that")):
        return f"unknown_{field.removesuffix('_id')}"
    return f"bad_{field}"


def precise_events(raw: pa.Table, outputs: pa.Table, models: pa.Table, period: str | None, source: str) -> pa.Table:
    """The batch's events (:data:`~accord.royalties.usage_fast.VALID_SCHEMA`, in the order of their first
    rows) by the precise path: staged in DuckDB, every rule checked row by row.

    ``raw``, ``outputs``, ``models`` and ``period`` as for :func:`~accord.royalties.usage_fast.fast_events`;
    ``source`` names the batch in problems.

    Raises:
        Rejected: every problem (at most :data:`~accord.royalties.usage_checks.MAX_PROBLEMS`), by row and field.
    """
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("raw_in", raw.append_column("row", pa.array(np.arange(1, raw.num_rows + 1), pa.int64())))
    con.register("known_outputs", outputs)
    con.register("known_models", models)
    con.register("countries", pa.table({"code": countries()}))
    con.register("currencies", pa.table({"code": currencies()}))
    con.execute(STAGE_SQL)
    found = problems(con, period, source)
    if found:
        raise Rejected(f"usage batch {source or '(events)'}", found)
    valid = con.sql(
        """
        SELECT event_id, kind, ts AS "at", creator AS creator_id, coalesce(output_id, '') AS output_id,
               coalesce(model_id, '') AS model_id, coalesce(territory, '') AS territory,
               CASE WHEN kind = 'revenue' THEN amount END AS amount_text,
               CASE WHEN kind = 'revenue' THEN currency ELSE '' END AS currency,
               CASE WHEN kind = 'revenue' THEN source ELSE '' END AS source
        FROM ev WHERE first ORDER BY "row"
        """
    ).to_arrow_table()
    texts = valid.column("amount_text")
    rows = pc.indices_nonzero(pc.is_valid(texts))
    amount = np.zeros(valid.num_rows, np.int64)
    if len(rows):
        amount[rows.to_numpy()] = micro_units_of(texts.take(rows))
    valid = valid.set_column(valid.column_names.index("amount_text"), "amount", pa.array(amount))
    return valid.cast(VALID_SCHEMA)
