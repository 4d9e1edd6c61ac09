"""The memorisation audit: a model that regurgitates its training works is refused approval and serving."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import mido
import numpy as np
import pytest
import symusic
from typer.testing import CliRunner

from accord.cli import app
from accord.datasets import repository, service
from accord.datasets.loader import ManifestLoader
from accord.errors import NotLicensed, ValidationError
from accord.model.audit import Probe, audit_model, continuation, record_audit, run_audit, summarise
from accord.model.train import train
from accord.registry.importer import import_delivery
from accord.registry.store import Store
from accord.settings import Settings
from accord.signing import ensure_operator_key
from tests.deliveries import catalog_agreement, small_catalog, write_delivery

D_MAJOR = [62, 64, 66, 67, 69, 71, 73, 74, 76, 78, 79, 81]
TRAINED, UNSEEN = 5, 3
OPTIONS: dict[str, Any] = {"prompt_bars": 2, "continue_bars": 4, "temperatures": (0.3,), "works": None, "control": 8}


def melody(seed: int, bars: int = 6) -> bytes:
    """A random walk of quarter notes in D major, different for every seed: no two works share a passage."""
    rng = np.random.default_rng(seed)
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500_000, time=0))
    track.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    track.append(mido.Message("program_change", program=40, time=0))
    step = int(rng.integers(0, len(D_MAJOR)))
    for _ in range(bars * 4):
        step = int(np.clip(step + rng.choice([-3, -2, -1, 1, 2, 3]), 0, len(D_MAJOR) - 1))
        track.append(mido.Message("note_on", note=D_MAJOR[step], velocity=80, time=0))
        track.append(mido.Message("note_off", note=D_MAJOR[step], velocity=0, time=480))
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def catalog_with_unseen_works(tmp: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Five recordings the label licensed for training, and three of another label that did not license them."""
    doc = small_catalog()
    doc["parties"].append({"id": "P-OTHER", "kind": "label", "name": "Unlicensed Label"})
    doc["agreements"].append(catalog_agreement("AGR-P2", "P-PUB2", "publishing"))
    template = doc["recordings"][1]
    doc["recordings"], media = [], {}
    for n in range(TRAINED + UNSEEN):
        rec = json.loads(json.dumps(template))
        rec |= {"isrc": f"GBXYZ26{n + 1:05d}", "title": f"Tune {n + 1}", "genre": "reel"}
        rec["shares"] = [{"party": "P-LABEL" if n < TRAINED else "P-OTHER", "share": "100"}]
        rec["media"] = [{"path": f"media/{n}.mid", "kind": "midi"}]
        media[f"media/{n}.mid"] = melody(n)
        doc["recordings"].append(rec)
    return doc, media


@pytest.fixture
def registry(store: Store, settings: Settings, tmp_path: Path) -> dict[str, Any]:
    doc, media = catalog_with_unseen_works(tmp_path)
    import_delivery(store, write_delivery(tmp_path / "d", doc, media))
    key, _ = ensure_operator_key(settings.home)
    manifest, _, _ = service.build(store, key, use="train", as_of=store.clock(), territory="GB")
    assert len(manifest.items) == TRAINED
    return {"manifest": manifest}


def trained_model(store: Store, settings: Settings, manifest: Any, model_id: str, steps: int) -> str:
    """A tiny model on every item of the manifest (none held out), registered."""
    folder = settings.models_dir / model_id
    result = train(
        manifest,
        ManifestLoader(manifest, store.media),
        store.snapshot(manifest.header.as_of),
        folder,
        preset="tiny",
        steps=steps,
        lr=1e-2,
        val_fraction=0.0,
        eval_every=max(steps, 1),
        threads=1,
    )
    repository.register_model(store, model_id, manifest.root, card=json.loads(json.dumps(result.card)), actor="test")
    return model_id


