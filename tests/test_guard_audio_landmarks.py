"""The audio check's scoring: rare landmarks weigh more, one query frame is one vote, a short copy is
not diluted by a long window, and levels do not change the landmarks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.attribution.guard.audio import AudioSource, load_or_build_reference
from accord.media.fingerprint import (
    HOP,
    SAMPLE_RATE,
    SHORT_WINDOW_SECONDS,
    SHORT_WINDOW_WEIGHT,
    WINDOW_SECONDS,
    Fingerprint,
    FingerprintIndex,
    fingerprint,
    rarity_weights,
    wav_bytes,
)
from tests.test_fingerprint import clip

FPS = SAMPLE_RATE / HOP


def _print(hashes: np.ndarray, times: np.ndarray) -> Fingerprint:
    return Fingerprint(np.asarray(hashes, dtype=np.int64), np.asarray(times, dtype=np.int32), float(times.max()) / FPS)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, 30), min_size=1, max_size=20), min_size=2, max_size=8))
def test_a_hash_more_clips_share_never_weighs_more(clips: list[list[int]]) -> None:
    hashes = np.concatenate([np.asarray(c, dtype=np.int64) << 8 for c in clips])
    owners = np.concatenate([np.full(len(c), i, dtype=np.int32) for i, c in enumerate(clips)])
    w = rarity_weights(hashes, owners, len(clips))
    assert np.all((w > 0) & (w <= 1.0 + 1e-6))
    df = {int(h): len({int(o) for hh, o in zip(hashes, owners, strict=True) if hh == h}) for h in hashes}
    by_df = sorted({(df[int(h)], float(x)) for h, x in zip(hashes, w, strict=True)})
    weights_in_df_order = [x for _, x in by_df]
    assert weights_in_df_order == sorted(weights_in_df_order, reverse=True)
    assert all(abs(x - 1.0) < 1e-6 for d, x in by_df if d == 1)  # a hash of one clip weighs 1


def test_a_chord_shared_at_one_instant_is_one_vote_a_copy_agrees_frame_after_frame() -> None:
    rng = np.random.default_rng(3)
    n = int(60 * FPS)
    catalog = _print(rng.integers(1, 1 << 40, n, dtype=np.int64), np.arange(n, dtype=np.int32))
    other = _print(rng.integers(1 << 41, 1 << 42, 500, dtype=np.int64), np.arange(500, dtype=np.int32))
    index = FingerprintIndex.build([catalog, other])
    # 60 of the catalog's landmarks (from 60 frames), all heard at one frame of the query: one chord
    pick = np.arange(1000, 1060)
    chord = index.match(_print(catalog.hashes[pick], np.full(60, 500, dtype=np.int32)))
    # the same 60 landmarks at their own frames: 60 frames agreeing on one offset
    copy = index.match(_print(catalog.hashes[pick], catalog.times[pick] - 1000))
    assert chord == [] or chord[0].votes <= SHORT_WINDOW_WEIGHT  # one frame: one vote per offset bin at most
    assert copy[0].clip == 0 and copy[0].votes == pytest.approx(SHORT_WINDOW_WEIGHT * 60, rel=0.01)
    assert copy[0].offset_seconds == pytest.approx(1000 / FPS, abs=0.05)


def test_a_short_copy_is_scored_on_the_short_window_and_a_long_one_on_the_long_window() -> None:
    rng = np.random.default_rng(5)
    n = int(90 * FPS)
    catalog = _print(rng.integers(1, 1 << 40, n, dtype=np.int64), np.arange(n, dtype=np.int32))
    index = FingerprintIndex.build([catalog])

    def copy_of(seconds: float) -> float:
        frames = np.arange(2000, 2000 + int(seconds * FPS))
        return index.match(_print(catalog.hashes[frames], catalog.times[frames] - 2000))[0].votes

    short_frames = round(SHORT_WINDOW_SECONDS * FPS)
    long_frames = round(WINDOW_SECONDS * FPS)
    assert copy_of(SHORT_WINDOW_SECONDS) == pytest.approx(SHORT_WINDOW_WEIGHT * short_frames, abs=1.5)
    assert copy_of(30.0) == pytest.approx(max(long_frames, SHORT_WINDOW_WEIGHT * short_frames), abs=1.5)


def test_left_out_clips_are_never_returned_and_the_next_ones_are() -> None:
    clips = [clip(seed) for seed in range(1, 5)]
    index = FingerprintIndex.build([fingerprint(c, SAMPLE_RATE) for c in clips])
    query = fingerprint(clips[1][2 * SAMPLE_RATE : 8 * SAMPLE_RATE], SAMPLE_RATE)
    assert index.match(query)[0].clip == 1
    rest = index.match(query, k=4, exclude=[1])
    assert rest and all(m.clip != 1 for m in rest)
    assert index.match(query, exclude=[0, 1, 2, 3]) == []


def test_landmarks_do_not_depend_on_the_level() -> None:
    x = clip(9)
    loud, quiet = fingerprint(x, SAMPLE_RATE), fingerprint(0.4 * x, SAMPLE_RATE)
    both = len(np.intersect1d(loud.hashes * 100_000 + loud.times, quiet.hashes * 100_000 + quiet.times))
    assert both >= 0.98 * len(loud) and abs(len(quiet) - len(loud)) <= 0.02 * len(loud)


def test_the_saved_reference_is_memory_mapped_and_matches_as_the_built_one(tmp_path: Path) -> None:
    files = []
    for i in range(3):
        path = tmp_path / f"{i}.wav"
        path.write_bytes(wav_bytes(clip(20 + i), SAMPLE_RATE))
        files.append((AudioSource(f"ISRC{i}", f"Clip {i}", f"{i:064x}", "audio"), path))
    built = load_or_build_reference(files, tmp_path / "cache")
    saved = load_or_build_reference(files, tmp_path / "cache")
    assert isinstance(saved.hashes, np.memmap) and not isinstance(built.hashes, np.memmap)
    query = fingerprint(clip(21)[SAMPLE_RATE : 7 * SAMPLE_RATE], SAMPLE_RATE)
    assert built.match(query) == saved.match(query) and saved.match(query)[0].clip == 1
    fewer = load_or_build_reference(files[:2], tmp_path / "cache")  # another catalog: another folder
    assert fewer.count == 2 and len(list((tmp_path / "cache" / "guard").glob("audio-*"))) == 2


def test_counting_windows_only_for_the_bins_that_can_win_returns_what_counting_all_returns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import accord.media.fingerprint as fp

    clips = [clip(seed) for seed in range(30, 38)]
    index = FingerprintIndex.build([fingerprint(c, SAMPLE_RATE) for c in clips])
    rng = np.random.default_rng(2)
    queries = [fingerprint(clips[i][SAMPLE_RATE : 7 * SAMPLE_RATE] * 0.5, SAMPLE_RATE) for i in (0, 3, 6)]
    queries.append(fingerprint(rng.normal(0.0, 0.1, 6 * SAMPLE_RATE) + clip(99)[: 6 * SAMPLE_RATE], SAMPLE_RATE))
    pruned = [index.match(q, k=k) for q in queries for k in (1, 3, 8)]
    for bins in (1, 10**9):  # the fewest bins first, and every bin
        monkeypatch.setattr(fp, "_BINS_PER_RESULT", bins)
        assert [index.match(q, k=k) for q in queries for k in (1, 3, 8)] == pruned
