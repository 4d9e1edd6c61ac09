"""The harder planted test: typical planted items at several strengths separate the methods."""

from __future__ import annotations

from typing import Any

import pytest

from accord.attribution.evaluate import RANDOM
from accord.attribution.typical import STRENGTHS, strength_of

METHODS = ("trak", "tracin", "gradsim", "embedding")


def test_a_typical_canary_names_its_strength_and_other_canaries_have_none() -> None:
    assert strength_of("typical-3-x4") == 4 and strength_of("typical-1-x1") == 1
    assert strength_of("duplicate-1") == 0 and strength_of("motif-2") == 0


@pytest.fixture(scope="module")
def typical(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import torch

    from accord.attribution.typical import run_typical

    torch.set_num_threads(1)
    result = run_typical(tmp_path_factory.mktemp("typical"))
    return {(r["method"], r["strength"]): r for r in result["rows"]} | {"setup": result["setup"]}


@pytest.mark.slow
def test_typical_planted_items_at_every_strength_are_scored_for_every_method_and_chance(typical):
    assert typical["setup"]["outputs"] == len(STRENGTHS) * 3 * 3  # three items per strength, three seeds each
    for method in (*METHODS, RANDOM):
        for strength in STRENGTHS:
            row = typical[(method, strength)]
            assert row["outputs"] == 9
            for key in ("precision_at_1", "recall_at_group", "credit_precision", "credit_recall"):
                assert 0.0 <= row[key] <= 1.0
    for strength in STRENGTHS:  # chance: about strength / items
        assert typical[(RANDOM, strength)]["precision_at_1"] < 0.15


@pytest.mark.slow
def test_typical_planted_items_separate_the_methods_where_outlier_canaries_did_not(typical):
    once = [typical[(m, 1)]["precision_at_1"] for m in METHODS]
    best = max(once)
    assert best >= 0.75 and best >= 10 * typical[(RANDOM, 1)]["precision_at_1"]  # found far above chance
    assert best - min(once) >= 0.3  # and the methods no longer all score the same
    # typical items are not outliers of content: the embedding does not find every one of them
    assert all(typical[("embedding", s)]["precision_at_1"] < 1.0 for s in STRENGTHS)


def test_a_continuation_alone_keeps_the_conditions_and_drops_the_primed_bars() -> None:
    from types import SimpleNamespace

    from accord.attribution.evaluate import without_prime
    from accord.attribution.guard.index import encode_midi
    from accord.model.conditions import N_CONDITIONS
    from accord.model.tokenizer import MusicTokenizer
    from tests.test_studio import tune

    tok = MusicTokenizer(styles=("reel",))
    ids = tok.encode(tune(1, bars=6), style="reel")
    loaded = SimpleNamespace(tokenizer=tok)
    kept, midi = without_prime(loaded, ids, 2)  # type: ignore[arg-type]
    assert kept[:N_CONDITIONS] == tuple(ids[:N_CONDITIONS])
    assert kept[N_CONDITIONS:].count(tok.bar_id) == ids[N_CONDITIONS:].count(tok.bar_id) - 2
    assert kept[N_CONDITIONS] == tok.bar_id and tuple(ids[-len(kept) + N_CONDITIONS :]) == kept[N_CONDITIONS:]
    whole = sum(len(enc) for _, enc in encode_midi(tok.decode(ids)))
    rest = sum(len(enc) for _, enc in encode_midi(midi))
    assert rest == whole * 4 // 6  # two of six bars of quavers left out
