"""Guard scores in bars of the catalog line, the same-tune rule, and the policy format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from accord.attribution.guard import Guard
from accord.attribution.guard.lines import line_from_notes
from accord.attribution.guard.ngrams import encode, notes_per_bar
from accord.attribution.guard.policy import POLICY_FORMAT, load_policy, policy_path
from accord.errors import ValidationError
from accord.registry.store import Store
from accord.settings import Settings
from tests.test_guard import import_catalog, isrc, midi_bytes, symbolic_only, tune


def _excerpt(pitches: list[int], beats: list[float], first_beat: float, last_beat: float) -> tuple[list, list]:
    starts = np.cumsum([0.0, *beats[:-1]])
    keep = [i for i, s in enumerate(starts) if first_beat <= s < last_beat]
    return [pitches[i] for i in keep], [beats[i] for i in keep]


def test_notes_per_bar_counts_bars_from_the_time_signature_or_two_second_bars_without_one() -> None:
    onsets = np.arange(32) * 0.25  # quavers at 120 bpm: 8 a bar of 4/4
    bars = (onsets // 2.0 + 1).astype(np.int32)
    assert notes_per_bar(encode(line_from_notes("melody", np.full(32, 60), onsets, bars))) == pytest.approx(8.0)
    unbarred = encode(line_from_notes("melody", np.full(32, 60), onsets))  # every note "in bar 1"
    assert notes_per_bar(unbarred) == pytest.approx(32 / (onsets[-1] / 2.0))
    assert notes_per_bar(encode(line_from_notes("melody", np.full(3, 60), np.zeros(3)))) == 3.0


def test_a_copied_phrase_weighs_its_bars_in_a_slow_tune_and_in_a_fast_one(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    fast = tune(11)  # mostly quavers: ~7 notes a bar
    other = tune(12)
    slow = (other[0], [2 * b for b in other[1]])  # crotchets and minims: ~3.5 notes a bar
    import_catalog(
        store,
        tmp_path / "d",
        [("Fast", "midi", midi_bytes(*fast)), ("Slow", "midi", midi_bytes(*slow))]
        + [(f"Other {s}", "midi", midi_bytes(*tune(s))) for s in (13, 14, 15)],
    )
    guard = Guard.for_store(store, symbolic_only(settings))
    scores = {}
    for name, (pitches, beats), n in (("fast", fast, 1), ("slow", slow, 2)):
        # six bars of the work, transposed, between eight bars of other material either side
        p, b = _excerpt(pitches, beats, 4 * 4.0, 10 * 4.0)  # bars 5-10 (4 beats a bar)
        before, after = tune(900 + n, bars=8), tune(950 + n, bars=8)
        piece = midi_bytes(before[0] + [x + 3 for x in p] + after[0], before[1] + b + after[1])
        worst = guard.verdict(midi=piece).worst
        assert worst is not None and worst.isrc == isrc(n), (name, worst)
        scores[name] = worst.bars
        assert 4.0 <= worst.bars <= 7.0, (name, worst)  # about six bars, whatever the notes per bar
    assert max(scores.values()) / min(scores.values()) < 1.35, scores


def test_calibration_passes_over_the_same_tune_under_another_title(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    from accord.attribution.guard.calibrate import calibrate

    first = tune(21)
    again = ([p + 2 for p in first[0]], first[1])  # the same tune, a tone higher, under another title
    import_catalog(
        store,
        tmp_path / "d",
        [("The Lark", "midi", midi_bytes(*first)), ("Lark in the Morning", "midi", midi_bytes(*again))]
        + [(f"Other {s}", "midi", midi_bytes(*tune(s))) for s in (22, 23, 24, 25)],
    )
    guard = Guard.for_store(store, symbolic_only(settings))
    result = calibrate(guard, percentile=99.5, margin=0.5, created="2026-12-02T00:00:00Z")
    pairs = {(a, b) for a, b, _ in result.duplicates}
    assert (isrc(1), isrc(2)) in pairs and (isrc(2), isrc(1)) in pairs
    by_piece = {guard.index.pieces[b.piece].isrc: b for b in result.borrowing}
    for mine, twin in ((isrc(1), isrc(2)), (isrc(2), isrc(1))):
        measured = by_piece[mine]
        assert [guard.index.pieces[p].isrc for p, _ in measured.same_tune] == [twin]
        assert measured.other < 0 or guard.index.pieces[measured.other].isrc not in (mine, twin)
    # the twins' 16 bars in common do not lift the threshold: it sits above what unrelated tunes share
    assert result.policy.symbolic_threshold < 8.0, result.policy
    assert guard.same_tune(0, 1) and not guard.same_tune(0, 2)


def test_a_policy_saved_in_notes_by_an_earlier_version_is_refused(settings: Settings) -> None:
    path = policy_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    old = {"format": "accord-guard-policy/1", "symbolic_threshold": 41.5, "audio_threshold": 346.75}
    path.write_text(json.dumps(old | {"source": "calibrated", "percentile": 99.5, "margin": 4.0}))
    with pytest.raises(ValidationError, match="calibrate again") as error:
        load_policy(settings)
    assert error.value.field == "guard_policy" and POLICY_FORMAT in str(error.value)


def test_the_demo_line_of_a_piece_names_its_closest_work_per_check_with_score_and_threshold() -> None:
    from accord.cli.attribution import print_piece_provenance
    from accord.cli.common import console

    credential = {
        "guard": {
            "status": "clear",
            "closest": [
                {"isrc": isrc(4), "title": "Drowsy Maggie", "check": "symbolic", "score": 2.41, "threshold": 6.0},
                {"isrc": isrc(5), "title": "", "check": "audio", "score": 120.0, "threshold": 346.75},
                {"isrc": isrc(6), "title": "Second", "check": "symbolic", "score": 1.5, "threshold": 6.0},
            ],
        },
        "attribution": {"status": "pending", "note": "(no model)"},
    }
    with console.capture() as captured:
        print_piece_provenance("OUT-1", credential)
    text = captured.get()
    assert "guard: clear — closest: symbolic 2.4 of 6 significance, -log10 E (Drowsy Maggie)" in text
    assert f"audio 120 of 346.75 weighted landmarks ({isrc(5)})" in text and "Second" not in text


def test_a_symbolic_only_calibration_keeps_the_audio_threshold_of_the_same_catalog(settings: Settings) -> None:
    from dataclasses import replace

    from accord.attribution.guard.policy import (
        DEFAULT_AUDIO_THRESHOLD,
        keep_audio_calibration,
        make_policy,
        save_policy,
    )

    both = make_policy(np.array([1.0, 2.0, 3.0]), np.array([100.0, 300.0]), percentile=99.5, margin=0.5,
                       catalog_key="K", created="2026-12-02T00:00:00Z")  # fmt: skip
    save_policy(both, settings)
    symbolic = make_policy(np.array([1.0, 4.0]), None, percentile=99.5, margin=0.5, catalog_key="K", created="later")
    assert symbolic.audio_threshold == DEFAULT_AUDIO_THRESHOLD
    kept, was_kept = keep_audio_calibration(symbolic, settings)
    assert was_kept and kept.audio_threshold == both.audio_threshold > DEFAULT_AUDIO_THRESHOLD
    assert kept.symbolic_threshold == symbolic.symbolic_threshold and kept.measured["audio"]["count"] == 2
    other, was_kept = keep_audio_calibration(replace(symbolic, catalog_key="another catalog"), settings)
    assert not was_kept and other.audio_threshold == DEFAULT_AUDIO_THRESHOLD
