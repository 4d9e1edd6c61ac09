"""The vectorised allocation (:func:`accord.royalties.vectorised.allocate_groups`) is exactly ``money.allocate``."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.money import allocate
from accord.royalties.vectorised import allocate_groups, allocate_pairs

groups = st.lists(
    st.tuples(
        st.integers(min_value=-(10**15), max_value=10**15),
        st.lists(st.tuples(st.integers(1, 10**7), st.integers(0, 5)), min_size=1, max_size=8),
    ),
    min_size=1,
    max_size=6,
)


def _check(batch: list[tuple[int, list[tuple[int, int]]]]) -> None:
    total = np.array([t for t, _ in batch], np.int64)
    counts = np.array([len(c) for _, c in batch], np.int64)
    weight = np.array([w for _, c in batch for w, _ in c], np.int64)
    key = np.array([k for _, c in batch for _, k in c], np.int64)
    got = allocate_groups(total, counts, weight, key).tolist()
    want: list[int] = []
    for t, children in batch:
        # equal keys: allocate's stable sort keeps row order, as the vectorised lexsort does
        want += allocate(t, [w for w, _ in children], [f"{k:02d}" for _, k in children])
    assert got == want
    assert [sum(got[a : a + n]) for a, n in zip(np.r_[0, np.cumsum(counts)[:-1]], counts, strict=True)] == [
        t for t, _ in batch
    ]


@settings(max_examples=200, deadline=None)
@given(batch=groups)
def test_vectorised_allocation_is_money_allocate_group_by_group(batch: list[tuple[int, list[tuple[int, int]]]]) -> None:
    _check(batch)


@settings(max_examples=60, deadline=None)
@given(
    total=st.integers(min_value=0, max_value=10**15),
    weights=st.lists(st.integers(10**9, 10**12), min_size=1, max_size=6),
)
def test_weights_too_large_for_int64_products_are_still_exact(total: int, weights: list[int]) -> None:
    _check([(total, [(w, i) for i, w in enumerate(weights)])])


def test_ties_go_to_the_smaller_key() -> None:
    got = allocate_groups(
        np.array([100, 2]), np.array([3, 3]), np.array([1, 1, 1, 1, 1, 1]), np.array([2, 0, 1, 5, 4, 3])
    )
    assert got.tolist() == [33, 34, 33, 0, 1, 1]


big_groups = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=10**12),
        st.lists(st.tuples(st.integers(1, 10**6), st.integers(0, 12)), min_size=9, max_size=40),
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=80, deadline=None)
@given(batch=big_groups)
def test_groups_of_more_than_eight_children_are_ranked_by_sorting(
    batch: list[tuple[int, list[tuple[int, int]]]],
) -> None:
    _check(batch)


@settings(max_examples=40, deadline=None)
@given(
    total=st.integers(min_value=0, max_value=10**15),
    weights=st.lists(st.integers(10**9, 10**12), min_size=9, max_size=20),
)
def test_keys_and_remainders_too_wide_to_pack_fall_back_to_lexsort(total: int, weights: list[int]) -> None:
    keys = [2**50 - 7 * i for i in range(len(weights))]
    got = allocate_groups(np.array([total]), np.array([len(weights)]), np.array(weights), np.array(keys)).tolist()
    assert got == allocate(total, weights, [f"{k:020d}" for k in keys])


@settings(max_examples=60, deadline=None)
@given(
    batch=st.lists(
        st.tuples(
            st.integers(min_value=-(10**12), max_value=10**12),
            st.lists(st.tuples(st.integers(1, 10**6), st.integers(0, 3)), min_size=1, max_size=3),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_one_child_groups_mixed_with_others(batch: list[tuple[int, list[tuple[int, int]]]]) -> None:
    _check(batch)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.tuples(st.integers(-(10**15), 10**15), st.integers(0, 1_000_000)), min_size=1, max_size=20),
    ties_to_first=st.booleans(),
)
def test_a_two_way_split_is_money_allocate_row_by_row(rows: list[tuple[int, int]], ties_to_first: bool) -> None:
    keys = ["a", "b"] if ties_to_first else ["b", "a"]
    total, weight = np.array([t for t, _ in rows]), np.array([w for _, w in rows])
    got = allocate_pairs(total, weight, 1_000_000, ties_to_first=ties_to_first).tolist()
    assert got == [allocate(t, [w, 1_000_000 - w], keys)[0] for t, w in rows]


def test_a_two_way_tie_goes_to_the_key_that_sorts_first() -> None:
    half = np.array([1]), np.array([500_000])
    assert allocate_pairs(*half, 1_000_000, ties_to_first=True).tolist() == [1]
    assert allocate_pairs(*half, 1_000_000, ties_to_first=False).tolist() == [0]
    assert allocate(1, [1, 1], ["payable", "operator"]) == [0, 1]  # by stable id, not by position
