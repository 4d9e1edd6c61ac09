"""In-process FluidSynth: render a parsed performance without starting the ``fluidsynth`` command.

The command line (:func:`accord.media.render.render`) reloads its soundfont on every call
(about a second for the 148 MB FluidR3_GM), which dominates when the replication guard
fingerprints a whole catalog. Here the soundfont is loaded **once per process** into a
pyfluidsynth ``Synth`` (cached by soundfont path and sample rate) and each piece is played
by sending its notes as events:

* each track of the :class:`~accord.media.features.Performance` gets its own MIDI channel
  with a program change to its GM program; drum tracks share channel 10 (index 9), which
  FluidSynth plays from the percussion bank;
* note-ons and note-offs are sent at their sample position (offs before ons at the same
  sample, so a re-struck key sounds again), and ``Synth.get_samples`` renders the audio
  between events;
* the same settings as the command line: gain :data:`~accord.media.render.FLUIDSYNTH_GAIN`,
  the soundfont's reverb and chorus on; the stereo output is mixed to mono floats in −1..1.

Before each piece the synthesizer is brought back to one state (:func:`_reset`: voices,
programs, controllers, reverb and chorus, dither position), so a render barely depends on the
piece before it: two renders of one piece with another in between differed by less than
−40 dBFS here and shared 99.7 % of their landmarks. Only notes and programs are played (no pitch
bends, controllers or sustain pedal), which is what the guard's fingerprints need.
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from accord.media.features import DRUM_PROGRAM, Performance
from accord.media.render import FLUIDSYNTH_GAIN, RenderError, find_soundfont

DRUM_CHANNEL = 9
_CHANNELS = 256  # pyfluidsynth's Synth has 256 MIDI channels; past 240 pitched tracks they are shared
FLUSH_SECONDS = 2.0  # silence after a reset: the soundfont's reverb tail has died away by then
_BLOCK = 64  # FluidSynth renders in blocks of this many samples
_WARM_CHUNK = 64  # notes sounded at once when warming (FluidSynth's default polyphony is 256)
DITHER_PERIOD = 48_000  # samples in FluidSynth's dither table (DITHER_SIZE; a multiple of its 64-sample block)


class FluidUnavailable(RenderError):
    """pyfluidsynth, the FluidSynth library or a soundfont is missing, or the soundfont does not load."""


@dataclass
class _Loaded:
    """A synthesizer with its soundfont loaded, owned by the process that made it."""

    synth: Any
    font_id: int
    pid: int
    lock: threading.Lock
    set_sample_rate: Any  # libfluidsynth's fluid_synth_set_sample_rate, None where the library lacks it
    pulled: int = 0  # samples rendered since the synthesizer was made
    warmed: set[tuple[int, int, int]] = field(default_factory=set)  # (program, key, velocity) played already


_SYNTHS: dict[tuple[str, int], _Loaded] = {}
_SYNTHS_LOCK = threading.Lock()


@functools.cache
def _import() -> tuple[Any, str]:
    """``(pyfluidsynth, "")``, or ``(None, why)`` when it cannot be imported; tried once per process.

    A failed import is not cached by Python, and pyfluidsynth looks for its library with
    ``ctypes.util.find_library`` (``ldconfig`` and compiler subprocesses): 0.1-0.5 s per try, which a
    generation paid twice on a machine without libfluidsynth.
    """
    try:
        import fluidsynth  # pyfluidsynth: ctypes bindings to libfluidsynth
    except (ImportError, OSError) as error:
        return None, str(error)
    return fluidsynth, ""


def _module() -> Any:
    """The ``fluidsynth`` (pyfluidsynth) module, or :class:`FluidUnavailable`."""
    fluidsynth, why = _import()
    if fluidsynth is None:
        msg = f"pyfluidsynth cannot be used ({why}); pip install pyfluidsynth and apt install libfluidsynth3"
        raise FluidUnavailable(msg)
    if not hasattr(fluidsynth, "Synth"):
        msg = "module fluidsynth is not pyfluidsynth (no Synth class)"
        raise FluidUnavailable(msg)
    return fluidsynth


def available(soundfont: Path | None = None) -> tuple[bool, str]:
    """``(True, soundfont path)`` when in-process rendering can run, else ``(False, why)``."""
    try:
        _module()
    except FluidUnavailable as error:
        return False, str(error)
    font = _soundfont(soundfont)
    if font is None:
        return False, "no soundfont found (see accord.media.render.find_soundfont)"
    return True, str(font)


def _soundfont(soundfont: Path | None) -> Path | None:
    if soundfont is not None:
        return soundfont if soundfont.is_file() else None
    return find_soundfont()


def _load(font: Path, sample_rate: int) -> _Loaded:
    """The cached synthesizer for ``(font, sample_rate)`` in this process, loading it on first use."""
    key = (str(font.resolve()), sample_rate)
    with _SYNTHS_LOCK:
        loaded = _SYNTHS.get(key)
        if loaded is not None and loaded.pid == os.getpid():
            return loaded
        fluidsynth = _module()
        synth = fluidsynth.Synth(gain=FLUIDSYNTH_GAIN, samplerate=sample_rate)
        font_id = synth.sfload(str(font))
        if font_id < 0:
            synth.delete()
            msg = f"soundfont={font}: FluidSynth could not load it"
            raise FluidUnavailable(msg)
        loaded = _Loaded(synth, int(font_id), os.getpid(), threading.Lock(), _set_sample_rate(fluidsynth))
        _SYNTHS[key] = loaded  # a forked child makes its own: the pid differs
        return loaded


def _set_sample_rate(fluidsynth: Any) -> Any:
    """``fluid_synth_set_sample_rate(synth, float)`` from the library pyfluidsynth loaded, if it has it."""
    library = getattr(fluidsynth, "_fl", None)
    function = getattr(library, "fluid_synth_set_sample_rate", None)
    if function is None:
        return None
    function.argtypes = [ctypes.c_void_p, ctypes.c_float]
    function.restype = None
    return function


def _channels(perf: Performance) -> list[int]:
    """The MIDI channel of each track: drums on :data:`DRUM_CHANNEL`, other tracks in turn on the rest.

    Channels 9, 25, 41 ... are skipped (FluidSynth may treat every 16th channel from 9 as drums).
    """
    free = [c for c in range(_CHANNELS) if c % 16 != DRUM_CHANNEL]
    out: list[int] = []
    for instrument in perf.instruments:
        pitched = sum(1 for c in out if c != DRUM_CHANNEL)
        out.append(DRUM_CHANNEL if instrument.program == DRUM_PROGRAM else free[pitched % len(free)])
    return out


def _events(perf: Performance, sample_rate: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """``(sample, kind, channel, pitch, velocity)`` rows by time (offs first), and each track's channel."""
    channel_of = np.asarray(_channels(perf), dtype=np.int64)
    n = len(perf.notes)
    if n == 0:
        return np.zeros((0, 5), dtype=np.int64), channel_of
    onset = np.rint(perf.notes[:, 0] * sample_rate).astype(np.int64)
    offset = np.maximum(np.rint((perf.notes[:, 0] + perf.notes[:, 1]) * sample_rate).astype(np.int64), onset + 1)
    channel = channel_of[perf.track]
    pitch = np.clip(perf.notes[:, 2], 0, 127).astype(np.int64)
    velocity = np.clip(np.rint(perf.notes[:, 3]), 1, 127).astype(np.int64)
    ons = np.stack([onset, np.ones(n, np.int64), channel, pitch, velocity], axis=1)
    offs = np.stack([offset, np.zeros(n, np.int64), channel, pitch, np.zeros(n, np.int64)], axis=1)
    rows = np.concatenate([ons, offs])
    rows = rows[rows[:, 0] < end]
    order = np.lexsort((rows[:, 3], rows[:, 2], rows[:, 1], rows[:, 0]))  # by sample, offs before ons
    return rows[order], channel_of


