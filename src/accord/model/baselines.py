"""Baselines the music model must beat, each producing MIDI bytes.

* :func:`random_piece`: the "untrained" baseline: uniformly random pitches, durations and
  velocities in a plausible range; every statistic of :mod:`accord.media.features` should
  put a trained model far from it.
* :class:`MarkovBaseline`: an n-gram model (order 3 by default, with backoff) over the
  top line of each training piece, one event per melody note: ``(pitch, duration class)``.
  Chords, inner voices and drums are ignored. It is what "learning from the data without
  any neural network" gives, and :meth:`MarkovBaseline.nll` gives it a per-event
  negative log-likelihood to compare against (perplexity = ``exp(nll)``).

Both are deterministic: the same seed gives the same bytes.
"""

from __future__ import annotations

import io
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import mido
import numpy as np
from symusic.core import ScoreTick

from accord.errors import ValidationError
from accord.media.features import top_line_indices

TICKS_PER_QUARTER = 480
VELOCITY = 80

DURATION_CLASSES: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
"""Note lengths in quarter notes (sixteenth to whole note, with the dotted ones between):
each melody note's time to the next onset is rounded to the nearest, on a log scale."""

Event = tuple[int, int]
"""One melody note: ``(pitch, index into DURATION_CLASSES)``."""

_START: Event = (-1, -1)  # pads the context before the first note: the model learns how pieces begin
_VOCABULARY = 128 * len(DURATION_CLASSES)  # every event the smoothing gives probability to


def _check_program(program: int) -> None:
    if not isinstance(program, int) or not 0 <= program <= 127:
        msg = f"program={program!r}: expected a General MIDI program 0-127"
        raise ValidationError(msg, field="program", value=program)


def _check_seconds(seconds: float) -> None:
    if not seconds > 0:
        msg = f"seconds={seconds!r}: expected a positive length"
        raise ValidationError(msg, field="seconds", value=seconds)


def write_midi(
    parts: Sequence[tuple[int, Sequence[tuple[int, int, int, int]]]],
    *,
    tempo_bpm: float,
    title: str = "",
) -> bytes:
    """A type-1 MIDI file: one track per ``(program, [(start_tick, duration_ticks, pitch, velocity)])``.

    Parts get channels 0, 1, 2 ... skipping channel 10 (drums); 480 ticks per quarter note.
    """
    file = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_QUARTER)
    conductor = mido.MidiTrack()
    if title:
        conductor.append(mido.MetaMessage("track_name", name=title, time=0))
    conductor.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_bpm), time=0))
    conductor.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    file.tracks.append(conductor)
    for index, (program, notes) in enumerate(parts):
        channel = min(index if index < 9 else index + 1, 15)
        track = mido.MidiTrack()
        track.append(mido.Message("program_change", program=program, channel=channel, time=0))
        # (tick, 0 = off before 1 = on at the same tick, pitch, velocity): a repeated pitch re-sounds.
        timeline = sorted(
            [(start + duration, 0, pitch, 0) for start, duration, pitch, _ in notes]
            + [(start, 1, pitch, velocity) for start, _, pitch, velocity in notes]
        )
        now = 0
        for tick, is_on, pitch, velocity in timeline:
            kind = "note_on" if is_on else "note_off"
            track.append(mido.Message(kind, note=pitch, velocity=velocity, channel=channel, time=tick - now))
            now = tick
        file.tracks.append(track)
    buffer = io.BytesIO()
    file.save(file=buffer)
    return buffer.getvalue()


def random_piece(
    seed: int,
    *,
    seconds: float = 30.0,
    programs: Sequence[int] = (0,),
    tempo_bpm: float = 120.0,
    lowest: int = 48,
    highest: int = 84,
) -> bytes:
    """The untrained baseline: each program plays a line of uniformly random notes.

    Pitches are uniform in ``lowest..highest`` (C3-C6 by default), durations uniform from a
    sixteenth to a half note (on the sixteenth grid), velocities uniform in 60-100.
    """
    _check_seconds(seconds)
    for program in programs:
        _check_program(program)
    if not 0 <= lowest <= highest <= 127:
        msg = f"lowest={lowest!r}, highest={highest!r}: expected 0 <= lowest <= highest <= 127"
        raise ValidationError(msg, field="lowest", value=(lowest, highest))
    rng = np.random.default_rng(seed)
    sixteenth = TICKS_PER_QUARTER // 4
    end = round(seconds * tempo_bpm / 60 * TICKS_PER_QUARTER)
    parts = []
    for program in programs:
        notes: list[tuple[int, int, int, int]] = []
        now = 0
        while now < end:
            duration = min(int(rng.integers(1, 9)) * sixteenth, end - now)
            pitch = int(rng.integers(lowest, highest + 1))
            velocity = int(rng.integers(60, 101))
            notes.append((now, duration, pitch, velocity))
            now += duration
        parts.append((program, notes))
    return write_midi(parts, tempo_bpm=tempo_bpm, title=f"random baseline, seed {seed}")


