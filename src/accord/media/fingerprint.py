"""Landmark audio fingerprints: does this audio reproduce a recording we know?

Written from the published design (A. Wang, "An Industrial-Strength Audio Search
Algorithm", ISMIR 2003), with numpy and scipy:

1. **Spectrogram**: the audio, mixed to mono and resampled to :data:`SAMPLE_RATE` (8 kHz:
   the melody and its first harmonics, little else), in Hann windows of
   :data:`N_FFT` samples every :data:`HOP` samples; log magnitude.
2. **Constellation**: the time-frequency points that are the loudest in their
   neighbourhood (:data:`PEAK_NEIGHBOURHOOD` bins × frames) and clearly above the frame's
   median; at most :data:`PEAKS_PER_SECOND` a second, the loudest kept.
3. **Landmarks**: each peak (the anchor) is paired with up to :data:`FAN_OUT` later peaks in
   a target zone (1 to :data:`MAX_DT` frames later, within :data:`MAX_DF` bins); each pair is
   hashed as ``(f1, f2, dt)`` packed into one integer, and kept with the anchor's time.
4. **Matching**: a query's hashes are looked up in the catalog's (binary search over the
   sorted hashes); every hit votes for ``(recording, t_catalog − t_query)``. Audio that
   reproduces a recording puts many votes on one offset; chance hits scatter. Each vote weighs
   as much as its hash is **rare** in the catalog (:func:`rarity_weights`: a pair of peaks that
   every chorale on the organ has is weak evidence), and one query frame gives one offset at
   most one vote (its rarest): a chord two pieces share at one instant pairs up many peaks but
   is one moment of agreement, while a copy agrees frame after frame. The score of a recording
   is its best offset bin's weighted frames *within any* :data:`WINDOW_SECONDS` *of the query*
   (a sliding window over the query's time), or :data:`SHORT_WINDOW_WEIGHT` times those within
   the best :data:`SHORT_WINDOW_SECONDS`, whichever is larger: the score of a copy then does not
   grow with the length of the two clips (a long catalog piece sharing a few chords with another
   at one offset all the way through does not outscore a short copy), and a 5-second copy is
   not diluted by a window twice its length. The offset says where the copy sits; the bin's
   landmarks over the whole query are kept as ``total_votes``.

The hashes depend on pitch and timing, so they catch the same audio (re-encoded, gain
changed, cut, with some noise) but not the same tune re-played, transposed or re-timed:
that is the symbolic check's job.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from accord.errors import ValidationError

SAMPLE_RATE = 8_000
N_FFT = 1024  # 128 ms windows: 7.8 Hz bins, semitones apart above ~130 Hz
HOP = 128  # 16 ms between frames
PEAK_NEIGHBOURHOOD = (21, 25)  # (frequency bins, frames) a peak must dominate: ~160 Hz × 0.4 s
PEAK_MIN_DB = 10.0  # above the frame's median, in dB
PEAKS_PER_SECOND = 20
FAN_OUT = 6
MAX_DT = 63  # frames (about one second)
MAX_DF = 64  # bins (about 1 kHz)
FINGERPRINT_VERSION = "landmark/1"
"""The per-clip landmarks (peaks and hashes); their cache files are named by it."""
OFFSET_BIN = 3  # frames of offset counted as one (jitter of ±1 frame from resampling and cutting)
DT_TOLERANCE = 1
"""A query landmark also matches catalog landmarks whose two peaks lie one frame closer or further
apart. Rendering the same notes again from another starting point moves onsets by a few
milliseconds against the 16-ms frame grid, and only ~35-40% of exact landmarks survive; with
this tolerance a 10-s re-rendered copy is caught at 1% false positives 0.98 of the time instead of
0.83 (0.75 instead of 0.45 with noise) while chance agreement rises by about a tenth (docs/guard.md)."""
WINDOW_SECONDS = 10.0
"""Span of query time the votes of one offset are counted over (see the module's step 4)."""
SHORT_WINDOW_SECONDS = 5.0
SHORT_WINDOW_WEIGHT = 1.15
"""A copy of 5 seconds fills only half of a 10-second window, while chance agreement (a shared
cadence, a chord at one instant) fits in either: a bin's score is the larger of its votes in the
best 10-second window and ``SHORT_WINDOW_WEIGHT`` times its votes in the best 5-second window.
The weight is the ratio of chance levels: on the demo catalog the top 1% of best 10-second windows
of unrelated clips scored about 1.15 times the top 1% of best 5-second ones (docs/guard.md). The
threshold is calibrated on this same score, so the weight moves power between copy lengths, never
the false-alarm rate."""
INDEX_FORMAT = "landmark-index/2"
"""How a saved :class:`FingerprintIndex` is laid out and weighted (2: with :func:`rarity_weights`)."""

_F_BITS, _DT_BITS = 10, 6  # 513 bins need 10 bits; dt up to 63 frames needs 6
_FRAME_BITS = 22  # a query frame in a match key: up to 2^22 frames (18 hours) of query
_BINS_PER_RESULT = 64  # bins whose windows are counted first, per match asked for (more when needed)
_BIN_BITS = 21  # an offset bin in a match key (±2^20 bins of 3 frames); the clip takes the 20 bits left


@dataclass(frozen=True)
class Fingerprint:
    """The landmarks of one audio clip.

    Attributes:
        hashes: ``int64[H]`` packed ``(f1, f2, dt)`` of each landmark.
        times: ``int32[H]`` the anchor's frame.
        seconds: the clip's duration.
    """

    hashes: np.ndarray
    times: np.ndarray
    seconds: float

    def __len__(self) -> int:
        return len(self.hashes)


def read_audio(source: bytes | Path) -> tuple[np.ndarray, int]:
    """Samples (mono ``float64``, −1..1) and sample rate of a WAV or FLAC file (bytes or path).

    Raises:
        ValidationError: not audio that can be read.
    """
    data = source.read_bytes() if isinstance(source, Path) else source
    what = str(source) if isinstance(source, Path) else f"{len(data)} bytes"
    if data[:4] == b"RIFF":
        try:
            with wave.open(io.BytesIO(data)) as w:
                width, channels, rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
                raw = w.readframes(w.getnframes())
        except (wave.Error, EOFError) as error:
            msg = f"audio={what}: expected a PCM WAV file ({error})"
            raise ValidationError(msg, field="audio", value=what) from error
        if width not in (1, 2, 4):
            msg = f"audio={what}: {8 * width}-bit samples; expected 8, 16 or 32-bit PCM"
            raise ValidationError(msg, field="audio", value=what)
        dtype = {1: np.uint8, 2: np.int16, 4: np.int32}[width]
        x = np.frombuffer(raw, dtype=dtype).astype(np.float64)
        x = (x - 128.0) / 128.0 if width == 1 else x / float(2 ** (8 * width - 1))
        return x.reshape(-1, channels).mean(axis=1), rate
    try:
        import soundfile

        x, rate = soundfile.read(io.BytesIO(data), dtype="float64", always_2d=True)
    except Exception as error:  # soundfile raises its own LibsndfileError and RuntimeError
        msg = f"audio={what}: expected a WAV or FLAC file ({error})"
        raise ValidationError(msg, field="audio", value=what) from error
    return x.mean(axis=1), int(rate)


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """16-bit mono PCM WAV of ``samples`` (−1..1, clipped), as :func:`read_audio` reads it."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(rate))
        w.writeframes((np.clip(np.asarray(samples, dtype=np.float64), -1.0, 1.0) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def resample(x: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """``x`` at ``target`` Hz (polyphase filter; anti-aliased)."""
    if rate == target:
        return x
    from scipy import signal  # imported here: scipy.signal costs ~0.5 s of start-up a check of MIDI never needs

    g = np.gcd(int(rate), int(target))
    return signal.resample_poly(x, target // g, rate // g)


def spectrogram(x: np.ndarray) -> np.ndarray:
    """``float32[bins, frames]`` log magnitude (dB) at :data:`SAMPLE_RATE`."""
    from scipy import signal

    if len(x) < N_FFT:
        x = np.pad(x, (0, N_FFT - len(x)))
    _, _, z = signal.stft(x, fs=SAMPLE_RATE, window="hann", nperseg=N_FFT, noverlap=N_FFT - HOP, boundary=None)
    return (20.0 * np.log10(np.abs(z) + 1e-9)).astype(np.float32)


def peaks(spec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The constellation: ``(frames, bins)`` of the spectral peaks, in time order."""
    from scipy import ndimage

    local_max = ndimage.maximum_filter(spec, size=PEAK_NEIGHBOURHOOD, mode="constant", cval=-np.inf) == spec
    floor = np.median(spec, axis=0, keepdims=True) + PEAK_MIN_DB
    loud = spec > np.maximum(floor, spec.max() - 80.0)  # ignore what is 80 dB below the loudest point
    f, t = np.nonzero(local_max & loud)
    if len(t) == 0:
        return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32)
    # density cap: per one-second block keep the loudest PEAKS_PER_SECOND
    frames_per_second = SAMPLE_RATE / HOP
    block = (t / frames_per_second).astype(np.int64)
    strength = spec[f, t]
    order = np.lexsort((-strength, block))
    block_sorted = block[order]
    first = np.r_[0, np.flatnonzero(np.diff(block_sorted)) + 1]
    rank = np.arange(len(order)) - np.repeat(first, np.diff(np.r_[first, len(order)]))
    keep = order[rank < PEAKS_PER_SECOND]
    keep = keep[np.lexsort((f[keep], t[keep]))]
    return t[keep].astype(np.int32), f[keep].astype(np.int32)


