"""The guard on audio through transcription: audio-only catalog recordings and audio files checked."""

from __future__ import annotations

import io
import json
from pathlib import Path

import mido
import pytest
from typer.testing import CliRunner

from accord.attribution.guard import Guard
from accord.cli import app
from accord.media.render import render
from accord.registry.store import Store
from accord.settings import Settings
from tests.test_guard import disguised_copy, import_catalog, isrc, midi_bytes, tune


def rendered(midi: bytes, path: Path) -> bytes:
    """``midi`` played on a piano, as WAV. (A legato flute merges repeated notes into one when
    transcribed, which costs a copy about two thirds of its score: see docs/guard.md.)"""
    mid = mido.MidiFile(file=io.BytesIO(midi))
    for track in mid.tracks:
        for i, msg in enumerate(track):
            if msg.type == "program_change":
                track[i] = msg.copy(program=0)
    buf = io.BytesIO()
    mid.save(file=buf)
    render(buf.getvalue(), path, sample_rate=22_050)
    return path.read_bytes()


@pytest.mark.slow  # renders and transcribes a small catalog
def test_an_audio_only_recording_is_covered_by_the_symbolic_check_through_its_transcription(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    heard = rendered(midi_bytes(*tune(71)), tmp_path / "heard.wav")  # delivered as audio, no MIDI
    import_catalog(
        store,
        tmp_path / "d",
        [
            ("Heard only", "audio", heard),
            ("Score", "midi", midi_bytes(*tune(72))),
            ("Other", "midi", midi_bytes(*tune(73))),
        ],
    )
    symbolic = settings.model_copy(update={"guard_audio": False})
    guard = Guard.for_store(store, symbolic)
    assert {p.isrc for p in guard.index.pieces} == {isrc(1), isrc(2), isrc(3)}
    # 8 bars of the heard tune, transposed, faster, a tenth of the notes changed, between other material
    copy = disguised_copy(seed=71, first_bar=4, bars=8, shift=3, tempo=1.2, edit_share=0.1)
    verdict = guard.verdict(midi=copy)
    worst = verdict.worst
    assert verdict.blocked and worst is not None and worst.isrc == isrc(1) and worst.check == "symbolic"
    assert guard.verdict(midi=midi_bytes(*tune(99))).status == "clear"
    # with transcription off, the audio-only recording is out of the symbolic index again
    off = Guard.for_store(store, symbolic.model_copy(update={"guard_transcribe": False}))
    assert {p.isrc for p in off.index.pieces} == {isrc(2), isrc(3)}
    assert not off.verdict(midi=copy).blocked


@pytest.mark.slow  # renders and transcribes
def test_guard_check_on_audio_catches_a_re_played_transposed_copy_by_its_notes(
    store: Store, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_catalog(store, tmp_path / "d", [(f"Tune {n}", "midi", midi_bytes(*tune(n))) for n in (81, 82, 83)])
    # another recording of tune 82's melody: transposed and faster, so none of the catalog's sound matches
    copy = tmp_path / "copy.wav"
    rendered(disguised_copy(seed=82, first_bar=0, bars=8, shift=-4, tempo=1.15, edit_share=0.0), copy)
    original = tmp_path / "original.wav"
    rendered(midi_bytes(*tune(199)), original)
    runner = CliRunner()
    result = runner.invoke(app, ["guard", "check", str(copy), "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert report["checks"] == ["symbolic", "audio"]
    over = [e for e in report["closest"] if e["score"] >= e["threshold"]]
    assert over and {e["check"] for e in over} == {"symbolic"} and over[0]["isrc"] == isrc(2)
    assert any("transcribed" in n for n in report["notes"])
    assert runner.invoke(app, ["guard", "check", str(original)]).exit_code == 0
    # with transcription off, the same file passes: the audio check alone cannot hear a re-played copy
    monkeypatch.setenv("ACCORD_GUARD_TRANSCRIBE", "false")
    assert runner.invoke(app, ["guard", "check", str(copy)]).exit_code == 0
