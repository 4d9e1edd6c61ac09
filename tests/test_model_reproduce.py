"""Reproducible by construction: a step budget, fixed threads, a weights hash, and a re-run that checks it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from accord.cli import app
from accord.datasets import repository, service
from accord.errors import ValidationError
from accord.model.card import WEIGHTS_FORMAT, weights_sha256
from accord.model.checkpoint import load_checkpoint, save_checkpoint
from accord.model.reproduce import max_difference, reproduce_model
from accord.model.train import train
from accord.outputs.studio import train_on_manifest
from accord.registry.importer import import_delivery
from accord.registry.store import Store
from accord.settings import Settings
from accord.signing import ensure_operator_key
from tests.deliveries import write_delivery
from tests.test_model import build_training_set
from tests.test_model_audit import catalog_with_unseen_works

runner = CliRunner()


@pytest.fixture(scope="module")
def training_set(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return build_training_set(tmp_path_factory.mktemp("set"))


def test_the_same_steps_and_seed_give_the_same_weights_hash_and_the_card_says_how(tmp_path, training_set):
    manifest, loader, catalog, _ = training_set
    a = train(manifest, loader, catalog, tmp_path / "a", preset="tiny", steps=12, eval_every=6, threads=1)
    b = train(manifest, loader, catalog, tmp_path / "b", preset="tiny", steps=12, eval_every=6, threads=1)
    assert a.card["weights"]["sha256"] == b.card["weights"]["sha256"]
    assert a.card["weights"]["format"] == WEIGHTS_FORMAT
    saved = load_checkpoint(tmp_path / "a")["model"]
    assert weights_sha256(saved) == a.card["weights"]["sha256"]  # the hash is of the weights saved
    card = a.card
    assert card["manifest"]["root"] == manifest.root and card["seed"] == 0
    assert card["hyperparameters"]["steps"] == 12 and card["hyperparameters"]["threads"] == 1
    assert card["hyperparameters"]["deterministic"] is True and card["hardware"]["deterministic"] is True
    assert card["hardware"]["device"] == "cpu" and card["hardware"]["dtype"] in ("float32", "bfloat16")
    assert set(card["versions"]) >= {"torch", "miditok", "symusic", "accord"}
    assert card["model"]["config"]["n_layer"] == 2 and card["training"]["budget"] == "steps"
    c = train(manifest, loader, catalog, tmp_path / "c", preset="tiny", steps=12, eval_every=6, seed=1, threads=1)
    assert c.card["weights"]["sha256"] != a.card["weights"]["sha256"]
    assert "Weights sha256" in (tmp_path / "a" / "model_card.md").read_text()


def test_the_demo_s_two_threads_and_transposition_give_the_same_weights_twice(tmp_path, training_set):
    """The demo trains on two threads with half its samples transposed: still one model per machine kind."""
    manifest, loader, catalog, _ = training_set
    runs = [
        train(manifest, loader, catalog, tmp_path / n, preset="tiny", steps=12, eval_every=6, threads=2, transpose=0.5)
        for n in ("a", "b")
    ]
    assert runs[0].card["weights"]["sha256"] == runs[1].card["weights"]["sha256"]
    assert runs[0].card["hyperparameters"]["transpose"] == 0.5 and runs[0].card["hyperparameters"]["threads"] == 2
    plain = train(manifest, loader, catalog, tmp_path / "c", preset="tiny", steps=12, eval_every=6, threads=2)
    assert plain.card["weights"]["sha256"] != runs[0].card["weights"]["sha256"]  # the transposition took part
    with pytest.raises(ValidationError, match=r"transpose: -0\.1; expected a chance between 0 and 1"):
        train(manifest, loader, catalog, tmp_path / "d", preset="tiny", steps=2, transpose=-0.1)


def test_minutes_are_turned_into_steps_before_training_and_recorded(tmp_path, training_set):
    manifest, loader, catalog, _ = training_set
    events: list[dict] = []
    result = train(
        manifest,
        loader,
        catalog,
        tmp_path,
        preset="tiny",
        minutes=0.002,
        eval_every=5,
        threads=1,
        progress=events.append,
    )
    budget = next(e for e in events if e["stage"] == "budget")
    assert budget["steps"] == result.steps >= 1 and budget["steps_per_second"] > 0
    hp = result.card["hyperparameters"]
    assert hp["minutes"] == 0.002 and hp["steps"] == result.steps
    assert result.card["training"]["budget"] == f"0.002 minutes, turned into {result.steps} steps"
    # the same budget in steps gives the same weights: the probe changed nothing
    again = train(
        manifest, loader, catalog, tmp_path / "steps", preset="tiny", steps=result.steps, eval_every=5, threads=1
    )
    assert again.card["weights"]["sha256"] == result.card["weights"]["sha256"]


def test_weights_hash_covers_names_dtypes_shapes_and_every_value() -> None:
    base = {"a.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.zeros(3)}
    h = weights_sha256(base)
    assert weights_sha256(dict(reversed(base.items()))) == h  # order of the dict does not matter
    assert weights_sha256({**base, "a.weight": base["a.weight"].t().contiguous().t()}) == h  # nor strides
    for changed in (
        {**base, "b": torch.tensor([0.0, 0.0, 1e-30])},
        {**base, "b": torch.zeros(3, dtype=torch.float64)},
        {**base, "a.weight": base["a.weight"].reshape(3, 2)},
        {"a.weight2": base["a.weight"], "b": base["b"]},
    ):
        assert weights_sha256(changed) != h
    assert max_difference(base, {**base, "b": torch.tensor([0.0, -0.5, 0.25])}) == (0.5, "b")
    with pytest.raises(ValidationError, match="different parameters"):
        max_difference(base, {"b": base["b"]})


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_accord_model_reproduce_matches_and_reports_the_largest_difference_when_it_does_not(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    doc, media = catalog_with_unseen_works(tmp_path)
    import_delivery(store, write_delivery(tmp_path / "d", doc, media))
    key, _ = ensure_operator_key(settings.home)
    manifest, _, _ = service.build(store, key, use="train", as_of=store.clock(), territory="GB")
    torch.set_num_threads(1)
    record, _ = train_on_manifest(store, settings, manifest.root, preset="tiny", steps=8, seed=2, model_id="m1")
    result = runner.invoke(app, ["model", "reproduce", "m1", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["matches"] and report["reproduced_sha256"] == record.card["weights"]["sha256"]
    assert report["max_abs_diff"] == 0.0 and report["same_setup"]

    # a model whose saved weights were nudged after training no longer matches its own training
    folder = settings.models_dir / "m1"
    ckpt = load_checkpoint(folder)
    name = sorted(ckpt["model"])[0]
    ckpt["model"][name] = ckpt["model"][name] + 0.125
    save_checkpoint(folder / "ckpt.pt", {k: v for k, v in ckpt.items() if k not in ("format", "versions")})
    card = json.loads(json.dumps(record.card)) | {"weights": {**record.card["weights"]}}
    card["weights"]["sha256"] = weights_sha256(ckpt["model"])
    import shutil

    shutil.copytree(folder, settings.models_dir / "m2")
    repository.register_model(store, "m2", manifest.root, card=card, actor="test")
    report = reproduce_model(store, settings, "m2")
    assert not report.matches and report.max_diff_parameter == name
    assert report.max_abs_diff == pytest.approx(0.125, abs=1e-6)
    cli = runner.invoke(app, ["model", "reproduce", "m2"])
    assert cli.exit_code == 1 and "DOES NOT MATCH" in cli.output and name in cli.output

    repository.register_model(store, "m3", manifest.root, card={"training": {"steps": 1}}, actor="test")
    missing = runner.invoke(app, ["model", "reproduce", "m3"])
    assert missing.exit_code == 2 and "no weights hash" in missing.output
