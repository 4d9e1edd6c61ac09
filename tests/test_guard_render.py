"""The guard's in-process MIDI render (accord.media.fluid) sounds like the `fluidsynth` command's."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import mido
import numpy as np
import pytest

from accord.attribution.guard import audio
from accord.attribution.guard.audio import AudioSource, render_fingerprint
from accord.attribution.guard.policy import DEFAULT_AUDIO_THRESHOLD
from accord.media import fluid
from accord.media.features import read_performance
from accord.media.fingerprint import SAMPLE_RATE, Fingerprint, FingerprintIndex, fingerprint, fingerprint_file
from accord.media.render import find_soundfont, render
from tests.test_guard import tune

TICKS = 480
IN_PROCESS, WHY = fluid.available()
needs_fluid = pytest.mark.skipif(not IN_PROCESS, reason=f"in-process FluidSynth unavailable: {WHY}")
needs_command = pytest.mark.skipif(
    shutil.which("fluidsynth") is None or find_soundfont() is None,
    reason="the fluidsynth command or a soundfont is missing: nothing to compare the in-process render with",
)


def band(seed: int, bars: int = 12, program: int = 0, bpm: float = 120.0) -> bytes:
    """A three-track MIDI file at ``bpm``: a melody (``program``), a bass line (program 33) and a drum beat."""
    pitches, beats = tune(seed, bars=bars)
    mid = mido.MidiFile(ticks_per_beat=TICKS)
    melody, bass, drums = mido.MidiTrack(), mido.MidiTrack(), mido.MidiTrack()
    mid.tracks.extend([melody, bass, drums])
    melody.append(mido.MetaMessage("set_tempo", tempo=round(60_000_000 / bpm), time=0))
    melody.append(mido.Message("program_change", program=program, channel=0, time=0))
    for pitch, length in zip(pitches, beats, strict=True):
        melody.append(mido.Message("note_on", note=pitch, velocity=90, channel=0, time=0))
        melody.append(mido.Message("note_off", note=pitch, velocity=0, channel=0, time=round(length * TICKS)))
    bass.append(mido.Message("program_change", program=33, channel=1, time=0))
    rng = np.random.default_rng(seed)
    for half in range(bars * 2):  # minims, each released a little early
        note = 38 + int(rng.choice([0, 5, 7, 9]))
        bass.append(mido.Message("note_on", note=note, velocity=80, channel=1, time=0 if half == 0 else 10))
        bass.append(mido.Message("note_off", note=note, velocity=0, channel=1, time=2 * TICKS - 10))
    for beat in range(bars * 4):
        note = 36 if beat % 2 == 0 else 38
        drums.append(mido.Message("note_on", note=note, velocity=100, channel=9, time=0))
        drums.append(mido.Message("note_off", note=note, velocity=0, channel=9, time=TICKS))
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def command_fingerprint(midi: bytes, tmp_path: Path, name: str) -> Fingerprint:
    """The fingerprint of the ``fluidsynth`` command's 8 kHz render of ``midi``."""
    out = tmp_path / f"{name}.wav"
    render(midi, out, sample_rate=SAMPLE_RATE, synthesizer="fluidsynth")
    return fingerprint_file(out)


@needs_fluid
@needs_command
def test_the_in_process_render_matches_the_command_line_render_as_a_copy(tmp_path: Path) -> None:
    piece, other = band(3), band(11, program=40, bpm=97.0)
    catalog = FingerprintIndex.build(
        [command_fingerprint(piece, tmp_path, "piece"), command_fingerprint(other, tmp_path, "other")]
    )
    query = render_fingerprint(piece)
    best = catalog.match(query)
    assert best[0].clip == 0 and abs(best[0].offset_seconds) < 0.1
    strangers = next((m.votes for m in best if m.clip == 1), 0)
    # Measured: 500+ of ~1,000 landmarks agree; the unrelated piece gets a handful.
    assert best[0].votes > 5 * DEFAULT_AUDIO_THRESHOLD
    assert strangers < DEFAULT_AUDIO_THRESHOLD and best[0].votes > 10 * max(strangers, 1)


@needs_fluid
def test_a_render_does_not_depend_on_the_piece_rendered_before_it() -> None:
    piece, other = read_performance(band(5)), read_performance(band(8, program=56))
    first = fluid.render_performance(piece, SAMPLE_RATE)
    fluid.render_performance(other, SAMPLE_RATE)
    again = fluid.render_performance(piece, SAMPLE_RATE)
    assert len(first) == len(again) == int(np.ceil(piece.seconds * SAMPLE_RATE))
    assert np.abs(first).max() > 0.01  # it is not silence
    # the difference is 40 dB under the piece (RMS): effects and dither restart per piece, and every
    # sample the piece plays was sounded once before its first render (measured here: -50 dB with that
    # warm-up, -37.5 dB without it, the first use of a sample sounding a little different)
    rms = float(np.sqrt(np.mean(first**2)))
    assert float(np.sqrt(np.mean((first - again) ** 2))) < 0.01 * rms
    a, b = fingerprint(first, SAMPLE_RATE), fingerprint(again, SAMPLE_RATE)
    same = set(zip(a.hashes.tolist(), a.times.tolist(), strict=True)) & set(
        zip(b.hashes.tolist(), b.times.tolist(), strict=True)
    )
    assert len(same) >= 0.95 * max(len(a), len(b))  # LSB-level differences move a few near-tie peaks at most


@needs_fluid
def test_the_render_is_cut_where_asked_and_notes_after_the_cut_are_left_out() -> None:
    perf = read_performance(band(2, bars=8))
    samples = fluid.render_performance(perf, SAMPLE_RATE, seconds=4.0)
    assert len(samples) == 4 * SAMPLE_RATE and np.abs(samples).max() > 0.01


def test_cached_renders_name_the_renderer_so_command_and_in_process_fingerprints_never_mix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    midi = AudioSource("ISRC1", "t", "ab" * 32, "midi render")
    wav = AudioSource("ISRC1", "t", "cd" * 32, "audio")
    inproc = audio._cache_path(tmp_path, midi, audio.RENDER_IN_PROCESS)
    command = audio._cache_path(tmp_path, midi, audio.RENDER_COMMAND)
    assert inproc != command and audio.RENDER_IN_PROCESS in inproc.name and audio.RENDER_COMMAND in command.name
    assert audio._cache_path(tmp_path, wav, audio.RENDER_IN_PROCESS) == audio._cache_path(tmp_path, wav)
    monkeypatch.setattr(fluid, "available", lambda soundfont=None: (False, "switched off in the test"))
    assert audio.render_tag() == audio.RENDER_COMMAND
    assert audio._cache_path(tmp_path, midi) == command


def test_without_pyfluidsynth_the_fingerprint_falls_back_to_the_command_or_simple_synthesizer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fluid, "available", lambda soundfont=None: (False, "switched off in the test"))
    calls: list[int] = []
    monkeypatch.setattr(fluid, "render_performance", lambda *a, **k: calls.append(1))
    fp = render_fingerprint(band(4, bars=4))
    assert calls == [] and len(fp) > 20


def test_a_missing_soundfont_is_reported_not_rendered_silently(tmp_path: Path) -> None:
    perf = read_performance(band(1, bars=1))
    with pytest.raises(fluid.FluidUnavailable, match="no soundfont"):
        fluid.render_performance(perf, SAMPLE_RATE, soundfont=tmp_path / "missing.sf2")
    ok, why = fluid.available(tmp_path / "missing.sf2")
    assert not ok and "soundfont" in why