@pytest.mark.slow
def test_an_overfitted_model_is_refused_approval_and_serving_naming_the_works(
    store: Store, settings: Settings, registry: dict[str, Any]
) -> None:
    model_id = trained_model(store, settings, registry["manifest"], "overfit", steps=600)
    summary = audit_model(store, settings, model_id, **OPTIONS)
    assert summary["train_works"] == TRAINED and summary["control_works"] == UNSEEN
    assert summary["extraction_rate"] >= 0.6, summary["worst"]
    assert summary["control_extraction_rate"] <= 0.34
    assert not summary["passed"]
    assert summary["extracted_works"] and all(w["isrc"] <= f"GBXYZ26{TRAINED:05d}" for w in summary["extracted_works"])
    record_audit(store, model_id, summary, actor="test")
    with pytest.raises(NotLicensed, match="memorisation audit") as refused:
        repository.record_approval(store, model_id, "P-LABEL", approve=True, by="P-LABEL")
    assert summary["extracted_works"][0]["isrc"] in str(refused.value)
    assert repository.latest_approvals(store, model_id) == {}  # nothing written
    status = service.status_of_model(store, model_id, store.clock())
    assert not status.can_serve("generate") and any("memorisation" in r for r in status.reasons)
    refusal_recorded, _ = repository.record_approval(store, model_id, "P-LABEL", approve=False, by="P-LABEL")
    assert refusal_recorded.decision == "refused"  # refusing is always allowed


def test_a_barely_trained_model_passes_and_may_be_approved(
    store: Store, settings: Settings, registry: dict[str, Any]
) -> None:
    model_id = trained_model(store, settings, registry["manifest"], "fresh", steps=3)
    summary = audit_model(store, settings, model_id, **OPTIONS)
    assert summary["passed"] and summary["extraction_rate"] <= summary["control_extraction_rate"] + 0.05
    record_audit(store, model_id, summary, actor="test")
    approval, _ = repository.record_approval(store, model_id, "P-LABEL", approve=True, by="P-LABEL")
    assert approval.decision == "approved"
    assert not any("memorisation" in r for r in service.status_of_model(store, model_id, store.clock()).reasons)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_cli_audit_writes_the_card_and_exits_1_when_it_fails(
    store: Store, settings: Settings, registry: dict[str, Any]
) -> None:
    model_id = trained_model(store, settings, registry["manifest"], "overfit-cli", steps=600)
    args = ["model", "audit", model_id, "--works", "all", "--control", "8", "--prompt-bars", "2", "--bars", "4"]
    result = CliRunner().invoke(app, [*args, "--temperature", "0.3"])
    assert result.exit_code == 1, result.output
    assert "FAILED" in result.output and "GBXYZ26" in result.output
    card = json.loads((settings.models_dir / model_id / "model_card.json").read_text())
    assert card["memorisation"]["passed"] is False and len(card["memorisation"]["probes"]) == TRAINED + UNSEEN
    assert "## Memorisation audit" in (settings.models_dir / model_id / "model_card.md").read_text()
    bad = CliRunner().invoke(app, ["model", "audit", model_id, "--works", "some"])
    assert bad.exit_code == 2 and "works" in bad.output


def test_the_verdict_compares_training_works_with_the_control() -> None:
    def probes(group: str, extracted: int, n: int) -> list[Probe]:
        return [Probe(f"{group}{i}", group, 1.0, 4 if i < extracted else 0, 1.0, i < extracted) for i in range(n)]

    common = {"titles": {}, "settings": {}, "threshold": 3.0, "policy_version": "p", "seconds": 0.0}
    style_only = summarise([*probes("train", 3, 10), *probes("control", 3, 10)], limit=0.05, **common)
    assert style_only["passed"] and style_only["memorisation"] == 0.0  # as often as unseen works: style, not memory
    memorised = summarise([*probes("train", 5, 10), *probes("control", 1, 10)], limit=0.05, **common)
    assert not memorised["passed"] and memorised["memorisation"] == 0.4
    assert [w["isrc"] for w in memorised["extracted_works"]] == [f"train{i}" for i in range(5)]
    assert memorised["bars_reproduced"]["train"] == {"0": 5, "4": 5}
    chance = summarise([*probes("train", 1, 16), *probes("control", 0, 16)], limit=0.05, **common)
    assert chance["memorisation"] > 0.05 and chance["memorisation_lower_bound"] < 0 and chance["passed"]


def test_bad_audit_options_are_refused_before_anything_runs() -> None:
    for options in ({"prompt_bars": 0}, {"temperatures": ()}, {"works": 0}, {"limit": 2.0}):
        with pytest.raises(ValidationError):
            run_audit(None, None, [], [], **options)


def test_a_continuation_starts_at_the_bar_after_the_prompt() -> None:
    midi = melody(1, bars=6)
    tail = symusic.Score.from_midi(continuation(midi, 2))
    whole = symusic.Score.from_midi(midi)
    assert tail.note_num() == whole.note_num() - 8  # two bars of four quarter notes cut
    assert tail.tracks[0].notes[0].time == 0
    assert [n.pitch for n in tail.tracks[0].notes] == [n.pitch for n in whole.tracks[0].notes][8:]
    assert continuation(midi, 6) == b""