def landmarks(frames: np.ndarray, bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hash each peak with up to :data:`FAN_OUT` peaks in its target zone: ``(hashes, anchor frames)``."""
    n = len(frames)
    hashes, times = [], []
    for step in range(1, 4 * FAN_OUT + 1):  # candidates: the next peaks in time order
        if step >= n:
            break
        dt = frames[step:] - frames[:-step]
        df = bins[step:] - bins[:-step]
        ok = (dt >= 1) & (dt <= MAX_DT) & (np.abs(df) <= MAX_DF)
        a = np.flatnonzero(ok)
        hashes.append(
            (bins[a].astype(np.int64) << (_F_BITS + _DT_BITS))
            | (bins[a + step].astype(np.int64) << _DT_BITS)
            | dt[a].astype(np.int64)
        )
        times.append(np.stack([frames[a], np.full(len(a), step)], axis=1))
    if not hashes:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
    h = np.concatenate(hashes)
    tf = np.concatenate(times)
    # keep each anchor's FAN_OUT nearest partners (smallest step first)
    anchor_frame, partner_rank = tf[:, 0], tf[:, 1]
    anchor_id = anchor_frame.astype(np.int64) * 4096 + (h >> (_F_BITS + _DT_BITS))
    order = np.lexsort((partner_rank, anchor_id))
    sorted_ids = anchor_id[order]
    first = np.r_[0, np.flatnonzero(np.diff(sorted_ids)) + 1]
    rank = np.arange(len(order)) - np.repeat(first, np.diff(np.r_[first, len(order)]))
    keep = np.sort(order[rank < FAN_OUT])
    return h[keep], anchor_frame[keep].astype(np.int32)


def fingerprint(samples: np.ndarray, rate: int) -> Fingerprint:
    """The landmark fingerprint of mono ``samples`` at ``rate`` Hz."""
    x = resample(np.asarray(samples, dtype=np.float64), rate)
    frames, bins = peaks(spectrogram(x))
    h, t = landmarks(frames, bins)
    return Fingerprint(h, t, len(x) / SAMPLE_RATE)


def fingerprint_file(source: bytes | Path) -> Fingerprint:
    """The fingerprint of a WAV or FLAC file."""
    x, rate = read_audio(source)
    return fingerprint(x, rate)


def with_spacing_tolerance(
    hashes: np.ndarray, times: np.ndarray, tolerance: int = DT_TOLERANCE
) -> tuple[np.ndarray, np.ndarray]:
    """``hashes`` and their variants with the pair spacing ``dt`` moved by up to ``±tolerance``
    frames (within 1..MAX_DT), each with its landmark's anchor time: what a query looks up."""
    dt = hashes & ((1 << _DT_BITS) - 1)
    out_h, out_t = [hashes], [times]
    for d in range(-tolerance, tolerance + 1):
        if d == 0:
            continue
        ok = (dt + d >= 1) & (dt + d <= MAX_DT)
        out_h.append(hashes[ok] + d)
        out_t.append(times[ok])
    return np.concatenate(out_h), np.concatenate(out_t)


@dataclass(frozen=True)
class AudioMatch:
    """How well a query matches one catalog clip.

    Attributes:
        clip: the clip's index in the :class:`FingerprintIndex`.
        votes: the score: over the query frames of the best :data:`WINDOW_SECONDS` that have a
            landmark agreeing with the clip on one time offset (pair spacing within
            :data:`DT_TOLERANCE` frames), the sum of each frame's rarest agreeing landmark's
            weight (:meth:`FingerprintIndex.build`).
        offset_seconds: where the query starts in the clip (negative: before it).
        matched_fraction: ``total_votes`` over the query's landmarks (at most 1).
        total_votes: agreeing landmarks at that offset over the whole query (not weighted).
        query_seconds: where the best window starts in the query.
    """

    clip: int
    votes: float
    offset_seconds: float
    matched_fraction: float
    total_votes: int = 0
    query_seconds: float = 0.0


def _windowed(
    group: np.ndarray, frame: np.ndarray, weight: np.ndarray, groups: int, seconds: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per group, the most weight inside any window of ``seconds`` of query time, and the frame that
    window starts at. ``group``, ``frame`` and ``weight`` are sorted by (group, frame)."""
    span = max(1, round(seconds * SAMPLE_RATE / HOP))
    # for each frame, the frames of its group up to a window later (cumulative sums over the order)
    stride = int(frame.max()) + span + 1
    position = group.astype(np.int64) * stride + frame
    end = np.searchsorted(position, position + span, side="left")
    cumulative = np.r_[0.0, np.cumsum(weight)]
    in_window = cumulative[end] - cumulative[: len(weight)]
    best = np.zeros(groups, dtype=np.float64)
    np.maximum.at(best, group, in_window)
    start = np.full(groups, np.iinfo(np.int64).max)
    at_best = in_window == best[group]  # exact: best holds these very values
    np.minimum.at(start, group[at_best], frame[at_best])
    return best, start


def rarity_weights(hashes: np.ndarray, clips: np.ndarray, count: int) -> np.ndarray:
    """Per landmark, how rare its hash is in the catalog: ``log(1 + N/df) / log(1 + N)`` for a hash
    found in ``df`` of ``N`` clips (1 for a hash of one clip; ~0.1 for one every clip has).

    Renders of formulaic music on one synthesizer share many pairs of peaks (the tonic and fifth of a
    common key at a common tempo); a match on such a pair is weak evidence, one on a pair only one
    recording has is strong (the audio twin of the symbolic index's inverse document frequency)."""
    if len(hashes) == 0 or count < 2:
        return np.ones(len(hashes), dtype=np.float32)
    pairs = np.unique(np.stack([hashes, clips.astype(np.int64)], axis=1), axis=0)[:, 0]
    distinct, df = np.unique(pairs, return_counts=True)
    found = df[np.searchsorted(distinct, hashes)]
    return (np.log1p(count / found) / np.log1p(count)).astype(np.float32)


@dataclass(frozen=True)
class FingerprintIndex:
    """Landmarks of many clips, sorted by hash for binary search.

    Attributes:
        hashes: ``int64[H]`` sorted.
        clips: ``int32[H]`` which clip each landmark belongs to.
        times: ``int32[H]`` its anchor frame.
        count: number of clips.
        weights: ``float32[H]`` each landmark's :func:`rarity_weights`.
    """

    hashes: np.ndarray
    clips: np.ndarray
    times: np.ndarray
    count: int
    weights: np.ndarray

    @classmethod
    def build(cls, prints: Sequence[Fingerprint]) -> FingerprintIndex:
        if not prints:
            empty = np.zeros(0, np.int32)
            return cls(np.zeros(0, np.int64), empty, empty, 0, np.zeros(0, np.float32))
        h = np.concatenate([p.hashes for p in prints])
        c = np.concatenate([np.full(len(p), i, dtype=np.int32) for i, p in enumerate(prints)])
        t = np.concatenate([p.times for p in prints])
        order = np.argsort(h, kind="stable")
        h, c, t = h[order], c[order], t[order]
        return cls(h, c, t, len(prints), rarity_weights(h, c, len(prints)))

    @staticmethod
    def _window_scores(
        g: np.ndarray, t: np.ndarray, w: np.ndarray, chosen: np.ndarray, window_seconds: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores (and window starts) of the bins ``chosen`` (sorted): the votes in the best long
        window, or :data:`SHORT_WINDOW_WEIGHT` times those in the best short one, whichever is more."""
        inside = np.zeros(int(g.max()) + 1 if len(g) else 0, dtype=bool)
        inside[chosen] = True
        frames = inside[g]
        group = np.searchsorted(chosen, g[frames])
        t, w = t[frames], w[frames]
        windowed, best_start = _windowed(group, t, w, len(chosen), window_seconds)
        short, short_start = _windowed(group, t, w, len(chosen), SHORT_WINDOW_SECONDS)
        short_wins = SHORT_WINDOW_WEIGHT * short > windowed
        return np.where(short_wins, SHORT_WINDOW_WEIGHT * short, windowed), np.where(
            short_wins, short_start, best_start
        )

    def match(
        self, query: Fingerprint, k: int = 5, window_seconds: float = WINDOW_SECONDS, exclude: Sequence[int] = ()
    ) -> list[AudioMatch]:
        """The ``k`` clips (less ``exclude``) with the highest :attr:`AudioMatch.votes`, best first."""
        if len(query) == 0 or len(self.hashes) == 0:
            return []
        q_hashes, q_times = with_spacing_tolerance(query.hashes, query.times)
        lo = np.searchsorted(self.hashes, q_hashes, side="left")
        hi = np.searchsorted(self.hashes, q_hashes, side="right")
        lengths = hi - lo
        total = int(lengths.sum())
        if total == 0:
            return []
        idx = np.repeat(lo - np.r_[0, np.cumsum(lengths)[:-1]], lengths) + np.arange(total)
        clip = self.clips[idx].astype(np.int64)
        qtime = np.repeat(q_times.astype(np.int64), lengths)
        if len(exclude):  # left out before ranking, so the k returned are all usable
            keep = ~np.isin(clip, np.asarray(exclude, dtype=np.int64))
            idx, clip, qtime = idx[keep], clip[keep], qtime[keep]
        if len(idx) == 0:
            return []
        weight = np.asarray(self.weights[idx], dtype=np.float32)
        offset = self.times[idx].astype(np.int64) - qtime
        # offsets within ±OFFSET_BIN // 2 frames are one bin (frame jitter from resampling and cutting)
        binned = np.floor_divide(offset + OFFSET_BIN // 2, OFFSET_BIN)
        # one key per hit, (clip, offset bin, query frame) packed in 64 bits, sorted once: one vote per
        # (bin, query frame), the rarest landmark's weight — a chord the two share at one instant is one
        # moment of agreement however many of its peaks pair up; a copy agrees frame after frame
        bin_bits = _BIN_BITS
        binned = np.clip(binned, 1 - (1 << (bin_bits - 1)), (1 << (bin_bits - 1)) - 1)  # ±16 hours: never reached
        key = (clip << (bin_bits + _FRAME_BITS)) | ((binned + (1 << (bin_bits - 1))) << _FRAME_BITS) | qtime
        order = np.argsort(key)  # equal keys are one vote whatever their order
        key = key[order]
        first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        w = np.maximum.reduceat(weight[order], first).astype(np.float64)
        hits = np.diff(np.r_[first, len(key)])
        key = key[first]
        t = key & ((1 << _FRAME_BITS) - 1)
        uniq, g = np.unique(key >> _FRAME_BITS, return_inverse=True)  # (clip, bin), sorted
        g = g.reshape(-1)
        totals = np.bincount(g, weights=hits, minlength=len(uniq)).astype(np.int64)
        clip_of = (uniq >> bin_bits).astype(np.int64)
        offset_of = (uniq & ((1 << bin_bits) - 1)) - (1 << (bin_bits - 1))
        # windows are counted only for the bins that can reach the top k: a bin's score is at most its
        # whole weight (times the short window's weight); bins are taken by that bound, most first,
        # until the k-th best clip found scores at least the bound of every bin left
        bound = np.bincount(g, weights=w, minlength=len(uniq)) * max(1.0, SHORT_WINDOW_WEIGHT)
        by_bound = np.argsort(-bound, kind="stable")
        take = min(len(uniq), _BINS_PER_RESULT * (k + 1))
        while True:
            chosen = np.sort(by_bound[:take])
            score, start = self._window_scores(g, t, w, chosen, window_seconds)
            rank = np.lexsort((-totals[chosen], -score, clip_of[chosen]))
            best = rank[np.r_[True, clip_of[chosen][rank][1:] != clip_of[chosen][rank][:-1]]]
            best = best[np.lexsort((clip_of[chosen][best], -totals[chosen][best], -score[best]))][:k]
            if take == len(uniq) or (len(best) == k and score[best[-1]] >= bound[by_bound[take]]):
                break
            take = min(len(uniq), 4 * take)
        keep_bins = chosen[best]
        windowed = np.zeros(len(uniq))
        windowed[chosen] = score
        best_start = np.zeros(len(uniq), dtype=np.int64)
        best_start[chosen] = start
        frame = HOP / SAMPLE_RATE
        return [
            AudioMatch(
                int(clip_of[b]),
                round(float(windowed[b]), 3),
                round(float(offset_of[b]) * OFFSET_BIN * frame, 3),
                round(min(1.0, int(totals[b]) / len(query)), 4),
                int(totals[b]),
                round(float(best_start[b]) * frame, 3),
            )
            for b in keep_bins.tolist()
        ]
