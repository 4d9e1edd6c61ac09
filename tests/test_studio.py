"""The studio end to end on a tiny model: train, generate, render, credential, refuse the unlicensed."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import mido
import pytest

from accord.datasets import repository, service
from accord.datasets.repository import ModelRecord
from accord.errors import NotLicensed
from accord.outputs import store as outputs
from accord.outputs.plans import parse_plans
from accord.outputs.studio import Prompt, generate_output, model_dir, train_on_manifest
from accord.provenance.verify import verify_file
from accord.registry.importer import import_delivery
from accord.registry.store import Store
from accord.settings import Settings
from accord.signing import ensure_operator_key
from tests.deliveries import catalog_agreement, small_catalog, write_delivery


def tune(seed: int, bars: int = 8) -> bytes:
    """A small fiddle-like tune: a scale pattern that differs by seed."""
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500_000, time=0))
    track.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    track.append(mido.Message("program_change", program=40, time=0))
    scale = [62, 64, 66, 67, 69, 71, 73, 74]
    for n in range(bars * 8):
        pitch = scale[(n * (seed + 1) + n // 8) % len(scale)]
        track.append(mido.Message("note_on", note=pitch, velocity=80, time=0))
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=240))
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


_TINY_MODELS: dict[str, tuple[str, Path, dict[str, Any], Any]] = {}
"""Tiny models trained in this test session, by manifest root: (model id, its files, card, training result)."""


def tiny_model(
    store: Store, settings: Settings, manifest_root: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[ModelRecord, Any]:
    """A tiny model trained on the manifest (12 steps, seed 3) and registered in ``store``.

    Trained once per test session and manifest: training is deterministic and reads only the manifest's
    files, so a later test (on either backend) gets a copy of the same files, registered the way
    :func:`train_on_manifest` registers them, instead of training again.
    """
    cached = _TINY_MODELS.get(manifest_root)
    if cached is None:
        record, result = train_on_manifest(store, settings, manifest_root, preset="tiny", steps=12, seed=3)
        kept = tmp_path_factory.mktemp("tiny-model") / record.model_id
        shutil.copytree(model_dir(settings, record.model_id), kept)
        _TINY_MODELS[manifest_root] = (record.model_id, kept, record.card, result)
        return record, result
    model_id, kept, card, result = cached
    shutil.copytree(kept, model_dir(settings, model_id))
    record, _ = repository.register_model(store, model_id, manifest_root, card=card, actor="operator")
    return record, result


@pytest.fixture
def trained(
    store: Store, settings: Settings, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    doc = small_catalog()
    doc["agreements"].append(catalog_agreement("AGR-P2", "P-PUB2", "publishing"))
    doc["agreements"][0]["uses"] = ["train", "generate"]  # no remix licence anywhere
    for rec in doc["recordings"]:
        rec["genre"] = "reel"
    media = {"media/a.mid": tune(1), "media/b.mid": tune(2)}
    for rec in doc["recordings"]:
        rec["media"][0].pop("sha256", None)
    import_delivery(store, write_delivery(tmp_path / "d", doc, media))
    key, _ = ensure_operator_key(settings.home)
    manifest, _, _ = service.build(store, key, use="train", as_of=store.clock(), territory="GB")
    assert len(manifest.items) == 2
    record, result = tiny_model(store, settings, manifest.root, tmp_path_factory)
    creator = outputs.add_creator(store, "ana", "free", "GB", parse_plans(settings.plans))
    return {"manifest": manifest, "model": record, "result": result, "creator": creator}


@pytest.mark.slow
def test_a_tiny_model_trains_generates_and_credentials_its_output(
    store: Store, settings: Settings, trained: dict[str, Any]
) -> None:
    model = trained["model"]
    assert (
        model.card["manifest"]["root"] == trained["manifest"].root
        if isinstance(model.card.get("manifest"), dict)
        else True
    )
    assert (settings.models_dir / model.model_id / "loss.png").is_file()
    made = generate_output(
        store, settings, model_id=model.model_id, creator_id="ana", prompt=Prompt(style="reel", bars=4), seed=5
    )
    for kind in ("midi", "audio", "pianoroll", "credential"):
        assert made.paths[kind].is_file(), kind
    key = ensure_operator_key(settings.home)[0].public_hex
    assert verify_file(made.paths["credential"], public_key_hex=key, media=made.paths["midi"]).valid
    embedded = verify_file(made.paths["audio"])
    assert embedded.valid and embedded.credential is not None
    assert embedded.credential["model_id"] == model.model_id
    assert embedded.credential["guard"]["status"] == "clear"  # the replication guard ran and released it
    again = generate_output(
        store, settings, model_id=model.model_id, creator_id="ana", prompt=Prompt(style="reel", bars=4), seed=5
    )
    assert again.paths["midi"].read_bytes() == made.paths["midi"].read_bytes()  # deterministic under a seed
    assert [e["kind"] for e in outputs.events(store)] == ["generation", "generation"]


@pytest.mark.slow
def test_a_remix_without_its_licence_and_a_tainted_model_are_refused(
    store: Store, settings: Settings, trained: dict[str, Any]
) -> None:
    model_id = trained["model"].model_id
    with pytest.raises(NotLicensed, match="remix of GBXYZ2600001 refused in GB"):
        generate_output(
            store,
            settings,
            model_id=model_id,
            creator_id="ana",
            prompt=Prompt(style="reel", from_isrc="GBXYZ2600001"),
            seed=1,
        )
    from accord.registry.store import ChangeSet
    from tests.factories import optout

    store.apply(
        ChangeSet(optouts=(optout("O-1", "P-ARTIST", "catalog", "", ("train",), store.clock()),)),
        actor="P-ARTIST",
        action="optout.added",
    )
    with pytest.raises(NotLicensed, match="no longer licensed for training"):
        generate_output(
            store, settings, model_id=model_id, creator_id="ana", prompt=Prompt(style="reel", bars=4), seed=1
        )
    assert outputs.list_outputs(store) == []
    assert repository.get_model(store, model_id).manifest_root == trained["manifest"].root
