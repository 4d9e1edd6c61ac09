"""Statements of account: per party and period, what was earned, recouped, held and paid.

A :class:`Statement` is built by the royalty run (see :mod:`accord.royalties`) and written
here as line detail (CSV), the whole statement (canonical JSON, read back by
:func:`read_json`) and a readable HTML summary. Every writer gives byte-identical output
for the same statement. Amounts are integer micro-units; :meth:`Statement.check` proves
the statement reconciles before anything is written.

This module is the public entry point: the records live in
:mod:`accord.royalties.statements_model`, the file formats in
:mod:`accord.royalties.statements_render`, and every public name of both is importable from here.
"""

from __future__ import annotations

from accord.royalties.statements_model import BASES, SIDES, Statement, StatementLine, decimal_text
from accord.royalties.statements_render import (
    CHART_BARS,
    CSV_COLUMNS,
    HTML_LINES,
    JSON_FORMAT,
    csv_text,
    from_document,
    html_text,
    json_text,
    read_json,
    to_document,
    write_csv,
    write_html,
    write_json,
)

__all__ = [
    "BASES",
    "CHART_BARS",
    "CSV_COLUMNS",
    "HTML_LINES",
    "JSON_FORMAT",
    "SIDES",
    "Statement",
    "StatementLine",
    "csv_text",
    "decimal_text",
    "from_document",
    "html_text",
    "json_text",
    "read_json",
    "to_document",
    "write_csv",
    "write_html",
    "write_json",
]
