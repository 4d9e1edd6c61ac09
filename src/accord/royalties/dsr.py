"""DDEX Digital Sales Reporting (DSR) flat files: a reader with control totals, and a writer.

A DSR flat file is UTF-8, one record per line, cells separated by tabs, ``\\`` escaping a
tab, ``|`` (the multi-value separator) or itself. ``#`` lines are comments (the DSRF v3
files carry the column layout of each record type as a ``#TYPE`` comment). Order:
``HEAD`` first, then summary records (``SYxx``), then blocks of records sharing a
``BlockId`` (resource ``AS``, work ``MW``, release usage ``RU``, sales/usage ``SU``,
licensor ``LI``), ``FOOT`` last with control totals.

Two layouts are read, both as found in the public ``ddexnet/dsrf`` sample reports:

* ``dsrf/30`` — DSRF v3 (``HEAD`` with ``MessageVersion`` ``dsrf/30``): ``FOOT`` carries
  ``NumberOfLinesInFile``, ``NumberOfLinesInReport``, ``NumberOfSummaryRecords``,
  ``NumberOfBlocksInFile`` and ``NumberOfBlocksInReport``.
* ``legacy`` — the 2014 test schema (``sales-reporting-flat.xsd``): ``HEAD MessageId
  Profile ProfileVersion [FileNumber NumberOfFiles]`` and ``FOOT NumberOfLines``.

Lines are counted as the standard says: every line of the file, HEAD, FOOT, comments and
empty lines included. The writer (:func:`write_dsr`, mapping documented in ``docs/dsr.md``)
produces the ``dsrf/30`` UGC-profile structure of the sample reports and reads its file back.

This module is the public entry point: the reader lives in :mod:`accord.royalties.dsr_read`,
the writer in :mod:`accord.royalties.dsr_write`, and every public name of both is importable
from here.
"""

from __future__ import annotations

from accord.royalties.dsr_read import (
    LAYOUTS_LEGACY,
    LAYOUTS_V3,
    DsrBlock,
    DsrCounts,
    DsrFooter,
    DsrHeader,
    DsrRecord,
    DsrReport,
    control_total_problems,
    escape,
    iter_records,
    parse_dsr,
    read_dsr,
    read_dsr_message,
    split_cells,
    split_values,
    summaries_by_id,
    unescape,
)
from accord.royalties.dsr_write import (
    COMMERCIAL_MODEL,
    MESSAGE_VERSION,
    PROFILE,
    PROFILE_VERSION,
    RIGHTS_TYPES,
    TERRITORY,
    USE_TYPES,
    WRITTEN_TYPES,
    dsr_filename,
    dsr_text,
    reconciliation_problems,
    statement_lines,
    write_dsr,
)

__all__ = [
    "COMMERCIAL_MODEL",
    "LAYOUTS_LEGACY",
    "LAYOUTS_V3",
    "MESSAGE_VERSION",
    "PROFILE",
    "PROFILE_VERSION",
    "RIGHTS_TYPES",
    "TERRITORY",
    "USE_TYPES",
    "WRITTEN_TYPES",
    "DsrBlock",
    "DsrCounts",
    "DsrFooter",
    "DsrHeader",
    "DsrRecord",
    "DsrReport",
    "control_total_problems",
    "dsr_filename",
    "dsr_text",
    "escape",
    "iter_records",
    "parse_dsr",
    "read_dsr",
    "read_dsr_message",
    "reconciliation_problems",
    "split_cells",
    "split_values",
    "statement_lines",
    "summaries_by_id",
    "unescape",
    "write_dsr",
]
