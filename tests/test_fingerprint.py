"""Landmark audio fingerprints: the same audio is found (cut, quieter, noisier); other audio is not."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from accord.attribution.guard import Guard
from accord.attribution.guard.policy import DEFAULT_AUDIO_THRESHOLD
from accord.cli import app
from accord.errors import ValidationError
from accord.media.fingerprint import SAMPLE_RATE, FingerprintIndex, fingerprint, fingerprint_file, read_audio
from accord.media.render import render, synthesize
from accord.registry.store import Store
from accord.settings import Settings
from tests.test_guard import import_catalog, isrc, midi_bytes, tune, wav_bytes

RATE = 8_000


def clip(seed: int, bars: int = 8, program: int = 0) -> np.ndarray:
    """A tune rendered by the simple synthesizer at 8 kHz."""
    return synthesize(midi_bytes(*tune(seed, bars=bars), program=program), RATE)


def test_a_cut_quieter_noisier_copy_is_found_at_its_offset_and_other_audio_is_not() -> None:
    clips = [clip(seed) for seed in range(1, 4)]
    index = FingerprintIndex.build([fingerprint(c, RATE) for c in clips])
    rng = np.random.default_rng(0)
    excerpt = clips[2][3 * RATE : 9 * RATE] * 0.4 + rng.normal(0.0, 0.01, 6 * RATE)
    best = index.match(fingerprint(excerpt, RATE))
    assert best[0].clip == 2
    assert abs(best[0].offset_seconds - 3.0) < 0.1
    stranger = index.match(fingerprint(clip(77)[3 * RATE : 9 * RATE], RATE))
    strangers = stranger[0].votes if stranger else 0
    assert best[0].votes >= DEFAULT_AUDIO_THRESHOLD > strangers and best[0].votes > 2 * strangers


def test_wav_and_flac_read_alike_and_junk_is_refused(tmp_path: Path) -> None:
    samples = clip(3, bars=2)
    wav = wav_bytes(samples, RATE)
    flac = io.BytesIO()
    soundfile.write(flac, samples, RATE, format="FLAC")
    x_wav, rate_wav = read_audio(wav)
    x_flac, rate_flac = read_audio(flac.getvalue())
    assert rate_wav == rate_flac == RATE and np.allclose(x_wav, x_flac, atol=1e-3)
    fp = fingerprint_file(wav)
    assert len(fp) > 20 and abs(fp.seconds - len(samples) / RATE) < 0.01
    with pytest.raises(ValidationError, match="expected a WAV or FLAC"):
        read_audio(b"definitely not audio")
    assert SAMPLE_RATE == 8_000


@pytest.mark.slow  # fingerprints and renders a small catalog (FluidSynth where installed)
def test_a_render_reproducing_a_catalog_recording_is_blocked_by_the_audio_check_alone(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    # the catalog: two audio-only recordings (no MIDI: the symbolic check cannot see them) and one MIDI work
    audio_a, audio_b = clip(21, bars=12, program=40), clip(22, bars=12, program=0)
    import_catalog(
        store,
        tmp_path / "d",
        [
            ("Audio A", "audio", wav_bytes(audio_a, RATE)),
            ("Audio B", "audio", wav_bytes(audio_b, RATE)),
            ("Score C", "midi", midi_bytes(*tune(23))),
        ],
    )
    guard = Guard.for_store(store, settings)
    # all three are in the symbolic index: the audio-only two through their transcribed notes
    assert {p.isrc for p in guard.index.pieces} == {isrc(1), isrc(2), isrc(3)}
    copied = audio_a[2 * RATE : 14 * RATE] * 0.6 + np.random.default_rng(1).normal(0.0, 0.005, 12 * RATE)
    copy_path = tmp_path / "copy.wav"
    copy_path.write_bytes(wav_bytes(copied, RATE))
    verdict = guard.verdict(audio=copy_path)
    assert verdict.status == "blocked" and verdict.checks == ("audio",)
    worst = verdict.worst
    assert worst is not None and worst.isrc == isrc(1) and worst.check == "audio" and worst.catalog_line == "audio"
    assert abs(worst.catalog_seconds[0] - 2.0) < 0.1
    original = tmp_path / "original.wav"
    original.write_bytes(wav_bytes(clip(99, bars=12, program=40), RATE))
    assert guard.verdict(audio=original).status == "clear"
    # the same through the command anyone can run
    runner = CliRunner()
    result = runner.invoke(app, ["guard", "check", str(copy_path), "--json"])
    assert result.exit_code == 1, result.output
    assert json.loads(result.output)["closest"][0]["isrc"] == isrc(1)
    assert runner.invoke(app, ["guard", "check", str(original)]).exit_code == 0


@pytest.mark.slow  # renders the catalog's MIDI as the audio reference
def test_an_output_rendered_from_a_catalog_midi_is_caught_by_its_render(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    score = midi_bytes(*tune(31, bars=12))
    import_catalog(store, tmp_path / "d", [("Score", "midi", score), ("Other", "midi", midi_bytes(*tune(32)))])
    guard = Guard.for_store(store, settings)
    assert guard.audio is not None and guard.audio.index.count == 2
    output = tmp_path / "output.wav"
    render(score, output)  # rendered as generation renders outputs
    verdict = guard.verdict(audio=output)
    audio = [e for e in verdict.closest if e.check == "audio"]
    assert verdict.blocked and audio[0].isrc == isrc(1) and audio[0].catalog_line == "midi render"


def test_votes_count_within_a_window_of_the_query_so_long_sparse_sharing_scores_below_a_short_copy() -> None:
    from accord.media.fingerprint import HOP, WINDOW_SECONDS, Fingerprint

    rng = np.random.default_rng(7)
    frames_per_s = SAMPLE_RATE / HOP
    n = int(120 * frames_per_s)  # a two-minute catalog clip, one landmark per frame
    times = np.arange(n, dtype=np.int32)
    catalog = Fingerprint(rng.integers(1, 1 << 40, n, dtype=np.int64), times, 120.0)
    index = FingerprintIndex.build([catalog])
    # another clip of the same length sharing every 5th landmark at one offset all the way through
    shared = catalog.hashes.copy()
    other = rng.integers(1 << 41, 1 << 42, n, dtype=np.int64)
    shared[np.arange(n) % 5 != 0] = other[np.arange(n) % 5 != 0]
    sparse = index.match(Fingerprint(shared, times, 120.0))[0]
    # an exact copy of 12 seconds from the middle
    cut = slice(int(50 * frames_per_s), int(62 * frames_per_s))
    copy = index.match(Fingerprint(catalog.hashes[cut], times[cut] - times[cut][0], 12.0))[0]
    window = round(WINDOW_SECONDS * frames_per_s)
    assert copy.votes == window  # every landmark of one window agrees
    assert copy.total_votes == cut.stop - cut.start
    assert copy.offset_seconds == pytest.approx(50.0, abs=0.05)
    assert sparse.total_votes == len(range(0, n, 5)) > copy.votes  # more votes overall...
    assert sparse.votes <= window // 5 + 1  # ...but few inside any window
    assert 0.0 <= copy.query_seconds <= 2.0


@pytest.mark.slow  # renders a small catalog and the planted re-renders
def test_audio_evaluation_catches_planted_re_renders_above_the_hard_negatives(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    from accord.attribution.guard.evaluate_audio import COPY_SECONDS, VARIANTS, evaluate_audio

    # six 24-bar tunes at 120 bpm: 48 seconds each, long enough for a 20-second excerpt
    works = [(f"Tune {n}", "midi", midi_bytes(*tune(40 + n, bars=24))) for n in range(6)]
    import_catalog(store, tmp_path / "d", works)
    guard = Guard.for_store(store, settings)
    report = evaluate_audio(guard, store.media.read_verified, works=4, seed=3).to_dict()
    rows = {(r["copy_seconds"], r["variant"]): r for r in report["rows"]}
    assert report["works"] == 4 and report["negatives"] > 0
    assert set(rows) == {(s, v) for s in COPY_SECONDS for v in VARIANTS}
    longest = rows[(max(COPY_SECONDS), "clean")]
    assert longest["n"] == 4 and longest["tpr_at_1pct_fpr"] == 1.0 and longest["source_found_first"] == 1.0
    assert longest["median_score"] > report["negative_scores"]["max"]


@pytest.mark.slow  # renders a small catalog as the audio reference
def test_audio_calibration_passes_over_the_same_tune_under_another_title(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    from accord.attribution.guard.calibrate import SameTune, calibrate

    melody = tune(61, bars=16)
    works = [
        ("Tune", "midi", midi_bytes(*melody)),
        ("Tune, another title", "midi", midi_bytes(*melody)),  # the same file delivered again, as another work
        ("Other", "midi", midi_bytes(*tune(62, bars=16))),
        ("Third", "midi", midi_bytes(*tune(63, bars=16))),
    ]
    import_catalog(store, tmp_path / "d", works)
    guard = Guard.for_store(store, settings)
    related = SameTune(guard)
    assert related(isrc(1), isrc(2)) and related(isrc(2), isrc(1))
    assert not related(isrc(1), isrc(3)) and not related(isrc(3), isrc(4))
    # left to itself, the audio check hears the other title as a copy of the first...
    raw = guard.audio_self_similarity(same_tune={})
    passed_over = guard.audio_self_similarity(same_tune={}, related=related)
    assert raw[0] > 3 * max(passed_over[0], 1.0) and raw[1] > 3 * max(passed_over[1], 1.0)
    assert raw[2] == passed_over[2] and raw[3] == passed_over[3]  # unrelated tunes: unchanged
    # ...and calibration passes over it, so the threshold reflects unrelated recordings only
    result = calibrate(guard, percentile=100.0, margin=4.0, created="2026-12-02T00:00:00Z")
    assert max(result.audio_scores) <= max(passed_over) and result.policy.audio_threshold < raw[0]
