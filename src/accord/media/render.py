"""MIDI to audio: FluidSynth with a General MIDI soundfont, or a small numpy synthesizer.

:func:`render` writes a 16-bit PCM WAV file. It uses, in this order:

1. **FluidSynth** (the ``fluidsynth`` command, run with no audio or MIDI driver and no
   shell: ``fluidsynth -niq -F out.wav -T wav -O s16 -r 44100 -g 0.7 font.sf2 in.mid``)
   with the first soundfont found among :data:`SOUNDFONT_ENV` (``ACCORD_SOUNDFONT``) and
   :data:`SOUNDFONT_CANDIDATES`; stereo, with the soundfont's reverb and chorus.
2. **The simple synthesizer** (:func:`synthesize`) where FluidSynth or a soundfont is
   missing, or FluidSynth fails. It is a few lines of numpy, documented below, and the
   result says it was used and why (``synthesizer="simple"``, ``note``).

The simple synthesizer, in full:

* each GM program family (program // 8: piano, chromatic percussion, organ, guitar,
  bass, strings, ensemble, brass, reed, pipe, synth lead, pad, effects, ethnic,
  percussive, sound effects) has a :class:`Voice`: the amplitudes of its first
  harmonics (played from a one-period wavetable, with the harmonics above Nyquist left
  out) and an envelope: linear attack, exponential decay towards a sustain level,
  exponential release after the note-off;
* a note's loudness is ``(velocity / 127) ** 1.6`` (perceived loudness grows faster
  than linearly with velocity in GM instruments);
* drum notes (channel 10) are noise bursts (kick drums a falling sine) with a decay
  chosen by drum kind;
* all notes are summed (polyphony mix) and the sum is normalised to a -1 dBFS peak;
  mono, no reverb, no pitch bends, no sustain pedal, no controllers.

It sounds like a 1990s sound card, but it is always available and deterministic.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import subprocess
import tempfile
import time
import wave
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from accord.errors import AccordError, ValidationError
from accord.media.features import DRUM_PROGRAM, Performance, read_performance

FLUIDSYNTH = "fluidsynth"
SIMPLE = "simple"

SynthesizerChoice = Literal["auto", "fluidsynth", "simple"]

SOUNDFONT_ENV = "ACCORD_SOUNDFONT"
"""Environment variable naming a soundfont (.sf2/.sf3) to use before the candidates below."""

SOUNDFONT_CANDIDATES: tuple[Path, ...] = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),  # Debian fluid-soundfont-gm (MIT), 148 MB
    Path("/usr/share/sounds/sf2/default-GM.sf2"),  # Debian alternatives link
    Path("/usr/share/sounds/sf2/MuseScore_General.sf2"),  # musescore-general-soundfont (MIT)
    Path("/usr/share/sounds/sf3/MuseScore_General.sf3"),
    Path("/usr/share/sounds/sf3/default-GM.sf3"),
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),  # timgm6mb-soundfont (GPL): small, for quick tests
    Path("/usr/share/soundfonts/FluidR3_GM.sf2"),  # Fedora, Arch
    Path("/usr/share/soundfonts/default.sf2"),
    Path("/opt/homebrew/share/soundfonts/default.sf2"),  # macOS Homebrew
    Path("/usr/local/share/soundfonts/default.sf2"),
)
"""Where soundfonts are looked for, in order, after :data:`SOUNDFONT_ENV`."""

FLUIDSYNTH_GAIN = 0.7  # FluidSynth's default 0.2 is quiet; 0.7 leaves headroom for dense chords
PEAK_DBFS = -1.0  # the simple synthesizer's normalised peak
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8_000, 192_000


class RenderError(AccordError):
    """Audio that could not be rendered: the synthesizer asked for is missing or failed."""

    code = "render"


@dataclass(frozen=True)
class RenderResult:
    """One rendered audio file, and how it was made.

    Attributes:
        path: the WAV file written (16-bit PCM).
        seconds_of_audio: its duration (FluidSynth adds the reverb and release tail).
        render_seconds: wall-clock seconds the rendering took.
        synthesizer: ``"fluidsynth"`` or ``"simple"``.
        soundfont: the soundfont FluidSynth used, ``""`` for the simple synthesizer.
        sample_rate: samples per second.
        channels: 2 from FluidSynth, 1 from the simple synthesizer.
        note: why the simple synthesizer was used (``""`` when FluidSynth was).
    """

    path: Path
    seconds_of_audio: float
    render_seconds: float
    synthesizer: str
    soundfont: str
    sample_rate: int = 44_100
    channels: int = 2
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "seconds_of_audio": round(self.seconds_of_audio, 4),
            "render_seconds": round(self.render_seconds, 4),
            "synthesizer": self.synthesizer,
            "soundfont": self.soundfont,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "note": self.note,
        }


def find_soundfont() -> Path | None:
    """The first soundfont that exists: ``$ACCORD_SOUNDFONT``, then :data:`SOUNDFONT_CANDIDATES`."""
    configured = os.environ.get(SOUNDFONT_ENV, "").strip()
    candidates = ((Path(configured).expanduser(),) if configured else ()) + SOUNDFONT_CANDIDATES
    return next((p for p in candidates if p.is_file()), None)


def _fluidsynth_binary() -> str | None:
    return shutil.which("fluidsynth")


def _choose(soundfont: Path | None) -> tuple[str, str, Path | None, str | None]:
    """``(synthesizer, why, soundfont, binary)`` for the given (or found) soundfont."""
    binary = _fluidsynth_binary()
    if binary is None:
        why = "FluidSynth is not installed (no `fluidsynth` on PATH; Debian: apt install fluidsynth)"
        return SIMPLE, why, None, None
    if soundfont is not None:
        if not soundfont.is_file():
            return SIMPLE, f"soundfont {soundfont} does not exist", None, binary
        return FLUIDSYNTH, f"FluidSynth ({binary}) with {soundfont}", soundfont, binary
    found = find_soundfont()
    if found is None:
        looked = ", ".join(str(p) for p in SOUNDFONT_CANDIDATES[:3])
        why = f"no soundfont found (${SOUNDFONT_ENV} unset or missing; looked in {looked} ...)"
        return SIMPLE, why, None, binary
    return FLUIDSYNTH, f"FluidSynth ({binary}) with {found}", found, binary


def available_synthesizer(soundfont: Path | None = None) -> tuple[str, str]:
    """``(name, why)``: the synthesizer :func:`render` would use now, and the reason.

    ``("fluidsynth", "FluidSynth (/usr/bin/fluidsynth) with /usr/share/sounds/sf2/FluidR3_GM.sf2")``
    or ``("simple", "FluidSynth is not installed ...")``.
    """
    name, why, _, _ = _choose(soundfont)
    return name, why


def render(
    midi: bytes,
    out: Path,
    *,
    soundfont: Path | None = None,
    sample_rate: int = 44_100,
    synthesizer: SynthesizerChoice = "auto",
) -> RenderResult:
    """Render ``midi`` (Standard MIDI File bytes) to a 16-bit PCM WAV file at ``out``.

    Args:
        soundfont: the soundfont for FluidSynth; ``None`` looks for one (:func:`find_soundfont`).
            A path that does not exist makes ``"auto"`` fall back to the simple synthesizer.
        sample_rate: samples per second of the WAV file.
        synthesizer: ``"auto"`` (FluidSynth where it can, else the simple synthesizer, saying
            why in ``note``), ``"fluidsynth"`` (fail rather than fall back) or ``"simple"``.

    Raises:
        ValidationError: the bytes are not a MIDI file, or a bad ``sample_rate``/``synthesizer``.
        RenderError: ``synthesizer="fluidsynth"`` and FluidSynth is missing or fails.
    """
    if synthesizer not in ("auto", FLUIDSYNTH, SIMPLE):
        msg = f"synthesizer={synthesizer!r}: expected 'auto', 'fluidsynth' or 'simple'"
        raise ValidationError(msg, field="synthesizer", value=synthesizer)
    if not isinstance(sample_rate, int) or not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        msg = f"sample_rate={sample_rate!r}: expected an integer from {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE}"
        raise ValidationError(msg, field="sample_rate", value=sample_rate)
    started = time.perf_counter()
    performance = read_performance(midi)  # validates the bytes before any synthesizer sees them
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)

    note = ""
    if synthesizer == SIMPLE:
        note = "the simple synthesizer was asked for"
    else:
        name, why, font, binary = _choose(soundfont)
        if name == FLUIDSYNTH and font is not None and binary is not None:
            try:
                _run_fluidsynth(binary, midi, out, font, sample_rate, performance.seconds)
            except RenderError as error:
                if synthesizer == FLUIDSYNTH:
                    raise
                note = f"FluidSynth failed ({error}); used the simple synthesizer"
            else:
                seconds, channels = _wav_info(out)
                return RenderResult(
                    path=out,
                    seconds_of_audio=seconds,
                    render_seconds=time.perf_counter() - started,
                    synthesizer=FLUIDSYNTH,
                    soundfont=str(font),
                    sample_rate=sample_rate,
                    channels=channels,
                )
        else:
            if synthesizer == FLUIDSYNTH:
                msg = f"synthesizer='fluidsynth': cannot use FluidSynth: {why}"
                raise RenderError(msg)
            note = f"{why}; used the simple synthesizer"

    samples = synthesize(performance, sample_rate)
    _write_wav(out, samples, sample_rate)
    return RenderResult(
        path=out,
        seconds_of_audio=len(samples) / sample_rate,
        render_seconds=time.perf_counter() - started,
        synthesizer=SIMPLE,
        soundfont="",
        sample_rate=sample_rate,
        channels=1,
        note=note,
    )


def _run_fluidsynth(binary: str, midi: bytes, out: Path, font: Path, sample_rate: int, seconds: float) -> None:
    """Run the ``fluidsynth`` command into a temporary file beside ``out``, then move it into place."""
    with tempfile.TemporaryDirectory(prefix="accord-render-") as tmp:
        midi_path = Path(tmp) / "in.mid"
        midi_path.write_bytes(midi)
        fd, partial = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=".wav")
        os.close(fd)
        command = [
            binary,
            "-n",  # no MIDI input driver
            "-i",  # no interactive shell
            "-q",  # no banner
            "-F", partial,  # fast render to a file: no audio driver
            "-T", "wav",
            "-O", "s16",
            "-r", str(sample_rate),
            "-g", str(FLUIDSYNTH_GAIN),
            str(font),
            str(midi_path),
        ]  # fmt: skip
        try:
            completed = subprocess.run(
                command,
                capture_output=True,
                timeout=60 + 4 * seconds,  # FluidSynth renders ~60x faster than real time
                check=False,
                stdin=subprocess.DEVNULL,
            )
            stderr = completed.stderr.decode("utf-8", "replace").strip()
            if completed.returncode != 0:
                msg = f"fluidsynth exited with status {completed.returncode}: {stderr[-300:]}"
                raise RenderError(msg)
            if os.path.getsize(partial) <= 44:
                msg = f"fluidsynth wrote no audio: {stderr[-300:]}"
                raise RenderError(msg)
            os.replace(partial, out)
        except subprocess.TimeoutExpired as error:
            msg = f"fluidsynth took more than {error.timeout:.0f} s"
            raise RenderError(msg) from error
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)


def _wav_info(path: Path) -> tuple[float, int]:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / wav.getframerate(), wav.getnchannels()


def _write_wav(out: Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write mono float samples in [-1, 1] as 16-bit PCM, atomically."""
    pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2")
    fd, partial = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=".wav")
    os.close(fd)
    try:
        with wave.open(partial, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(sample_rate)
            wav.writeframes(pcm.tobytes())
        os.replace(partial, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)


def encode_flac(wav: Path, out: Path | None = None) -> Path | None:
    """Encode a WAV file as FLAC (lossless, ~half the size) beside it; ``None`` without soundfile."""
    try:
        import soundfile  # optional: libsndfile bindings
    except ImportError:  # pragma: no cover - soundfile is in the dev environment
        return None
    target = Path(out) if out is not None else Path(wav).with_suffix(".flac")
    data, rate = soundfile.read(str(wav), dtype="int16", always_2d=True)
    soundfile.write(str(target), data, rate, format="FLAC", subtype="PCM_16")
    return target


# --- The simple synthesizer -------------------------------------------------------------


@dataclass(frozen=True)
class Voice:
    """How one GM program family sounds in the simple synthesizer.

    Attributes:
        harmonics: amplitudes of harmonics 1, 2, 3 ... (normalised to sum 1 when played).
        attack: seconds of the linear rise to full level.
        decay: time constant (s) of the exponential fall from full level to ``sustain``.
        sustain: level held while the key is down (0: the note dies away, as a piano's does).
        release: time constant (s) of the exponential fall after the note-off.
    """

    harmonics: tuple[float, ...]
    attack: float
    decay: float
    sustain: float
    release: float


_PIANO = Voice((1.0, 0.6, 0.3, 0.2, 0.12, 0.08, 0.05), 0.004, 0.8, 0.05, 0.12)
_BELL = Voice((1.0, 0.0, 0.35, 0.0, 0.12, 0.0, 0.05), 0.002, 0.35, 0.0, 0.3)
_ORGAN = Voice((1.0, 0.8, 0.6, 0.4, 0.3, 0.2, 0.15, 0.1), 0.01, 0.1, 0.9, 0.08)
_PLUCK = Voice((1.0, 0.5, 0.35, 0.25, 0.15, 0.1), 0.003, 0.5, 0.0, 0.15)
_BASS = Voice((1.0, 0.7, 0.3, 0.15), 0.005, 0.4, 0.3, 0.1)
_STRINGS = Voice((1.0, 0.5, 0.33, 0.25, 0.2, 0.16, 0.14, 0.12), 0.08, 0.2, 0.85, 0.25)
_ENSEMBLE = Voice((1.0, 0.5, 0.33, 0.25, 0.2, 0.16), 0.12, 0.3, 0.85, 0.3)
_BRASS = Voice((1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.15), 0.04, 0.15, 0.8, 0.12)
_REED = Voice((1.0, 0.1, 0.5, 0.05, 0.3, 0.05, 0.2), 0.03, 0.2, 0.85, 0.1)
_PIPE = Voice((1.0, 0.2, 0.05), 0.05, 0.2, 0.9, 0.12)
_LEAD = Voice((1.0, 0.0, 1 / 3, 0.0, 1 / 5, 0.0, 1 / 7), 0.01, 0.2, 0.8, 0.1)
_PAD = Voice((1.0, 0.4, 0.2, 0.1), 0.3, 0.5, 0.8, 0.6)

VOICES: tuple[Voice, ...] = (
    _PIANO,  # 0-7 piano
    _BELL,  # 8-15 chromatic percussion
    _ORGAN,  # 16-23 organ
    _PLUCK,  # 24-31 guitar
    _BASS,  # 32-39 bass
    _STRINGS,  # 40-47 strings
    _ENSEMBLE,  # 48-55 ensemble
    _BRASS,  # 56-63 brass
    _REED,  # 64-71 reed
    _PIPE,  # 72-79 pipe
    _LEAD,  # 80-87 synth lead
    _PAD,  # 88-95 synth pad
    _PAD,  # 96-103 synth effects
    _PLUCK,  # 104-111 ethnic
    _BELL,  # 112-119 percussive
    _PAD,  # 120-127 sound effects
)
"""The voice of each GM program family, indexed by ``program // 8``."""

_TABLE_SIZE = 4096
_MAX_TAIL_S = 2.0  # a release is cut after this long (5 time constants at most)
_KICKS = frozenset({35, 36})
_SHORT_DRUMS = frozenset({42, 44, 37, 39, 75, 76, 77})  # closed hi-hats, stick, clap, claves, woodblocks


@lru_cache(maxsize=256)
def _wavetable(family: int, harmonics: int) -> np.ndarray:
    """One period of the family's waveform using its first ``harmonics`` harmonics, peak 1."""
    amplitudes = np.asarray(VOICES[family].harmonics[:harmonics], dtype=np.float64)
    phase = np.arange(_TABLE_SIZE) / _TABLE_SIZE
    k = np.arange(1, len(amplitudes) + 1)[:, None]
    table = (amplitudes[:, None] * np.sin(2 * np.pi * k * phase)).sum(axis=0)
    peak = np.abs(table).max()
    return np.append(table / peak, table[0] / peak)  # one guard sample for interpolation


def _envelope(voice: Voice, held: int, total: int, sample_rate: int) -> np.ndarray:
    """Attack-decay-sustain while held (``held`` samples), then release, ``total`` samples long."""
    t = np.arange(total) / sample_rate
    attack = max(voice.attack, 1.0 / sample_rate)
    level = np.where(
        t < attack,
        t / attack,
        voice.sustain + (1.0 - voice.sustain) * np.exp(-(t - attack) / voice.decay),
    )
    if held < total:
        at_release = level[held - 1] if held > 0 else 0.0
        level[held:] = at_release * np.exp(-(t[held:] - t[held]) / voice.release)
    return level


def _pitched_note(pitch: int, program: int, seconds: float, sample_rate: int) -> np.ndarray:
    voice = VOICES[program // 8]
    frequency = 440.0 * 2.0 ** ((pitch - 69) / 12)
    harmonics = max(1, min(len(voice.harmonics), int((sample_rate / 2) // frequency)))
    table = _wavetable(program // 8, harmonics)
    held = max(1, round(seconds * sample_rate))
    total = held + round(min(_MAX_TAIL_S, 5 * voice.release) * sample_rate)
    position = (np.arange(total) * (frequency * _TABLE_SIZE / sample_rate)) % _TABLE_SIZE
    index = position.astype(np.int64)
    fraction = position - index
    wave_ = table[index] * (1.0 - fraction) + table[index + 1] * fraction
    return wave_ * _envelope(voice, held, total, sample_rate)


def _drum_note(pitch: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    if pitch in _KICKS:
        total = round(0.3 * sample_rate)
        t = np.arange(total) / sample_rate
        frequency = 50.0 + 100.0 * np.exp(-t / 0.03)  # a falling sine: the kick's thump
        phase = 2 * np.pi * np.cumsum(frequency) / sample_rate
        return np.sin(phase) * np.exp(-t / 0.12)
    decay = 0.03 if pitch in _SHORT_DRUMS else 0.12 if pitch < 49 else 0.35  # toms, snares < cymbals
    total = round(min(_MAX_TAIL_S, 6 * decay) * sample_rate)
    t = np.arange(total) / sample_rate
    return 0.5 * rng.uniform(-1.0, 1.0, total) * np.exp(-t / decay)


def synthesize(performance: Performance | bytes, sample_rate: int = 44_100) -> np.ndarray:
    """The simple synthesizer: mono float samples of the whole piece, peak-normalised to -1 dBFS.

    Deterministic: the drums' noise comes from a fixed seed. See the module docstring.
    """
    perf = performance if isinstance(performance, Performance) else read_performance(performance)
    rng = np.random.default_rng(0)  # fixed: the same MIDI always gives the same samples
    capacity = math.ceil((perf.seconds + _MAX_TAIL_S) * sample_rate) + 1  # no sound outlasts its tail
    mix = np.zeros(capacity, dtype=np.float64)
    used = max(1, math.ceil(perf.seconds * sample_rate))
    for onset, duration, pitch, velocity, program in perf.notes:
        gain = (max(0.0, min(velocity, 127.0)) / 127.0) ** 1.6
        if int(program) == DRUM_PROGRAM:
            sound = _drum_note(int(pitch), sample_rate, rng)
        else:
            sound = _pitched_note(int(pitch), int(program), float(duration), sample_rate)
        start = round(onset * sample_rate)
        stop = min(capacity, start + len(sound))
        mix[start:stop] += gain * sound[: stop - start]
        used = max(used, stop)
    mix = mix[:used]
    peak = float(np.abs(mix).max())
    if peak > 0:
        mix *= 10 ** (PEAK_DBFS / 20) / peak
    return mix
