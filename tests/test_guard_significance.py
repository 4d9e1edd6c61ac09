"""The symbolic guard decides by significance: fitted nulls, E-values, learnt scores, exact runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.attribution.guard import Guard
from accord.attribution.guard.lines import line_from_notes
from accord.attribution.guard.ngrams import Encoded, encode
from accord.attribution.guard.policy import (
    DEFAULT_NULLS,
    POLICY_FORMAT,
    GuardPolicy,
    load_policy,
    policy_path,
    read_policy_file,
    save_policy,
)
from accord.attribution.guard.scoring import Scoring, exact_run, learn
from accord.attribution.guard.significance import EVIDENCE, GumbelNull, combined_evalue, fit_gumbel, significance
from accord.errors import ValidationError
from accord.registry.store import Store
from accord.settings import Settings
from tests.test_guard import import_catalog, isrc, midi_bytes, symbolic_only, tune


def _gumbel_draws(lam: float, a: float, c: float, m: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Best scores whose chance count is ``exp(a + c·ln m − λS)``: P(max < S) = exp(−E(S))."""
    u = rng.uniform(size=len(m))
    # solve exp(-E) = u  →  E = -ln u  →  S = (a + c ln m - ln(-ln u)) / λ
    return (a + c * np.log(m) - np.log(-np.log(u))) / lam


def test_the_fit_recovers_the_tail_and_the_growth_with_query_length() -> None:
    rng = np.random.default_rng(7)
    m = rng.choice([20, 40, 80, 160], size=4000).astype(float)
    scores = _gumbel_draws(0.4, 2.0, 1.0, m, rng)
    null = fit_gumbel(scores.tolist(), m.astype(int).tolist(), catalog_notes=100_000)
    assert null is not None
    assert null.lam == pytest.approx(0.4, rel=0.08)
    assert null.c == pytest.approx(1.0, abs=0.15)
    # the fitted E of a score is the chance count: about 1 in 1,000 windows reaches E = 0.001
    threshold = np.array([(null.a + null.c * math.log(mi) - math.log(0.001)) / null.lam for mi in m])
    assert 0.0 <= float(np.mean(scores >= threshold)) <= 0.003


def test_too_few_windows_with_a_score_fit_no_null() -> None:
    assert fit_gumbel([0.0] * 50 + [3.0] * 3, [40] * 53, catalog_notes=1000) is None
    with pytest.raises(ValueError, match="one each"):
        fit_gumbel([1.0, 2.0], [10], catalog_notes=1000)


@settings(max_examples=60, deadline=None)
@given(
    score=st.floats(0, 200),
    more=st.floats(0.01, 50),
    notes=st.integers(1, 2000),
    catalog=st.integers(1_000, 10_000_000),
    grow=st.integers(2, 10),
)
def test_an_evalue_falls_with_the_score_and_grows_with_the_catalog(
    score: float, more: float, notes: int, catalog: int, grow: int
) -> None:
    null = GumbelNull(lam=0.2, a=-1.0, c=1.0, notes=catalog, d=0.3)
    e = null.evalue(score, notes, catalog, composition=4.0)
    assert null.evalue(score + more, notes, catalog, composition=4.0) < e
    assert null.evalue(score, notes, catalog * grow, composition=4.0) == pytest.approx(e * grow, rel=1e-9)
    assert significance(e) >= significance(null.evalue(score, notes, catalog * grow, composition=4.0))


def test_lines_of_evidence_combine_as_the_smallest_evalue_times_their_number() -> None:
    assert combined_evalue({"alignment": 0.5, "exact run": 0.002}) == pytest.approx(0.002 * len(EVIDENCE))
    assert combined_evalue({}) == math.inf
    assert significance(math.inf) < 0 and significance(0.001) == 3.0


def test_learnt_scores_reward_what_same_tune_pairs_share_and_punish_the_rest() -> None:
    aligned = np.zeros((4, 3))
    aligned[0, 0], aligned[0, 1], aligned[1, 0], aligned[3, 2] = 900, 60, 30, 10
    background = np.full((4, 3), 100.0)
    background[3] = 400.0
    scoring = learn(aligned, background)
    table = scoring.matrix()
    assert table[0, 0] > table[0, 1] > 0 > table[1, 0] and table[3, 2] < 0
    assert scoring.gap == pytest.approx(-table.min()) and scoring.learnt_from == 1000
    assert Scoring.from_dict(json.loads(json.dumps(scoring.to_dict()))) == scoring
    with pytest.raises(ValueError, match="rows"):
        Scoring.from_dict({"table": [[1.0]], "gap": 1.0})


