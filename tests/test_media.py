"""Media: rendering MIDI to audio, piano rolls, musical statistics and the model's baselines."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import matplotlib.image
import mido
import numpy as np
import pytest

from accord.errors import ValidationError
from accord.media import compare, features, render
from accord.media.pianoroll import note_name, piano_roll
from accord.model.baselines import MarkovBaseline, melody_events, random_piece

C_MAJOR_SCALE = (60, 62, 64, 65, 67, 69, 71, 72)
MOTIF = (60, 64, 67, 65)


def midi_of(*parts: tuple[int, list[tuple[float, float, int]]], bpm: int = 120, drums: bool = False) -> bytes:
    """A type-1 MIDI file; each part is ``(program, [(start_beat, beats, pitch)])``; the last on channel 10 if drums."""
    file = mido.MidiFile(type=1, ticks_per_beat=480)
    conductor = mido.MidiTrack()
    conductor.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))
    conductor.append(mido.MetaMessage("time_signature", numerator=4, denominator=4))
    file.tracks.append(conductor)
    for index, (program, notes) in enumerate(parts):
        channel = 9 if drums and index == len(parts) - 1 else index
        track = mido.MidiTrack()
        track.append(mido.Message("program_change", program=program, channel=channel))
        events = sorted(
            [(round((s + d) * 480), 0, p) for s, d, p in notes] + [(round(s * 480), 1, p) for s, _, p in notes]
        )
        now = 0
        for tick, on, pitch in events:
            kind = "note_on" if on else "note_off"
            track.append(mido.Message(kind, note=pitch, velocity=90 if on else 0, channel=channel, time=tick - now))
            now = tick
        file.tracks.append(track)
    buffer = io.BytesIO()
    file.save(file=buffer)
    return buffer.getvalue()


def line(pitches: tuple[int, ...] | list[int], beats: float = 1.0) -> list[tuple[float, float, int]]:
    return [(i * beats, beats, p) for i, p in enumerate(pitches)]


@pytest.fixture
def scale() -> bytes:
    """C major scale C4-C5 in quarter notes at 120 BPM: 8 notes in 4 seconds."""
    return midi_of((0, line(C_MAJOR_SCALE)))


@pytest.fixture(autouse=True)
def _no_configured_soundfont(monkeypatch):
    monkeypatch.delenv(render.SOUNDFONT_ENV, raising=False)


def read_wav(path: Path) -> tuple[np.ndarray, int, int]:
    """Samples in [-1, 1] (channels mixed), sample rate, sample width in bytes."""
    with wave.open(str(path), "rb") as wav:
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float64) / 32768
        samples = frames.reshape(-1, wav.getnchannels()).mean(axis=1)
        return samples, wav.getframerate(), wav.getsampwidth()


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples**2)))


# --- rendering ---------------------------------------------------------------------------

needs_fluidsynth = pytest.mark.skipif(
    render.available_synthesizer()[0] != "fluidsynth", reason=render.available_synthesizer()[1]
)


@needs_fluidsynth
def test_fluidsynth_renders_a_wav_as_long_as_the_midi_that_is_not_silent(tmp_path, scale):
    result = render.render(scale, tmp_path / "scale.wav")

    samples, rate, width = read_wav(result.path)
    assert result.synthesizer == "fluidsynth" and result.soundfont.endswith((".sf2", ".sf3"))
    assert result.note == "" and result.channels == 2
    assert (rate, width) == (44_100, 2)  # 16-bit PCM
    assert 4.0 <= result.seconds_of_audio <= 4.0 + 3.0  # the MIDI's 4 s plus the release and reverb tail
    assert len(samples) / rate == pytest.approx(result.seconds_of_audio)
    assert rms(samples[: 4 * rate]) > 0.01


def test_the_simple_synthesizer_gives_a_valid_wav_that_is_not_silent(tmp_path, scale):
    result = render.render(scale, tmp_path / "scale.wav", synthesizer="simple", sample_rate=22_050)

    samples, rate, width = read_wav(result.path)
    assert (result.synthesizer, result.soundfont, result.channels) == ("simple", "", 1)
    assert result.note
    assert (rate, width) == (22_050, 2)
    assert 4.0 <= result.seconds_of_audio <= 4.0 + 2.0  # plus the last note's release
    assert rms(samples) > 0.05
    assert np.abs(samples).max() == pytest.approx(10 ** (-1 / 20), abs=1e-3)  # normalised to -1 dBFS


def test_a_missing_soundfont_falls_back_to_the_simple_synthesizer_and_says_why(tmp_path, scale):
    missing = tmp_path / "no-such-font.sf2"

    result = render.render(scale, tmp_path / "scale.wav", soundfont=missing)

    assert result.synthesizer == "simple"
    assert str(missing) in result.note or "FluidSynth is not installed" in result.note
    assert render.available_synthesizer(missing)[0] == "simple"


def test_without_fluidsynth_auto_falls_back_but_asking_for_it_is_an_error(tmp_path, scale, monkeypatch):
    monkeypatch.setattr(render, "_fluidsynth_binary", lambda: None)

    result = render.render(scale, tmp_path / "a.wav")
    assert result.synthesizer == "simple" and "not installed" in result.note
    with pytest.raises(render.RenderError, match="fluidsynth"):
        render.render(scale, tmp_path / "b.wav", synthesizer="fluidsynth")


def test_the_simple_synthesizer_plays_every_program_family_and_drums_deterministically():
    families = [(program, line([48 + program % 36, 84], beats=0.5)) for program in range(0, 128, 8)]
    drums = (0, line([35, 38, 42, 49, 36], beats=0.25))
    midi = midi_of(*families, drums, drums=True)

    first, second = render.synthesize(midi, 16_000), render.synthesize(midi, 16_000)

    assert np.array_equal(first, second)
    assert np.isfinite(first).all() and rms(first) > 0.01


@pytest.mark.parametrize("program", [0, 40, 73])  # piano, violin, flute
def test_the_simple_synthesizer_plays_a4_at_440_hz(program):
    samples = render.synthesize(midi_of((program, [(0, 2, 69)])), 16_000)

    spectrum = np.abs(np.fft.rfft(samples[:16_000]))
    assert np.argmax(spectrum) == pytest.approx(440, abs=2)  # 1-second window: bins are 1 Hz apart


def test_bytes_that_are_not_midi_are_a_validation_error(tmp_path):
    with pytest.raises(ValidationError, match="midi"):
        render.render(b"not a midi file", tmp_path / "x.wav")
    with pytest.raises(ValidationError, match="sample_rate"):
        render.render(b"", tmp_path / "x.wav", sample_rate=100)


def test_a_wav_encodes_to_flac_losslessly(tmp_path, scale):
    result = render.render(scale, tmp_path / "scale.wav", synthesizer="simple")

    flac = render.encode_flac(result.path)

    assert flac is not None and flac.read_bytes()[:4] == b"fLaC"
    soundfile = pytest.importorskip("soundfile")
    decoded, _ = soundfile.read(str(flac), dtype="int16")
    with wave.open(str(result.path), "rb") as wav:
        original = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    assert np.array_equal(decoded, original)


# --- piano roll --------------------------------------------------------------------------


def test_a_piano_roll_is_a_1400_by_500_png(tmp_path):
    midi = midi_of((0, line(C_MAJOR_SCALE)), (40, line([48, 52, 55, 53], beats=2)), (0, line([36, 38], 1)), drums=True)

    path = piano_roll(midi, tmp_path / "roll.png", title="Scale over a bass line")

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = matplotlib.image.imread(path).shape
    assert (width, height) == (1400, 500)


def test_note_names_use_scientific_pitch_notation():
    assert [note_name(p) for p in (21, 60, 61, 108)] == ["A0", "C4", "C#4", "C8"]


# --- features ----------------------------------------------------------------------------


def test_a_c_major_scale_is_in_c_major_spans_an_octave_and_plays_two_notes_a_second(scale):
    key, correlation = features.key_estimate(scale)

    assert key == "C major" and correlation > 0.7
    assert features.pitch_range(scale) == features.PitchRange(12, 60, 72)
    assert features.note_density(scale) == pytest.approx(2.0)
    assert features.key_consistency(scale) == 1.0
    histogram = features.pitch_class_histogram(scale)
    assert histogram.sum() == pytest.approx(1.0) and histogram[0] == pytest.approx(2 / 8)


def test_notes_are_rows_of_onset_duration_pitch_velocity_program_in_seconds(scale):
    table = features.notes(scale)

    assert table.shape == (8, 5)
    assert table[1].tolist() == [0.5, 0.5, 62.0, 90.0, 0.0]


def test_an_a_minor_piece_is_in_a_minor():
    a_minor = midi_of((0, line([57, 60, 64, 57, 59, 60, 62, 64, 65, 64, 62, 60, 59, 56, 57, 57])))

    assert features.key_estimate(a_minor)[0] == "A minor"
    described = features.describe(a_minor)
    assert described["scale_degree_histogram"][0] == described["pitch_class_histogram"][9]  # A is degree 1


def test_drum_notes_do_not_count_as_pitches():
    midi = midi_of((0, line(C_MAJOR_SCALE)), (0, line([35, 81] * 4)), drums=True)

    assert features.pitch_range(midi) == features.PitchRange(12, 60, 72)
    assert (features.notes(midi)[:, 4] == features.DRUM_PROGRAM).sum() == 8


def test_a_repeated_motif_scores_higher_repetition_than_random_notes():
    rng = np.random.default_rng(7)
    motif = midi_of((0, line(list(MOTIF) * 8, beats=0.5)))
    sequence = midi_of((0, line([p + t for t in (0, 2, 4, 5) for p in MOTIF] * 2, beats=0.5)))  # transposed
    random_notes = midi_of((0, line(rng.integers(48, 84, 32).tolist(), beats=0.5)))

    assert features.repetition(motif) > 0.9
    assert features.repetition(sequence) > 0.5  # the same intervals at other pitches
    assert features.repetition(random_notes) < 0.2


def test_the_top_line_skips_inner_notes_under_a_held_melody_note():
    # Soprano holds E5 for 2 beats while the alto moves C4 -> D4 under it.
    midi = midi_of((0, [(0, 2, 76), (2, 1, 77)]), (0, [(0, 1, 60), (1, 1, 62), (2, 1, 64)]))

    top = features.top_line(features.read_performance(midi).pitched)

    assert top[:, 2].tolist() == [76, 77]


def test_describe_is_json_ready_and_compare_of_a_set_with_itself_is_zero(scale):
    described = features.describe(scale)
    assert described["key"] == "C major" and described["pitch_range"] == 12
    assert described["instruments"] == ["Acoustic Grand Piano"]

    same = compare.compare([described], [described])
    assert all(same[name] == pytest.approx(0.0, abs=1e-9) for name in compare.COMPARE_METRICS)

    other = compare.compare([features.describe(random_piece(1))], [described])
    assert other["pitch_class_js"] > 0.1 and other["pitch_range_diff"] > 10
    with pytest.raises(ValidationError, match="generated"):
        compare.compare([], [described])


def test_jensen_shannon_is_zero_for_equal_and_one_for_disjoint_histograms():
    assert compare.jensen_shannon([1, 0], [2, 0]) == pytest.approx(0.0)
    assert compare.jensen_shannon([1, 0], [0, 1]) == pytest.approx(1.0)


# --- baselines ---------------------------------------------------------------------------


def test_a_random_piece_is_deterministic_under_its_seed_and_as_long_as_asked():
    piece = random_piece(3, seconds=10, programs=(0, 40))

    assert piece == random_piece(3, seconds=10, programs=(0, 40))
    assert piece != random_piece(4, seconds=10, programs=(0, 40))
    perf = features.read_performance(piece)
    assert perf.seconds == pytest.approx(10.0)
    assert [i.program for i in perf.instruments] == [0, 40]
    with pytest.raises(ValidationError, match="program"):
        random_piece(1, programs=(128,))


def test_the_markov_baseline_is_deterministic_and_likes_its_training_piece_more_than_noise():
    training = midi_of((0, line(list(MOTIF) * 6 + list(C_MAJOR_SCALE) * 2, beats=0.5)))
    model = MarkovBaseline(order=3).fit([training])

    sample = model.sample(5, seconds=8)
    assert sample == model.sample(5, seconds=8)
    assert set(features.notes(sample)[:, 2].astype(int)) <= set(MOTIF) | set(C_MAJOR_SCALE)
    assert model.nll(training) < model.nll(random_piece(0, seconds=8)) - 2.0
    assert model.to_dict()["pieces"] == 1


def test_melody_events_quantise_the_top_line_into_duration_classes():
    midi = midi_of((0, [(0, 1, 72), (1, 0.5, 74), (1.5, 1.5, 76)]), (0, [(0, 3, 48)]))

    events, tempo = melody_events(midi)

    assert events == [(72, 3), (74, 1), (76, 4)]  # a quarter, an eighth, a dotted quarter
    assert tempo == pytest.approx(120.0)


def test_an_unfitted_markov_baseline_says_so():
    with pytest.raises(ValidationError, match="not fitted"):
        MarkovBaseline().sample(0)
    with pytest.raises(ValidationError, match="order"):
        MarkovBaseline(order=0)
