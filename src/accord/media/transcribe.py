"""Audio to notes: Spotify's Basic Pitch model run with onnxruntime, no TensorFlow.

The replication guard compares melodies; a catalog recording delivered as audio only has
none until it is transcribed. :func:`transcribe` turns mono samples into a
:class:`~accord.media.features.Performance` (one track, GM program 0) and
:func:`transcribe_file` turns a WAV or FLAC file into Standard MIDI File bytes.

Method (Basic Pitch, Bittner et al., ICASSP 2022, "A lightweight instrument-agnostic model
for polyphonic note transcription and multipitch estimation"):

1. the audio is mixed to mono and resampled to 22 050 Hz (``scipy.signal.resample_poly``;
   basic-pitch uses librosa's resampler, so the samples differ very slightly);
2. it is prefixed with 15 frames (3 840 samples) of silence and cut into windows of
   :data:`AUDIO_N_SAMPLES` (43 844 samples, about 2 s) that overlap by 30 frames (7 680
   samples), the last one zero-padded;
3. the model (``models/basic_pitch_nmp.onnx``, 230 KB, shipped in this package) gives for
   each window 172 frames (86 frames per second) of three posteriorgrams: ``note``
   (88 piano keys, A0..C8), ``onset`` (88 keys) and ``contour`` (264 bins, a third of a
   semitone each); the first and last 15 frames of every window are dropped and the rest
   concatenated, cut to the length of the audio;
4. notes are decoded as basic-pitch's ``output_to_notes_polyphonic`` does, with its defaults:
   onsets inferred from rises in the note posteriorgram are added to the predicted onsets;
   every local maximum (in time) of the onsets at or above 0.5 starts a note (latest
   first), which lasts while the note posteriorgram stays at or above 0.3 (gaps of fewer
   than 11 frames bridged); notes of 11 frames (127.7 ms) or fewer are dropped; then the
   "melodia trick" turns the strongest remaining note energy above 0.3 into further notes
   (onset-less notes, such as a repeated key that was not re-struck, or a legato change);
   a note's velocity is ``round(127 × mean note posterior)``.

Times: a frame's time is its exact position in the audio (window start plus frame index
times 256 samples), where basic-pitch approximates the same drift with a fixed correction
every 172 frames (its ``model_frames_to_time``); the two differ by up to 10 ms, and the
exact times were a little closer to the truth on rendered piano (onset sd 4.6 vs 5.9 ms).

Limits:

* it is **polyphonic** and instrument-agnostic (trained on piano, guitar, voice, strings,
  wind, synthesizers), but not a drum transcriber: drums come out as spurious pitched
  notes or not at all, and one track comes out of everything (no instrument separation);
* pitch range A0 (21) to C8 (108); notes must last more than 11 frames (127.7 ms), so
  detached semiquavers faster than ~110 bpm can be lost;
* pitch bends (basic-pitch's ``contour`` output) are not written; vibrato and glides are
  rounded to the nearest key;
* a repeated note on the same key that is not re-articulated loudly can merge into one.

Measured accuracy (``tests/test_transcribe.py``; 8 folk-like 8-bar melodies at 120 bpm,
quavers and crotchets, seeds 0-7, rendered at 44.1 kHz by FluidSynth with FluidR3_GM; a
reference note counts as found when a transcribed note has exactly its pitch and starts
within 60 ms; each transcribed note matches one reference note at most):

==============================  ======  =========  ===================
rendering                       recall  precision  onset error (mean)
==============================  ======  =========  ===================
FluidSynth piano (program 0)    1.00    0.93       +5 ms (sd 5 ms)
FluidSynth flute (program 73)   0.83    0.92       +28 ms (sd 15 ms)
simple synthesizer, piano       0.94    0.76       −4 ms
simple synthesizer, flute       0.89    0.88       +3 ms
==============================  ======  =========  ===================

Most flute misses are repeated notes on one key played legato (no gap between them),
which merge into one long note; the flute's slow attack delays its onsets. Of the spurious
piano notes, most lie in the reverb tail after the melody ends (the last note found again,
often where two model windows join, and a short A#0 in the last frames of the file); the
rest are octaves above sounding notes and a few short neighbours. Basic-pitch itself gives
the same notes (this decoding was checked note for note against its code).

Speed: about 1.4 s of CPU per minute of audio on this 2-core machine (one onnxruntime
thread): ~1.2 s in the model, ~0.2 s in note decoding, a little in resampling.

Licence: the model file and the decoding code here are adapted from basic-pitch 0.4.0
(``basic_pitch/inference.py``: windowing, unwrapping and the ONNX output names;
``basic_pitch/note_creation.py``: ``get_infered_onsets`` and ``output_to_notes_polyphonic``;
``basic_pitch/constants.py``: the constants below), Copyright 2022 Spotify AB, Apache
License 2.0; see ``models/NOTICE.basic-pitch``. The adaptation replaces librosa, pretty-midi
and TensorFlow by numpy, scipy, onnxruntime and mido.
"""