def _pull(loaded: _Loaded, frames: int) -> np.ndarray:
    """``frames`` samples of the synthesizer's output, mixed to mono float64 in −1..1."""
    if frames <= 0:
        return np.zeros(0, dtype=np.float64)
    loaded.pulled += frames
    stereo = np.asarray(loaded.synth.get_samples(frames), dtype=np.float64).reshape(-1, 2)
    return stereo.mean(axis=1) / 32768.0


def _warm(loaded: _Loaded, perf: Performance, sample_rate: int) -> None:
    """Play, once per synthesizer, every (program, key, velocity) of ``perf`` not played before, briefly and
    unheard (the reset that follows flushes it).

    FluidSynth renders a sample's first use a little differently from later ones (measured: the
    first render of a piece differed from the next by up to 0.078 of full scale, later renders by
    none); without this a piece's render would depend on what the process rendered before it.
    """
    if len(perf.notes) == 0:
        return
    programs = np.asarray([i.program for i in perf.instruments], dtype=np.int64)[perf.track]
    keys = np.clip(perf.notes[:, 2], 0, 127).astype(np.int64)
    velocities = np.clip(np.rint(perf.notes[:, 3]), 1, 127).astype(np.int64)
    played = zip(programs.tolist(), keys.tolist(), velocities.tolist(), strict=True)
    new = sorted({(int(g), int(k), int(v)) for g, k, v in played} - loaded.warmed)
    if not new:
        return
    synth = loaded.synth
    for start in range(0, len(new), _WARM_CHUNK):  # a chunk at a time: within FluidSynth's polyphony
        for program, key, velocity in new[start : start + _WARM_CHUNK]:
            channel = DRUM_CHANNEL if program == DRUM_PROGRAM else 0
            if channel == 0:
                synth.program_change(0, program)
            synth.noteon(channel, key, velocity)
        _pull(loaded, _BLOCK * math.ceil(0.05 * sample_rate / _BLOCK))
        synth.system_reset()
    loaded.warmed.update(new)