def transpose_to_key(midi: bytes, key: str) -> bytes:
    """``midi`` moved by at most a tritone so its estimated key has the key signature of ``key`` (``"D major"``).

    Keys are compared through their relative major (A minor and C major share a signature), so the
    pitches move into the target key's scale without changing the piece's mode. Unchanged when
    either key is unknown. This gives a baseline that cannot be conditioned on a key the same
    request the model receives as a condition token.
    """
    from accord.media.features import NOTE_NAMES, key_estimate

    estimated, _ = key_estimate(midi)
    if not estimated or not key:
        return midi

    def signature(name: str) -> int:
        tonic, mode = name.split()
        return (NOTE_NAMES.index(tonic) + (3 if mode == "minor" else 0)) % 12

    shift = (signature(key) - signature(estimated)) % 12
    shift = shift - 12 if shift > 6 else shift
    if shift == 0:
        return midi
    score = ScoreTick.from_midi(midi)
    return bytes(score.shift_pitch(shift).dumps_midi())


def _duration_class(quarters: float) -> int:
    """Index of the nearest :data:`DURATION_CLASSES` entry on a log scale."""
    if quarters <= 0:
        return 0
    distances = [abs(math.log2(quarters / c)) for c in DURATION_CLASSES]
    return int(np.argmin(distances))


def melody_events(midi: bytes) -> tuple[list[Event], float]:
    """The top line of ``midi`` as events, and the file's first tempo in BPM.

    The top line is :func:`accord.media.features.top_line_indices` of the pitched (non-drum)
    notes, in ticks; each event's
    duration class is the time to the next top-line onset (a rest joins the note before it),
    the last one its own length.

    Raises:
        ValidationError: the bytes are not a MIDI file symusic can read.
    """
    try:
        score = ScoreTick.from_midi(midi)
    except (RuntimeError, ValueError) as error:
        msg = f"midi={len(midi)} bytes: expected a Standard MIDI File symusic can read ({error})"
        raise ValidationError(msg, field="midi", value=len(midi)) from error
    tempo = float(score.tempos[0].qpm) if len(score.tempos) else 120.0
    starts: list[np.ndarray] = []
    pitches: list[np.ndarray] = []
    lengths: list[np.ndarray] = []
    for track in score.tracks:
        if track.is_drum or len(track.notes) == 0:
            continue
        arrays = track.notes.numpy()
        starts.append(arrays["time"].astype(np.int64))
        pitches.append(arrays["pitch"].astype(np.int64))
        lengths.append(arrays["duration"].astype(np.int64))
    if not starts:
        return [], tempo
    start, pitch, length = np.concatenate(starts), np.concatenate(pitches), np.concatenate(lengths)
    tpq = score.ticks_per_quarter
    line = top_line_indices(start, length, pitch, tolerance=max(1.0, tpq / 32))  # 1/128 note: chord spread
    start, pitch, length = start[line], pitch[line], length[line]
    gaps = np.append(np.diff(start), length[-1])
    tpq = score.ticks_per_quarter
    events = [(int(p), _duration_class(g / tpq)) for p, g in zip(pitch, gaps, strict=True)]
    return events, tempo