from __future__ import annotations

import io
import math
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import mido
import numpy as np
from scipy import signal

from accord.errors import AccordError, ValidationError
from accord.media.features import Instrument, Performance

# --- Constants (basic_pitch/constants.py) ------------------------------------------------

AUDIO_SAMPLE_RATE = 22_050
FFT_HOP = 256
ANNOTATIONS_FPS = AUDIO_SAMPLE_RATE // FFT_HOP  # 86
AUDIO_WINDOW_LENGTH = 2  # seconds
ANNOT_N_FRAMES = ANNOTATIONS_FPS * AUDIO_WINDOW_LENGTH  # 172 frames per window
AUDIO_N_SAMPLES = AUDIO_SAMPLE_RATE * AUDIO_WINDOW_LENGTH - FFT_HOP  # 43 844 samples per window
N_OVERLAPPING_FRAMES = 30  # basic_pitch/inference.py run_inference
OVERLAP_LEN = N_OVERLAPPING_FRAMES * FFT_HOP  # 7 680 samples
HOP_SIZE = AUDIO_N_SAMPLES - OVERLAP_LEN  # 36 164 samples between window starts
MIDI_OFFSET = 21  # the first key (A0)
N_KEYS = 88
MAX_FREQ_IDX = N_KEYS - 1

# --- Decoding defaults (basic_pitch/inference.py predict) ----------------------------------

ONSET_THRESHOLD = 0.5
FRAME_THRESHOLD = 0.3
MINIMUM_NOTE_LENGTH_MS = 127.70
MIN_NOTE_FRAMES = round(MINIMUM_NOTE_LENGTH_MS / 1000 * (AUDIO_SAMPLE_RATE / FFT_HOP))  # 11
ENERGY_TOLERANCE = 11  # frames below the frame threshold that still continue a note

MIN_SECONDS = 0.25
"""Shorter clips are refused: no note of the minimum length (128 ms) fits with its decay."""

MODEL_PATH = Path(__file__).with_name("models") / "basic_pitch_nmp.onnx"
TRANSCRIBE_VERSION = "basic-pitch-nmp/2"  # 2: no time signature in the MIDI
"""Names the model and the note decoding: cached transcriptions are keyed by it (bump on any change)."""
"""The Basic Pitch ICASSP 2022 model (``nmp.onnx`` from basic-pitch 0.4.0)."""

_INPUT = "serving_default_input_2:0"
_OUTPUTS = (
    "StatefulPartitionedCall:1",
    "StatefulPartitionedCall:2",
    "StatefulPartitionedCall:0",
)  # note, onset, contour
_BATCH = 16  # windows per model call (~32 s of audio, ~50 MB of activations)

TICKS_PER_BEAT = 480
TEMPO_BPM = 120.0
SECONDS_PER_BAR = 4 * 60.0 / TEMPO_BPM
PROGRAM = 0  # Acoustic Grand Piano
TRACK_NAME = "Transcription"


class TranscriptionUnavailable(AccordError):
    """Transcription cannot run here: onnxruntime is not installed or the model file is missing."""

    code = "transcription_unavailable"


@dataclass(frozen=True)
class ModelOutput:
    """The model's posteriorgrams for a whole clip, 86 frames per second.

    Attributes:
        note: ``float32[frames, 88]``: probability that each key sounds.
        onset: ``float32[frames, 88]``: probability that each key starts.
        contour: ``float32[frames, 264]``: pitch salience in thirds of a semitone.
    """

    note: np.ndarray
    onset: np.ndarray
    contour: np.ndarray


# --- The model ---------------------------------------------------------------------------

_session_lock = threading.Lock()


@lru_cache(maxsize=1)
def _session() -> Any:
    """The onnxruntime session, created once per process (CPU, one intra-op thread)."""
    try:
        import onnxruntime
    except ImportError as error:
        msg = "transcription needs the 'onnxruntime' package (pip install onnxruntime); it is not installed"
        raise TranscriptionUnavailable(msg) from error
    if not MODEL_PATH.is_file():
        msg = f"the Basic Pitch model {MODEL_PATH} is missing; reinstall accord"
        raise TranscriptionUnavailable(msg)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    return onnxruntime.InferenceSession(str(MODEL_PATH), sess_options=options, providers=["CPUExecutionProvider"])


