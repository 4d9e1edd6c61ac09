"""The run's lines come out in line order, whoever holds what, as dictionary arrays of the run's strings.

The engine orders the recording rows before the owner levels and then sorts the lines by party
only, sorting by the whole key just the parties that hold more than one side or work of a
recording (:mod:`accord.royalties.lines`); these tests hold it to the one order of
docs/royalties.md: party, currency, basis, recording, work, model, output, side.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.datasets.manifest import ManifestItem
from accord.royalties import lines as lines_module
from accord.royalties import reference
from accord.royalties.coding import Codes
from accord.royalties.engine import LINE_COLUMNS, compute
from accord.royalties.inputs import build_inputs
from accord.royalties.policy import RoyaltyPolicy
from accord.royalties.vectorised import Grouped, argsort_int, pack
from tests import factories as f
from tests.test_royalties_reference import PERIOD, World, assert_equal, engine_as_reference, log_file, worlds

ORDER = ("party_id", "currency", "basis", "isrc", "work_id", "model_id", "output_id", "side")
TEXT = ("party_id", "currency", "basis", "side", "isrc", "work_id", "model_id", "output_id", "agreement_id")


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(world=st.booleans().flatmap(lambda mixed: worlds(mixed=mixed)), threads=st.integers(1, 3))
def test_lines_are_in_line_order_and_equal_the_reference_when_a_party_holds_master_and_works(
    world: World, threads: int, tmp_path: Path
) -> None:
    cat, models, credentials, events, policy = world
    inputs = build_inputs(cat, models, sorted(credentials.items()), PERIOD, policy)
    result = compute(inputs, [log_file(events, tmp_path)], policy, threads=threads)
    rows = result.lines.to_pylist()
    keys = [tuple(r[k] for k in ORDER) for r in rows]
    assert all(a < b for a, b in pairwise(keys)), "lines out of order"
    assert result.lines.column_names == list(LINE_COLUMNS)
    ref = reference.compute(cat, models, credentials, events, policy, PERIOD)
    assert_equal(engine_as_reference(result), ref)


def test_a_party_on_both_sides_of_a_recording_has_its_lines_sorted_by_work_before_model(tmp_path: Path) -> None:
    cat = f.catalog(
        f.recording("GBXYZ2600001", {"P-A": 100}, ["W-1", "W-2"]),
        f.work("W-1", {"P-A": 100}),
        f.work("W-2", {"P-A": 50, "P-B": 50}),
        f.agreement("A-1", "P-A", "master", ["train", "generate"], pool_share=50),
        f.agreement("A-2", "P-A", "publishing", ["train", "generate"], pool_share=50),
        f.agreement("A-3", "P-B", "publishing", ["train", "generate"], pool_share=50),
    )
    item = ManifestItem("GBXYZ2600001", "0" * 64, "midi", 1, 1000, (), (), (), (), (), "")
    models = {"M-1": [item], "M-2": [item]}
    events = [
        {"event_id": f"e{k}", "kind": "play", "output_id": "O-1", "model_id": m, "amount": 0, "currency": ""}
        for k, m in enumerate(["M-1", "M-2", "M-2"])
    ]
    events.append(
        {"event_id": "r", "kind": "revenue", "output_id": "", "model_id": "", "amount": 10**9, "currency": "EUR"}
    )
    policy = RoyaltyPolicy()
    inputs = build_inputs(cat, models, [("O-1", {})], PERIOD, policy)
    result = compute(inputs, [log_file(events, tmp_path)], policy, threads=2)
    got = [(r["party_id"], r["basis"], r["work_id"], r["model_id"], r["side"]) for r in result.lines.to_pylist()]
    assert got == [
        ("P-A", "training", "", "M-1", "master"),
        ("P-A", "training", "", "M-2", "master"),
        ("P-A", "training", "W-1", "M-1", "publishing"),
        ("P-A", "training", "W-1", "M-2", "publishing"),
        ("P-A", "training", "W-2", "M-1", "publishing"),
        ("P-A", "training", "W-2", "M-2", "publishing"),
        ("P-B", "training", "W-2", "M-1", "publishing"),
        ("P-B", "training", "W-2", "M-2", "publishing"),
    ]
    for name in TEXT:  # the text columns keep their codes; a reader sees strings
        assert pa.types.is_dictionary(result.lines.schema.field(name).type), name


@settings(max_examples=300, deadline=None)
@given(codes=st.lists(st.integers(-(2**62), 2**62 - 1), max_size=60), bits=st.sampled_from([2, 12, 40, 63]))
def test_the_value_sort_is_the_stable_argsort(codes: list[int], bits: int) -> None:
    values = np.array(codes, np.int64) % (1 << bits) if bits < 63 else np.array(codes, np.int64)
    assert argsort_int(values).tolist() == np.argsort(values, kind="stable").tolist()


@settings(max_examples=100, deadline=None)
@given(keys=st.lists(st.integers(-(2**40), 2**40) | st.integers(0, 5), max_size=300))
def test_the_parallel_argsort_is_the_stable_argsort(keys: list[int]) -> None:
    key = np.array(keys, np.int64)
    original = lines_module.PARALLEL_SORT_MIN
    try:
        lines_module.PARALLEL_SORT_MIN = 0
        got = lines_module.argsort_parallel(key, 2)
    finally:
        lines_module.PARALLEL_SORT_MIN = original
    assert got.tolist() == np.argsort(key, kind="stable").tolist()


@st.composite
def owner_rows(draw: st.DrawFn) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], Codes, Grouped]:
    """Recording rows in recording order and their owner rows as the owner levels give them.

    Each recording row's owners come by (side, work, party); a work's rank is its code (codes are
    ranks of sorted ids, so the order is the same). The holders are the (isrc, side, work, basis,
    party) the owner rows use.
    """
    sizes = {"cur": 2, "basis": 2, "isrc": 3, "model": 2, "out": 3, "side": 2, "work": 3, "party": 4, "agreement": 1}
    combos = st.tuples(*(st.integers(0, sizes[k] - 1) for k in lines_module.RECORDING_ORDER))
    recs = sorted(draw(st.sets(combos, min_size=1, max_size=12)))
    rec = {k: np.array([r[i] for r in recs], np.int64) for i, k in enumerate(lines_module.RECORDING_ORDER)}
    held = st.tuples(st.integers(0, 1), st.integers(0, 2), st.integers(0, 3))
    owner: dict[str, list[int]] = {k: [] for k in ("r", "side", "work", "rank", "party")}
    for r in range(len(recs)):
        for side, work, party in sorted(draw(st.sets(held, max_size=4))):
            for k, v in zip(("r", "side", "work", "rank", "party"), (r, side, work, work, party), strict=True):
                owner[k].append(v)
    o = {k: np.array(v, np.int64) for k, v in owner.items()}
    codes = Codes(**{k: pa.array([f"{k}{i}" for i in range(n)]) for k, n in sizes.items()})
    r = o["r"]
    key = pack(
        [rec["isrc"][r], o["side"], o["work"], rec["basis"][r], o["party"]],
        [sizes["isrc"], sizes["side"], sizes["work"], sizes["basis"], sizes["party"]],
    )
    return rec, o, codes, Grouped(np.unique(key), {}, np.zeros(0, np.int64))


@settings(max_examples=300, deadline=None)
@given(rows=owner_rows(), workers=st.integers(1, 2))
def test_the_line_order_is_the_sort_by_the_whole_line_key(
    rows: tuple[dict[str, np.ndarray], dict[str, np.ndarray], Codes, Grouped], workers: int
) -> None:
    rec, o, codes, holders = rows
    mixed = lines_module.mixed_parties(holders, codes)
    got = lines_module.line_order(o, rec, codes, codes.size("work"), mixed, workers)
    r = o["r"]
    full = [o["party"], rec["cur"][r], rec["basis"][r], rec["isrc"][r], o["work"], rec["model"][r], rec["out"][r]]
    want = np.lexsort([o["side"], *full[::-1]])
    assert got.tolist() == want.tolist()