class MarkovBaseline:
    """An n-gram model of melody events with backoff and add-k smoothing.

    ``P(event | previous order-1 events)`` is read from the longest context seen in
    training (backing off to shorter ones, down to the unigram), as
    ``(count(context, event) + k) / (count(context) + k * V)`` over every possible event
    (``V`` = 128 pitches x 8 duration classes). The context chosen depends only on the
    history, so each step is a proper distribution and :meth:`nll` is a true
    negative log-likelihood. :meth:`sample` draws from the unsmoothed counts of the same
    context, so it never plays an event unseen in that context.

    Attributes:
        order: events per n-gram, context included (3: each note depends on the two before).
        k: the add-k smoothing constant of :meth:`nll`.
        tempo_bpm: the median first tempo of the training pieces (the tempo samples are written at).
        pieces: training pieces that had at least one melody note.
        events: training events counted.
    """

    def __init__(self, order: int = 3, *, k: float = 0.1) -> None:
        if not isinstance(order, int) or not 1 <= order <= 8:
            msg = f"order={order!r}: expected an integer from 1 (unigram) to 8"
            raise ValidationError(msg, field="order", value=order)
        if not k > 0:
            msg = f"k={k!r}: expected a positive smoothing constant"
            raise ValidationError(msg, field="k", value=k)
        self.order = order
        self.k = float(k)
        self.tempo_bpm = 120.0
        self.pieces = 0
        self.events = 0
        # counts[n][context of length n][event]: n = 0 .. order-1
        self._counts: list[dict[tuple[Event, ...], Counter[Event]]] = [{} for _ in range(order)]

    def fit(self, midis: Sequence[bytes]) -> MarkovBaseline:
        """Count the n-grams of every piece's top line (replacing earlier counts); returns ``self``.

        Raises:
            ValidationError: no piece has a pitched note.
        """
        self._counts = [{} for _ in range(self.order)]
        tempos: list[float] = []
        self.pieces = self.events = 0
        for midi in midis:
            events, tempo = melody_events(midi)
            if not events:
                continue
            self.pieces += 1
            self.events += len(events)
            tempos.append(tempo)
            padded = [_START] * (self.order - 1) + events
            for i in range(self.order - 1, len(padded)):
                event = padded[i]
                for n in range(self.order):
                    context = tuple(padded[i - n : i])
                    self._counts[n].setdefault(context, Counter())[event] += 1
        if not self.pieces:
            msg = f"midis: none of {len(midis)} pieces has a pitched note; expected at least one melody to learn"
            raise ValidationError(msg, field="midis", value=len(midis))
        self.tempo_bpm = float(np.median(tempos))
        return self

    def _context(self, history: Sequence[Event]) -> Counter[Event]:
        """The counts of the longest context of ``history`` seen in training."""
        if not self.pieces:
            msg = "MarkovBaseline: not fitted; expected fit(midis) before sample() or nll()"
            raise ValidationError(msg, field="model", value=None)
        for n in range(self.order - 1, 0, -1):
            counts = self._counts[n].get(tuple(history[len(history) - n :]))
            if counts:
                return counts
        return self._counts[0][()]

    def nll(self, midi: bytes) -> float:
        """Mean negative log-likelihood (nats per melody event) of ``midi``'s top line.

        Raises:
            ValidationError: the piece has no pitched note, or the model is not fitted.
        """
        events, _ = melody_events(midi)
        if not events:
            msg = "midi: no pitched note; expected a melody to score"
            raise ValidationError(msg, field="midi", value=len(midi))
        padded = [_START] * (self.order - 1) + events
        total = 0.0
        for i in range(self.order - 1, len(padded)):
            counts = self._context(padded[:i])
            p = (counts[padded[i]] + self.k) / (counts.total() + self.k * _VOCABULARY)
            total -= math.log(p)
        return total / len(events)

    def sample(
        self,
        seed: int,
        *,
        seconds: float = 30.0,
        program: int = 0,
        tempo_bpm: float | None = None,
    ) -> bytes:
        """A melody of about ``seconds`` drawn from the model, as MIDI bytes (one track, ``program``)."""
        _check_seconds(seconds)
        _check_program(program)
        tempo = tempo_bpm or self.tempo_bpm
        rng = np.random.default_rng(seed)
        end = round(seconds * tempo / 60 * TICKS_PER_QUARTER)
        history: list[Event] = [_START] * (self.order - 1)
        notes: list[tuple[int, int, int, int]] = []
        now = 0
        while now < end:
            counts = self._context(history)
            choices = sorted(counts)  # a fixed order, so the seed alone decides the draw
            weights = np.array([counts[c] for c in choices], dtype=np.float64)
            event = choices[int(rng.choice(len(choices), p=weights / weights.sum()))]
            pitch, duration_class = event
            duration = min(round(DURATION_CLASSES[duration_class] * TICKS_PER_QUARTER), end - now)
            notes.append((now, duration, pitch, VELOCITY))
            now += duration
            history.append(event)
        title = f"Markov baseline (order {self.order}), seed {seed}"
        return write_midi([(program, notes)], tempo_bpm=tempo, title=title)

    def to_dict(self) -> dict[str, Any]:
        """What this model is: its configuration and the size of what it learnt."""
        return {
            "kind": "markov",
            "order": self.order,
            "k": self.k,
            "tempo_bpm": self.tempo_bpm,
            "pieces": self.pieces,
            "events": self.events,
            "contexts": sum(len(c) for c in self._counts),
            "duration_classes": list(DURATION_CLASSES),
        }
