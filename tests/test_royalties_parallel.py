"""The engine's result does not depend on how its work is cut: chunks, slices, threads, sorted parts.

The inputs are coded in slices side by side (:mod:`accord.royalties.coding`), the attribution
and owner levels run over chunks of rows side by side (:mod:`accord.royalties.cascade`), and
sorts cut their keys in two parts sorted side by side (:mod:`accord.royalties.lines`); whatever
the cut, the run is the same, line for line. Two-child groups take a closed form in
:func:`accord.royalties.vectorised.allocate_groups`, equal to :func:`accord.money.allocate`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.money import allocate
from accord.royalties import cascade, coding, lines
from accord.royalties.engine import compute
from accord.royalties.inputs import build_inputs
from accord.royalties.vectorised import allocate_groups
from tests.test_royalties_reference import PERIOD, World, log_file, worlds


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(world=worlds(), chunk=st.integers(1, 4), threads=st.integers(2, 3))
def test_a_run_cut_into_chunks_and_party_ranges_is_the_run_in_one_piece(
    world: World, chunk: int, threads: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cat, models, credentials, events, policy = world
    inputs = build_inputs(cat, models, sorted(credentials.items()), PERIOD, policy)
    path = log_file(events, tmp_path)
    whole = compute(inputs, [path], policy, threads=1)
    with monkeypatch.context() as m:
        m.setattr(cascade, "CHUNK_ROWS", chunk)
        m.setattr(lines, "PARALLEL_SORT_MIN", 0)
        m.setattr(coding, "SLICE_ROWS", chunk)
        cut = compute(inputs, [path], policy, threads=threads)
    assert cut.lines.equals(whole.lines)
    assert cut.suspense.equals(whole.suspense)
    assert cut.operator == whole.operator
    assert cut.inputs_hash == whole.inputs_hash


@settings(max_examples=200, deadline=None)
@given(
    batch=st.lists(
        st.tuples(
            st.integers(min_value=-(10**15), max_value=10**15),
            st.tuples(st.integers(1, 10**9), st.integers(0, 3)),
            st.tuples(st.integers(1, 10**9), st.integers(0, 3)),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_groups_of_two_children_are_money_allocate_group_by_group(
    batch: list[tuple[int, tuple[int, int], tuple[int, int]]],
) -> None:
    total = np.array([t for t, _, _ in batch], np.int64)
    weight = np.array([w for _, a, b in batch for w in (a[0], b[0])], np.int64)
    key = np.array([k for _, a, b in batch for k in (a[1], b[1])], np.int64)
    got = allocate_groups(total, np.full(len(batch), 2, np.int64), weight, key).tolist()
    want: list[int] = []
    for t, a, b in batch:
        # equal keys: allocate's stable sort keeps row order, as the closed form does
        want += allocate(t, [a[0], b[0]], [f"{a[1]:02d}", f"{b[1]:02d}"])
    assert got == want