def _line(pitches: list[int], beats: list[float]) -> Encoded:
    onsets = np.cumsum([0.0, *beats[:-1]]) * 0.5
    return encode(line_from_notes("melody", np.asarray(pitches), onsets, (onsets // 2.0 + 1).astype(np.int32)))


def test_an_exact_run_survives_transposition_and_tempo_and_weighs_rare_symbols_more() -> None:
    pitches, beats = tune(5, bars=8)
    source = _line(pitches, beats)
    copied = [p + 5 for p in pitches[10:40]]
    copy = _line([60, 61, 59, *copied, 50, 52], [1.5, 0.5, 1.0, *[b * 0.8 for b in beats[10:40]], 1.0, 1.0])
    info = np.ones(49 * 16)
    run = exact_run(copy, source, info)
    assert run is not None and run.notes >= 26  # 30 copied notes; the first two steps join the other material
    assert 10 <= run.catalog_notes[0] <= 13 and run.catalog_notes[1] == 39
    rarer = exact_run(copy, source, info * 3.0)
    assert rarer is not None and rarer.information == pytest.approx(3 * run.information)
    unrelated = exact_run(_line(*tune(77, bars=4)), source, info)
    assert unrelated is None or unrelated.notes < 8


def test_a_policy_keeps_its_nulls_and_scores_and_an_older_format_is_refused(settings: Settings) -> None:
    scoring = Scoring(((3.0, 2.0, 1.0), (-2.0,) * 3, (-3.0,) * 3, (-4.0,) * 3), 4.0, 500)
    nulls = {"alignment": GumbelNull(0.2, 1.0, 1.1, 50_000, 300, 0.4), "exact run": DEFAULT_NULLS["exact run"]}
    policy = GuardPolicy(3.5, 90.0, "calibrated", scoring=scoring, nulls=nulls, catalog_key="k")
    path = save_policy(policy, settings)
    again = read_policy_file(path)
    assert again.scoring == scoring and again.nulls == nulls and again.version == policy.version
    data = json.loads(path.read_text())
    assert data["format"] == POLICY_FORMAT and data["nulls"]["alignment"]["d"] == 0.4
    data["format"] = "accord-guard-policy/3"
    policy_path(settings).write_text(json.dumps(data))
    with pytest.raises(ValidationError, match="calibrate again"):
        load_policy(settings)
    data["format"] = POLICY_FORMAT
    data["nulls"] = {"alignment": {"lam": 0.2}}
    policy_path(settings).write_text(json.dumps(data))
    with pytest.raises(ValidationError, match="not a policy file"):
        load_policy(settings)


def _four_bar_copy(seed: int, shift: int, tempo: float) -> bytes:
    """Bars 5-8 of catalog tune ``seed``, transposed and re-timed, between 8 bars of other material."""
    pitches, beats = tune(seed)
    starts = np.cumsum([0.0, *beats[:-1]])
    keep = [i for i, s in enumerate(starts) if 16 <= s < 32]
    before, after = tune(3000 + seed, bars=8), tune(4000 + seed, bars=8)
    return midi_bytes(
        before[0] + [pitches[i] + shift for i in keep] + after[0],
        before[1] + [beats[i] for i in keep] + after[1],
        bpm=120 * tempo,
    )


def test_a_four_bar_transposed_copy_is_improbable_and_blocked_while_originals_pass(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    import_catalog(store, tmp_path / "d", [(f"Tune {s}", "midi", midi_bytes(*tune(s))) for s in range(1, 9)])
    guard = Guard.for_store(store, symbolic_only(settings))
    verdict = guard.verdict(midi=_four_bar_copy(4, shift=-3, tempo=0.8))
    worst = verdict.worst
    assert verdict.blocked, verdict.to_dict()
    assert worst is not None and worst.isrc == isrc(4) and worst.evalue < 10 ** (-guard.policy.symbolic_threshold)
    assert worst.transposition == -3 and worst.evidence in EVIDENCE and worst.exact_run_notes >= 20
    assert "chance matches" in worst.describe() and worst.to_dict()["evalue"] == worst.evalue
    for seed in (601, 602, 603, 604):
        original = guard.verdict(midi=midi_bytes(*tune(seed)))
        assert original.status == "clear", original.to_dict()


def test_calibration_fits_a_null_per_line_of_evidence_and_sets_the_line_above_chance(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    from accord.attribution.guard.calibrate import calibrate

    tunes = [midi_bytes(*tune(s, bars=12)) for s in range(30, 54)]
    import_catalog(store, tmp_path / "d", [(f"Tune {i}", "midi", t) for i, t in enumerate(tunes)])
    guard = Guard.for_store(store, symbolic_only(settings))
    result = calibrate(guard, percentile=99.5, margin=0.5, created="2026-12-03T00:00:00Z", audio=False)
    policy = result.policy
    assert len(result.windows) == 24 and {w.window_bars for w in result.windows} <= {2, 4, 8, 16}
    assert set(policy.nulls) == set(EVIDENCE)
    fitted = policy.nulls["alignment"]
    assert fitted.samples == 24 and fitted.notes == len(guard.index.pitches) and fitted.lam > 0
    chance = float(np.percentile([w.significance for w in result.windows], 99.5))
    assert policy.symbolic_threshold >= chance + 0.5 - 1e-9 or policy.symbolic_threshold == 2.0
    assert policy.measured["symbolic"]["unit"] == "significance (-log10 E)"
    save_policy(policy, settings)
    assert load_policy(settings).nulls == policy.nulls