def _windows(audio: np.ndarray) -> np.ndarray:
    """``float32[n, AUDIO_N_SAMPLES, 1]``: the padded audio cut as basic-pitch's ``get_audio_input`` does."""
    padded = np.concatenate([np.zeros(OVERLAP_LEN // 2, dtype=np.float32), audio.astype(np.float32)])
    starts = range(0, len(padded), HOP_SIZE)
    out = np.zeros((len(starts), AUDIO_N_SAMPLES, 1), dtype=np.float32)
    for row, start in enumerate(starts):
        window = padded[start : start + AUDIO_N_SAMPLES]
        out[row, : len(window), 0] = window
    return out


def _unwrap(output: np.ndarray, n_samples: int) -> np.ndarray:
    """Drop half the overlap at each end of every window and join them (basic-pitch's ``unwrap_output``)."""
    n_olap = N_OVERLAPPING_FRAMES // 2
    output = output[:, n_olap:-n_olap, :]
    n_frames = math.floor(n_samples * (ANNOTATIONS_FPS / AUDIO_SAMPLE_RATE))
    return output.reshape(-1, output.shape[2])[:n_frames]


def model_output(audio: np.ndarray) -> ModelOutput:
    """Run the model over mono ``audio`` sampled at :data:`AUDIO_SAMPLE_RATE` (22 050 Hz).

    Raises:
        TranscriptionUnavailable: onnxruntime is missing.
    """
    session = _session()
    windows = _windows(np.asarray(audio, dtype=np.float32))
    parts: list[list[np.ndarray]] = [[], [], []]
    for start in range(0, len(windows), _BATCH):
        with _session_lock:  # one thread is configured; keep calls serial
            results = session.run(list(_OUTPUTS), {_INPUT: windows[start : start + _BATCH]})
        for part, result in zip(parts, results, strict=True):
            part.append(np.asarray(result, dtype=np.float32))
    note, onset, contour = (_unwrap(np.concatenate(part), len(audio)) for part in parts)
    return ModelOutput(note=note, onset=onset, contour=contour)


def frame_times(n_frames: int) -> np.ndarray:
    """The time (s) of each unwrapped frame: its window's start plus its place in the window.

    Window ``w`` starts ``w × HOP_SIZE`` samples into the padded audio, and its first kept
    frame is 15 frames (= the padding) in, so frame ``j`` is at
    ``(w × HOP_SIZE + (j mod 142) × FFT_HOP) / 22 050`` with ``w = j div 142``.
    """
    kept = ANNOT_N_FRAMES - N_OVERLAPPING_FRAMES  # 142
    j = np.arange(n_frames)
    return ((j // kept) * HOP_SIZE + (j % kept) * FFT_HOP) / AUDIO_SAMPLE_RATE


# --- Note creation (basic_pitch/note_creation.py) ----------------------------------------


def _inferred_onsets(onsets: np.ndarray, frames: np.ndarray, n_diff: int = 2) -> np.ndarray:
    """The predicted onsets, or rises of the note posteriorgram over 1 and 2 frames, whichever is larger."""
    diffs = []
    for n in range(1, n_diff + 1):
        appended = np.concatenate([np.zeros((n, frames.shape[1])), frames])
        diffs.append(appended[n:, :] - appended[:-n, :])
    frame_diff = np.min(diffs, axis=0)
    frame_diff[frame_diff < 0] = 0
    frame_diff[:n_diff, :] = 0
    top = float(np.max(frame_diff)) if frame_diff.size else 0.0
    if top > 0:  # basic-pitch divides unconditionally; silence would give NaN
        frame_diff = float(np.max(onsets)) * frame_diff / top
    return np.max([onsets, frame_diff], axis=0)


def _extent(energy: np.ndarray, start: int, freq: int, stop: int, frame_threshold: float) -> tuple[int, int]:
    """Walk forward from ``start`` until ``ENERGY_TOLERANCE`` frames in a row are below threshold (or ``stop``).

    Returns the index reached and ``k``, the number of trailing frames below threshold.
    """
    i, k = start, 0
    while i < stop and k < ENERGY_TOLERANCE:
        k = k + 1 if energy[i, freq] < frame_threshold else 0
        i += 1
    return i, k


def notes_from_output(
    frames: np.ndarray,
    onsets: np.ndarray,
    *,
    onset_threshold: float = ONSET_THRESHOLD,
    frame_threshold: float = FRAME_THRESHOLD,
    min_note_frames: int = MIN_NOTE_FRAMES,
    infer_onsets: bool = True,
    melodia_trick: bool = True,
) -> list[tuple[int, int, int, float]]:
    """Decode posteriorgrams into notes ``(start_frame, end_frame, midi_pitch, amplitude)``.

    A port of basic-pitch's ``output_to_notes_polyphonic`` (no frequency limits).
    """
    frames = np.asarray(frames, dtype=np.float64)
    onsets = np.asarray(onsets, dtype=np.float64)
    n_frames = frames.shape[0]
    if n_frames == 0:
        return []
    if infer_onsets:
        onsets = _inferred_onsets(onsets, frames)

    peak_thresh_mat = np.zeros(onsets.shape)
    peaks = signal.argrelmax(onsets, axis=0)
    peak_thresh_mat[peaks] = onsets[peaks]
    onset_time_idx, onset_freq_idx = np.where(peak_thresh_mat >= onset_threshold)

    remaining = frames.copy()
    events: list[tuple[int, int, int, float]] = []
    for start, freq in zip(onset_time_idx[::-1].tolist(), onset_freq_idx[::-1].tolist(), strict=True):  # latest first
        if start >= n_frames - 1:
            continue
        i, k = _extent(remaining, start + 1, freq, n_frames - 1, frame_threshold)
        i -= k  # back to the last frame above threshold
        if i - start <= min_note_frames:
            continue
        remaining[start:i, max(freq - 1, 0) : min(freq + 2, N_KEYS)] = 0
        events.append((start, i, freq + MIDI_OFFSET, float(np.mean(frames[start:i, freq]))))

    if melodia_trick:
        while remaining.size and float(np.max(remaining)) > frame_threshold:
            i_mid, freq = (int(v) for v in np.unravel_index(int(np.argmax(remaining)), remaining.shape))
            remaining[i_mid, freq] = 0
            band = slice(max(freq - 1, 0), min(freq + 2, N_KEYS))
            # forward pass: zero the band as it goes
            i, k = i_mid + 1, 0
            while i < n_frames - 1 and k < ENERGY_TOLERANCE:
                k = k + 1 if remaining[i, freq] < frame_threshold else 0
                remaining[i, band] = 0
                i += 1
            i_end = i - 1 - k
            # backward pass
            i, k = i_mid - 1, 0
            while i > 0 and k < ENERGY_TOLERANCE:
                k = k + 1 if remaining[i, freq] < frame_threshold else 0
                remaining[i, band] = 0
                i -= 1
            i_start = i + 1 + k
            if i_end - i_start <= min_note_frames:
                continue
            events.append((i_start, i_end, freq + MIDI_OFFSET, float(np.mean(frames[i_start:i_end, freq]))))
    return events


# --- Public API --------------------------------------------------------------------------


def _prepare(samples: np.ndarray, rate: int) -> np.ndarray:
    """Validate and resample to 22 050 Hz mono ``float32``."""
    if isinstance(rate, bool) or not isinstance(rate, int | np.integer) or rate <= 0:
        msg = f"rate={rate!r}: expected a positive integer sample rate"
        raise ValidationError(msg, field="rate", value=rate)
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if x.ndim != 1:
        msg = f"samples: shape {x.shape}; expected mono samples (n,) or (n, channels)"
        raise ValidationError(msg, field="samples", value=x.shape)
    seconds = len(x) / int(rate)
    if seconds < MIN_SECONDS:
        msg = f"audio: {seconds:.3f} s; expected at least {MIN_SECONDS} s to transcribe"
        raise ValidationError(msg, field="audio", value=round(seconds, 3))
    if not np.all(np.isfinite(x)):
        msg = "samples: NaN or infinite values; expected finite samples in -1..1"
        raise ValidationError(msg, field="samples", value="non-finite")
    if int(rate) != AUDIO_SAMPLE_RATE:
        g = math.gcd(int(rate), AUDIO_SAMPLE_RATE)
        x = signal.resample_poly(x, AUDIO_SAMPLE_RATE // g, int(rate) // g)
    return x.astype(np.float32)


def _clean(events: list[tuple[int, int, int, float]], times: np.ndarray) -> np.ndarray:
    """``float64[N, 5]`` rows ``(onset_s, duration_s, pitch, velocity, program)``, by onset then pitch.

    Notes on the same key are cut where the next one starts, so MIDI note-offs pair up.
    """
    if not events:
        return np.zeros((0, 5), dtype=np.float64)
    rows = np.array(
        [
            (times[s], times[min(e, len(times) - 1)], p, min(127, max(1, round(127 * a))), PROGRAM)
            for s, e, p, a in events
        ],
        dtype=np.float64,
    )
    rows = rows[np.lexsort((rows[:, 0], rows[:, 2]))]  # by pitch, then onset
    same_key_next = (rows[1:, 2] == rows[:-1, 2]) & (rows[1:, 0] < rows[:-1, 1])
    rows[:-1, 1] = np.where(same_key_next, rows[1:, 0], rows[:-1, 1])
    rows[:, 1] -= rows[:, 0]  # end -> duration
    rows = rows[rows[:, 1] > 0]
    return rows[np.lexsort((rows[:, 2], rows[:, 0]))]


def transcribe(samples: np.ndarray, rate: int) -> Performance:
    """Transcribe mono (or ``(n, channels)``) ``samples`` at ``rate`` Hz into notes.

    Returns a :class:`Performance` with one track (``"Transcription"``, GM program 0):
    rows ``(onset_s, duration_s, pitch, velocity, 0)``; ``downbeats`` every 2 s (the
    nominal 120 bpm 4/4 of :func:`transcribe_file`'s MIDI); ``seconds`` the audio's length
    (or the last note-off, if later).

    Raises:
        ValidationError: a bad rate, non-finite samples, or a clip shorter than :data:`MIN_SECONDS`.
        TranscriptionUnavailable: onnxruntime is missing.
    """
    audio = _prepare(samples, rate)
    output = model_output(audio)
    events = notes_from_output(output.note, output.onset)
    table = _clean(events, frame_times(output.note.shape[0]))
    seconds = len(audio) / AUDIO_SAMPLE_RATE
    if len(table):
        seconds = max(seconds, float((table[:, 0] + table[:, 1]).max()))
    instruments = (Instrument(name=TRACK_NAME, program=PROGRAM, notes=len(table)),) if len(table) else ()
    return Performance(
        notes=table,
        track=np.zeros(len(table), dtype=np.int64),
        instruments=instruments,
        downbeats=np.arange(0.0, seconds, SECONDS_PER_BAR),
        seconds=seconds,
        metered=False,
    )


def performance_midi(performance: Performance) -> bytes:
    """A one-track Standard MIDI File of ``performance``'s notes: 120 bpm, notes at their real times.

    No time signature: a transcription does not know the music's bars, and a reader should not
    take MIDI's assumed 4/4 for them (:attr:`Performance.metered`)."""
    ticks_per_second = TICKS_PER_BEAT * TEMPO_BPM / 60.0
    events: list[tuple[int, int, int, int]] = []  # (tick, order: offs before ons, pitch, velocity)
    for onset, duration, pitch, velocity, _ in performance.notes:
        on = round(onset * ticks_per_second)
        off = max(on + 1, round((onset + duration) * ticks_per_second))
        events.append((on, 1, int(pitch), int(velocity)))
        events.append((off, 0, int(pitch), 0))
    events.sort()
    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("track_name", name=TRACK_NAME, time=0))
    track.append(mido.MetaMessage("set_tempo", tempo=round(60_000_000 / TEMPO_BPM), time=0))
    track.append(mido.Message("program_change", program=PROGRAM, channel=0, time=0))
    now = 0
    for tick, is_on, pitch, velocity in events:
        kind = "note_on" if is_on else "note_off"
        track.append(mido.Message(kind, note=pitch, velocity=velocity, channel=0, time=tick - now))
        now = tick
    end = round(performance.seconds * ticks_per_second)
    if end > now:  # a marker, not just end_of_track, so MIDI readers see the file last as long as the audio
        track.append(mido.MetaMessage("marker", text="end of audio", time=end - now))
    track.append(mido.MetaMessage("end_of_track", time=0))
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def transcribe_file(source: bytes | Path) -> bytes:
    """Transcribe a WAV or FLAC file (bytes or a path) into Standard MIDI File bytes.

    Raises:
        ValidationError: not audio that can be read, or too short.
        TranscriptionUnavailable: onnxruntime is missing.
    """
    from accord.media.fingerprint import read_audio

    if isinstance(source, Path) and not source.is_file():
        msg = f"audio={source}: no such file"
        raise ValidationError(msg, field="audio", value=str(source))
    samples, rate = read_audio(source)
    return performance_midi(transcribe(samples, int(rate)))
