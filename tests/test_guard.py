"""The replication guard: copies are blocked, originals and shared stock phrases are not.

Catalogs are built in code (a handful of folk-like tunes) and checked with the guard's
default policy (no calibration), symbolic check only unless the test is about audio.
"""

from __future__ import annotations

import io
import json
import wave
from pathlib import Path
from typing import Any

import mido
import numpy as np
import pytest
from typer.testing import CliRunner

from accord.attribution.guard import Guard
from accord.attribution.guard.policy import DEFAULT_SYMBOLIC_THRESHOLD, SYMBOLIC_FLOOR
from accord.cli import app
from accord.errors import ReplicationBlocked
from accord.outputs import studio
from accord.registry.importer import import_delivery
from accord.registry.store import Store
from accord.settings import Settings
from tests.deliveries import catalog_agreement, small_catalog, write_delivery

MAJOR = (0, 2, 4, 5, 7, 9, 11)
TICKS = 480


def tune(seed: int, bars: int = 16, tonic: int = 62) -> tuple[list[int], list[float]]:
    """A folk-like melody: a diatonic walk, mostly quavers, a crotchet now and then (pitches, beat lengths)."""
    rng = np.random.default_rng(seed)
    pitches, beats, degree = [], [], int(rng.integers(0, 7))
    for _ in range(bars):
        used = 0.0
        while used < 4.0:
            length = 1.0 if rng.random() < 0.2 and used <= 3.0 else 0.5
            degree = int(np.clip(degree + rng.choice([-2, -1, -1, 1, 1, 2, 3, -3, 0]), -3, 10))
            pitches.append(tonic + 12 * (degree // 7) + MAJOR[degree % 7])
            beats.append(length)
            used += length
    return pitches, beats


def midi_bytes(pitches: list[int], beats: list[float], bpm: float = 120.0, program: int = 73) -> bytes:
    """A one-track MIDI file playing ``pitches`` with the given lengths (in beats) at ``bpm``."""
    mid = mido.MidiFile(ticks_per_beat=TICKS)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=int(60_000_000 / bpm), time=0))
    track.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    track.append(mido.Message("program_change", program=program, time=0))
    for pitch, length in zip(pitches, beats, strict=True):
        ticks = round(length * TICKS)
        track.append(mido.Message("note_on", note=int(pitch), velocity=80, time=0))
        track.append(mido.Message("note_off", note=int(pitch), velocity=0, time=ticks))
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """16-bit mono PCM WAV of ``samples`` (−1..1)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def isrc(n: int) -> str:
    return f"GBXYZ26{n:05d}"


def import_catalog(store: Store, folder: Path, media: list[tuple[str, str, bytes]], genre: str = "reel") -> None:
    """Import one recording per ``(title, kind, bytes)`` (kind ``midi`` or ``audio``), each its own work."""
    doc: dict[str, Any] = small_catalog()
    doc["agreements"].append(catalog_agreement("AGR-P2", "P-PUB2", "publishing"))
    doc["works"] = [
        {"id": f"W-{i}", "title": title, "writers": ["P-WRITER"], "shares": [{"party": "P-PUB", "share": "100"}]}
        for i, (title, _, _) in enumerate(media, start=1)
    ]
    files: dict[str, bytes] = {}
    doc["recordings"] = []
    for i, (title, kind, data) in enumerate(media, start=1):
        name = f"media/{i}.{'mid' if kind == 'midi' else 'wav'}"
        files[name] = data
        doc["recordings"].append(
            {
                "isrc": isrc(i),
                "title": title,
                "artists": ["P-ARTIST"],
                "duration_ms": 60000,
                "genre": genre,
                "works": [f"W-{i}"],
                "shares": [{"party": "P-LABEL", "share": "100"}],
                "media": [{"path": name, "kind": kind}],
            }
        )
    import_delivery(store, write_delivery(folder, doc, files))


N_TUNES = 6


def symbolic_only(settings: Settings) -> Settings:
    return settings.model_copy(update={"guard_audio": False})


def disguised_copy(seed: int, first_bar: int, bars: int, shift: int, tempo: float, edit_share: float) -> bytes:
    """``bars`` bars of catalog tune ``seed`` from ``first_bar``, transposed, re-timed and partly edited,
    between 8 bars of other material before and after."""
    pitches, beats = tune(seed)
    starts = np.cumsum([0.0, *beats[:-1]])
    keep = [i for i, s in enumerate(starts) if first_bar * 4 <= s < (first_bar + bars) * 4]
    copy_p = [pitches[i] + shift for i in keep]
    copy_b = [beats[i] for i in keep]
    rng = np.random.default_rng(99)
    for i in rng.choice(len(copy_p), size=round(edit_share * len(copy_p)), replace=False).tolist():
        copy_p[i] += int(rng.choice([-2, -1, 1, 2]))
    before_p, before_b = tune(1000 + seed, bars=8, tonic=62 + shift)
    after_p, after_b = tune(2000 + seed, bars=8, tonic=62 + shift)
    return midi_bytes(before_p + copy_p + after_p, before_b + copy_b + after_b, bpm=120 * tempo)


@pytest.fixture
def catalog(store: Store, tmp_path: Path) -> list[bytes]:
    tunes = [midi_bytes(*tune(seed)) for seed in range(1, N_TUNES + 1)]
    import_catalog(store, tmp_path / "delivery", [(f"Tune {i}", "midi", t) for i, t in enumerate(tunes, start=1)])
    return tunes


def test_a_transposed_retimed_partly_edited_copy_of_a_catalog_melody_is_blocked(
    store: Store, settings: Settings, catalog: list[bytes]
) -> None:
    guard = Guard.for_store(store, symbolic_only(settings))
    for edits in (0.1, 0.2, 0.3):
        piece = disguised_copy(seed=3, first_bar=4, bars=8, shift=5, tempo=1.25, edit_share=edits)
        verdict = guard.verdict(midi=piece)
        assert verdict.status == "blocked", (edits, verdict.to_dict())
        worst = verdict.worst
        assert worst is not None and worst.isrc == isrc(3) and worst.check == "symbolic"
        assert worst.transposition == 5
        # the copy sits in bars 9-16 of the piece and came from bars 5-12 of the catalog tune
        assert 7 <= worst.piece_bars[0] <= 10 and 15 <= worst.piece_bars[1] <= 17, worst
        assert 3 <= worst.catalog_bars[0] <= 6 and 11 <= worst.catalog_bars[1] <= 13, worst
        assert worst.shared_notes >= 0.6 * 8 * 7  # most of ~7 notes a bar over 8 bars
    assert verdict.policy_version.startswith("guard-policy/4:default")


def test_an_original_piece_passes(store: Store, settings: Settings, catalog: list[bytes]) -> None:
    guard = Guard.for_store(store, symbolic_only(settings))
    for seed in (501, 502, 503):
        verdict = guard.verdict(midi=midi_bytes(*tune(seed)))
        assert verdict.status == "clear", verdict.to_dict()
        assert all(e.score < DEFAULT_SYMBOLIC_THRESHOLD for e in verdict.closest)
    assert verdict.catalog["recordings"] == N_TUNES


def test_two_catalog_works_sharing_only_a_cadence_and_a_scale_are_not_flagged(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    scale = [62, 64, 66, 67, 69, 71, 73, 74]  # a D major scale in quavers
    cadence = [69, 67, 66, 64, 62]  # 5-4-3-2-1 home
    one_p, one_b = tune(11, bars=8)
    two_p, two_b = tune(12, bars=8)
    first = midi_bytes(one_p[:20] + scale + one_p[20:] + cadence, one_b[:20] + [0.5] * 8 + one_b[20:] + [1.0] * 5)
    second = midi_bytes(two_p[:30] + scale + two_p[30:] + cadence, two_b[:30] + [0.5] * 8 + two_b[30:] + [1.0] * 5)
    import_catalog(store, tmp_path / "d", [("First", "midi", first), ("Second", "midi", second)])
    guard = Guard.for_store(store, symbolic_only(settings))
    verdict = guard.verdict(midi=first, exclude_isrcs=frozenset({isrc(1)}))
    assert verdict.status == "clear", verdict.to_dict()
    closest = verdict.closest[0]
    assert closest.isrc == isrc(2) and closest.shared_notes >= 8  # the scale and cadence are found, and weigh little
    assert guard.verdict(midi=first).status == "blocked"  # while the work itself is found


def test_guard_check_exit_codes(store: Store, settings: Settings, catalog: list[bytes], tmp_path: Path) -> None:
    runner = CliRunner()
    copy = tmp_path / "copy.mid"
    copy.write_bytes(disguised_copy(seed=2, first_bar=2, bars=8, shift=-3, tempo=0.8, edit_share=0.2))
    original = tmp_path / "original.mid"
    original.write_bytes(midi_bytes(*tune(777)))
    junk = tmp_path / "junk.mid"
    junk.write_bytes(b"not music at all")
    env = {"ACCORD_GUARD_AUDIO": "false"}
    blocked = runner.invoke(app, ["guard", "check", str(copy), "--json"], env=env)
    assert blocked.exit_code == 1, blocked.output
    data = json.loads(blocked.output)
    assert data["status"] == "blocked" and data["closest"][0]["isrc"] == isrc(2)
    assert data["closest"][0]["over_threshold"] and data["closest"][0]["shared_bars"] >= 6
    clear = runner.invoke(app, ["guard", "check", str(original)], env=env)
    assert clear.exit_code == 0, clear.output
    assert "CLEAR" in clear.output
    assert runner.invoke(app, ["guard", "check", str(junk)], env=env).exit_code == 2
    assert runner.invoke(app, ["guard", "check", str(tmp_path / "missing.mid")], env=env).exit_code == 2


def test_calibration_sets_the_threshold_above_the_catalogs_own_borrowing(
    store: Store, settings: Settings, catalog: list[bytes]
) -> None:
    from accord.attribution.guard.calibrate import calibrate
    from accord.attribution.guard.policy import load_policy, save_policy

    guard = Guard.for_store(store, symbolic_only(settings))
    result = calibrate(guard, percentile=99.5, margin=0.5, created="2026-11-25T00:00:00Z")
    # the line is in significance (-log10 E) above the catalog's own windows' significance
    scores = [w.significance for w in result.windows]
    assert len(scores) == N_TUNES and len(result.borrowing) == N_TUNES
    assert (
        result.policy.symbolic_threshold >= float(np.percentile(scores, 99.5)) + 0.5 - 1e-9
        or result.policy.symbolic_threshold == SYMBOLIC_FLOOR
    )
    save_policy(result.policy, settings)
    loaded = load_policy(settings)
    assert loaded.version == result.policy.version and loaded.source == "calibrated"
    overridden = load_policy(settings.model_copy(update={"guard_symbolic_threshold": 5.5}))
    assert overridden.symbolic_threshold == 5.5 and overridden.source == "settings"


class _Piece:
    def __init__(self, midi: bytes) -> None:
        self.midi = midi


@pytest.fixture
def quick_render(monkeypatch: pytest.MonkeyPatch) -> None:
    """Renders as one second of silence: these tests are about the symbolic check and the retries."""
    import accord.media.render as rendering

    def silence(_midi: bytes, out: Path, **_: Any) -> rendering.RenderResult:
        out.write_bytes(wav_bytes(np.zeros(8000), 8000))
        return rendering.RenderResult(out, 1.0, 0.0, "simple", "", 8000, 1)

    monkeypatch.setattr(rendering, "render", silence)


@pytest.mark.slow  # imports the model stack (torch) for the sampler it replaces
def test_generation_retries_other_seeds_then_refuses_when_every_seed_copies(
    store: Store, settings: Settings, catalog: list[bytes], monkeypatch: pytest.MonkeyPatch, quick_render: None
) -> None:
    import accord.model.sample as sample

    seeds: list[int] = []

    def copying_sampler(_model: Any, *, seed: int, **_: Any) -> _Piece:
        seeds.append(seed)
        return _Piece(disguised_copy(seed=4, first_bar=0, bars=8, shift=seed % 5, tempo=1.1, edit_share=0.2))

    monkeypatch.setattr(sample, "generate", copying_sampler)
    from types import SimpleNamespace

    import accord.model.contracts as contracts

    monkeypatch.setattr(studio, "_load", lambda _path: SimpleNamespace(tokenizer=None))
    monkeypatch.setattr(contracts, "check_request", lambda *a, **k: None)  # the stub model has no vocabulary
    monkeypatch.setattr(studio, "check_may_generate", lambda *a, **k: None)
    monkeypatch.setattr(studio.repository, "get_model", lambda *a, **k: None)
    monkeypatch.setattr(studio, "get_creator", lambda *a, **k: None)
    quick = settings.model_copy(update={"guard_max_attempts": 3, "guard_audio": False})
    with pytest.raises(ReplicationBlocked, match=r"blocked all 3 seeds tried.*GBXYZ2600004 \(Tune 4\)"):
        studio.generate_output(
            store, quick, model_id="m", creator_id="ana", prompt=studio.Prompt(style="reel", bars=8), seed=7
        )
    assert seeds == [7, studio.guard_seed(7, 1), studio.guard_seed(7, 2)] and len(set(seeds)) == 3
    assert not list(quick.outputs_dir.glob("*")) if quick.outputs_dir.exists() else True


def test_a_blocked_seed_is_replaced_by_the_next_one_that_passes(
    store: Store, settings: Settings, catalog: list[bytes], monkeypatch: pytest.MonkeyPatch, quick_render: None
) -> None:
    import accord.model.sample as sample

    def first_copies(_model: Any, *, seed: int, **_: Any) -> _Piece:
        if seed == 7:
            return _Piece(disguised_copy(seed=1, first_bar=0, bars=8, shift=2, tempo=1.0, edit_share=0.1))
        return _Piece(midi_bytes(*tune(seed % 1000 + 3000, bars=8)))

    monkeypatch.setattr(sample, "generate", first_copies)
    piece, _rendered, wav, record = studio._generate_past_the_guard(
        store,
        settings.model_copy(update={"guard_audio": False}),
        object(),
        studio.Prompt(style="reel", bars=8),
        7,
        None,
        lambda *_: None,
    )
    assert record["status"] == "clear" and record["requested_seed"] == 7
    assert record["seed_used"] == studio.guard_seed(7, 1)
    assert [a["status"] for a in record["attempts"]] == ["blocked", "clear"]
    assert record["attempts"][0]["closest"]["isrc"] == isrc(1)
    assert wav[:4] == b"RIFF" and piece.midi[:4] == b"MThd"


def test_a_computed_verdict_is_a_valid_credential_guard_and_a_blocked_one_is_not() -> None:
    from accord.provenance.credential import guard_problems

    clear = {
        "status": "clear",
        "threshold": 16.0,
        "audio_threshold": 40.0,
        "policy_version": "guard-policy/3:default:abc",
        "checks": ["symbolic", "audio"],
        "closest": [{"isrc": isrc(1), "check": "symbolic", "score": 3.5, "threshold": 16.0, "over_threshold": False}],
    }
    assert guard_problems(clear) == []
    assert guard_problems({"status": "pending", "note": "made before the guard"}) == []
    assert guard_problems({**clear, "status": "blocked"})
    assert guard_problems({**clear, "checks": []})
    over = {**clear, "closest": [{**clear["closest"][0], "over_threshold": True}]}
    assert any("over its threshold" in p for p in guard_problems(over))


def test_evaluate_plants_copies_and_reports_tpr_at_fixed_fpr(
    store: Store, settings: Settings, catalog: list[bytes]
) -> None:
    from accord.attribution.guard.evaluate import evaluate
    from accord.attribution.guard.significance import EVIDENCE

    # copies of the held-out half only (2 of these 6 tunes), the policy fitted on the other 4
    report = evaluate(Guard.for_store(store, symbolic_only(settings)), works=2, seed=1).to_dict()
    assert report["works"] == 2 and report["fitted_on"] == N_TUNES - 2 and report["negatives"] >= 20
    rows = {(r["copy_bars"], r["edited"], r["transposed"], r["retimed"]): r for r in report["rows"]}
    assert rows[(8, 0.1, True, True)]["n"] == 2 and rows[(8, 0.1, True, True)]["recall_at_1pct_fpr"] == 1.0
    assert rows[(8, 0.0, False, False)]["n"] == 2 and (4, 0.2, False, False) not in rows  # edited: disguised only
    assert {r["copy_bars"] for r in report["rows"]} == {2, 4, 8, 16}
    assert [a["measure"] for a in report["ablations"]] == ["combined", *EVIDENCE, "bars"]