def _reset(loaded: _Loaded, sample_rate: int) -> None:
    """Bring the synthesizer to the same state before every piece, whatever it played before.

    1. ``system_reset``: every voice off, programs and controllers to their defaults.
    2. ``fluid_synth_set_sample_rate`` to the same rate: re-creates reverb and chorus, so their
       modulators restart from phase 0.
    3. Silence until the effects' tails have died (at least :data:`FLUSH_SECONDS`) and the
       samples pulled since the synthesizer was made are a whole number of
       :data:`DITHER_PERIOD`: FluidSynth's 16-bit output adds dither from a table it walks
       through sample by sample (this also lands on its 64-sample block boundary). The silence
       is padded *before* step 1, so every piece follows the same length of it after the reset.
    """
    flush = _BLOCK * math.ceil(FLUSH_SECONDS * sample_rate / _BLOCK)
    _pull(loaded, -(loaded.pulled + flush) % DITHER_PERIOD)
    loaded.synth.system_reset()
    if loaded.set_sample_rate is not None:
        loaded.set_sample_rate(loaded.synth.synth, float(sample_rate))
    _pull(loaded, flush)


def render_performance(
    perf: Performance, sample_rate: int, *, seconds: float | None = None, soundfont: Path | None = None
) -> np.ndarray:
    """Mono float samples of ``perf`` played by FluidSynth in this process.

    Args:
        sample_rate: samples per second.
        seconds: how much to render (default ``perf.seconds``); notes starting later are left out.
        soundfont: the soundfont; ``None`` looks for one (:func:`accord.media.render.find_soundfont`).

    Raises:
        FluidUnavailable: pyfluidsynth, its library or a soundfont is missing, or the soundfont fails to load.
    """
    font = _soundfont(soundfont)
    if font is None:
        msg = f"soundfont={soundfont}: no soundfont found to render with"
        raise FluidUnavailable(msg)
    loaded = _load(font, sample_rate)
    end = max(1, int(np.ceil((perf.seconds if seconds is None else seconds) * sample_rate)))
    events, channel_of = _events(perf, sample_rate, end)
    out = np.empty(end, dtype=np.float64)
    with loaded.lock:
        synth = loaded.synth
        _warm(loaded, perf, sample_rate)
        _reset(loaded, sample_rate)
        for track, instrument in enumerate(perf.instruments):
            channel = int(channel_of[track])
            synth.program_change(channel, 0 if instrument.program == DRUM_PROGRAM else instrument.program)
        cursor = 0
        for sample, kind, channel, pitch, velocity in events.tolist():
            if sample > cursor:
                out[cursor:sample] = _pull(loaded, sample - cursor)
                cursor = sample
            if kind:
                synth.noteon(channel, pitch, velocity)
            else:
                synth.noteoff(channel, pitch)
        out[cursor:end] = _pull(loaded, end - cursor)
        synth.system_reset()
    return out
