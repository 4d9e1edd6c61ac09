"""Attribution: weights that sum exactly, name only manifest items, reach the right holders,
and find planted canaries far above chance on a tiny model."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from accord.attribution.contract import PPM_WHOLE, attribution_problems
from accord.attribution.evaluate import RANDOM, canary_table, chance, steer
from accord.attribution.methods import (
    AttributionContext,
    Query,
    get_method,
    method_names,
    register_method,
    unregister_method,
)
from accord.attribution.planted import build_planted_set
from accord.attribution.service import attribute, context_for
from accord.attribution.weights import Weighting, aggregate, build_attribution, weigh
from accord.datasets.manifest import Manifest, ManifestHeader, ManifestItem
from accord.datasets.merkle import MerkleTree
from accord.errors import ValidationError
from accord.provenance.credential import credential_problems
from accord.registry.entities import Catalog, Recording, Share, Use, Work
from accord.timeutil import parse_instant

# a small manifest and catalog written in code -------------------------------------------


def _manifest(n: int) -> tuple[Manifest, Catalog]:
    """``n`` items; item k embodies one work (two for every third item); co-owned masters and works."""
    items, recordings, works = [], [], []
    for k in range(n):
        isrc = f"ZZTST26{k:05d}"
        work_ids = (f"W-{k:04d}",) if k % 3 else (f"W-{k:04d}", f"W-{k:04d}B")
        masters = (
            (Share("P-LABEL-A", 1_000_000),) if k % 2 else (Share("P-LABEL-A", 333_334), Share("P-LABEL-B", 666_666))
        )
        recordings.append(Recording(isrc=isrc, title=f"Track {k}", works=work_ids, shares=masters))
        for w in work_ids:
            pubs = (
                (Share("P-PUB-A", 500_000), Share("P-PUB-B", 500_000)) if k % 4 == 0 else (Share("P-PUB-A", 1_000_000),)
            )
            works.append(Work(work_id=w, title=f"Song {w}", shares=pubs))
        items.append(
            ManifestItem(isrc, "0" * 64, "midi", 1, 1000, (), ("P-LABEL-A",), ("P-PUB-A",), (), work_ids, "reel")
        )
    header = ManifestHeader(Use.TRAIN, parse_instant("2026-11-01T00:00:00Z", field="as_of"), "US")
    manifest = Manifest(header, tuple(items), (), MerkleTree([i.leaf() for i in items]).root.hex())
    return manifest, Catalog.of(recordings=recordings, works=works)


def _credential_from(scores: np.ndarray, floor: float = 0.2) -> dict[str, Any]:
    manifest, catalog = _manifest(len(scores))
    isrcs = [i.isrc for i in manifest.items]
    w = weigh(scores, isrcs, floor=floor, causal=True)
    return build_attribution(
        method="trak", method_version="t/1", scores=scores, weighting=w, manifest=manifest, catalog=catalog
    ).to_credential()


# weights: exact, non-negative, honest -------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False), min_size=1, max_size=60),
    st.sampled_from([0.0, 0.2, 0.5]),
)
def test_weights_are_non_negative_and_sum_with_the_unattributed_share_to_exactly_one_million(scores, floor):
    data = _credential_from(np.array(scores), floor)
    assert attribution_problems(data) == []
    weights = [i["weight_ppm"] for i in data["items"]]
    assert all(w > 0 for w in weights)
    assert sum(weights) + data["unattributed_ppm"] == PPM_WHOLE
    assert data["unattributed_ppm"] >= floor * PPM_WHOLE - len(weights)  # the method's floor is never credited
    manifest, _ = _manifest(len(scores))
    assert {i["isrc"] for i in data["items"]} <= {i.isrc for i in manifest.items}


def test_works_and_holders_on_each_side_sum_to_the_items_weights_when_owners_are_known():
    scores = np.random.default_rng(1).normal(scale=0.1, size=30)
    scores[[0, 3, 4, 7]] = [50.0, 40.0, 30.0, 20.0]  # co-owned masters, two-work items, split publishers
    data = _credential_from(scores)
    total = sum(i["weight_ppm"] for i in data["items"])
    assert total > 0 and len(data["items"]) == 4
    assert sum(w["weight_ppm"] for w in data["works"]) == total
    for side in ("master", "publishing"):
        assert sum(h["weight_ppm"] for h in data["holders"][side]) == total
    shares = {h["party_id"]: h["weight_ppm"] for h in data["holders"]["master"]}
    assert set(shares) == {"P-LABEL-A", "P-LABEL-B"}
    assert shares["P-LABEL-B"] > 0  # item 0 and 4 are co-owned 1/3 : 2/3


def test_a_flat_score_profile_attributes_nothing_and_is_not_reliable():
    data = _credential_from(np.ones(25))
    assert data["items"] == [] and data["unattributed_ppm"] == PPM_WHOLE and data["reliable"] is False


def test_one_outstanding_item_is_credited_up_to_the_floor_and_is_reliable():
    scores = np.random.default_rng(0).normal(size=200)
    scores[17] = 50.0
    data = _credential_from(scores, floor=0.2)
    assert data["items"][0]["isrc"] == "ZZTST2600017"
    assert data["reliable"] is True
    assert 0.2 * PPM_WHOLE <= data["unattributed_ppm"] < PPM_WHOLE


def test_the_credential_contract_refuses_weights_that_do_not_add_up():
    scores = np.random.default_rng(2).normal(scale=0.1, size=20)
    scores[[1, 2]] = [10.0, 8.0]
    data = _credential_from(scores)
    broken = json.loads(json.dumps(data))
    broken["unattributed_ppm"] += 1
    assert any("exactly 1000000" in p for p in attribution_problems(broken))
    broken = json.loads(json.dumps(data))
    broken["items"].reverse()
    assert any("not sorted" in p for p in attribution_problems(broken))
    broken = json.loads(json.dumps(data))
    broken["extra"] = 1
    assert any("unexpected field" in p for p in attribution_problems(broken))


def test_a_credential_accepts_a_computed_or_pending_attribution_and_refuses_a_broken_one():
    scores = np.zeros(20)
    scores[3] = 9.0
    base = {
        "output_id": "OUT-1",
        "model_id": "m",
        "manifest_root": "ab" * 32,
        "prompt": {},
        "seed": 1,
        "created": "2026-11-01T12:00:00Z",
        "generator": "Accord",
        "guard": {"status": "pending"},
        "media_sha256": {"midi": "0" * 64},
    }
    assert credential_problems({**base, "attribution": _credential_from(scores)}) == []
    assert credential_problems({**base, "attribution": {"status": "pending"}}) == []
    bad = {**_credential_from(scores), "unattributed_ppm": -1}
    assert credential_problems({**base, "attribution": bad})


def test_scores_that_are_not_one_per_item_are_refused():
    with pytest.raises(ValidationError, match="one score per item"):
        weigh(np.zeros(3), ["A", "B"], floor=0.2, causal=True)


def test_aggregation_ignores_nothing_it_is_given():
    manifest, catalog = _manifest(6)
    w = Weighting(
        indices=(0, 5),
        ppm=(600_000, 100_000),
        unattributed_ppm=300_000,
        reliable=False,
        top_z=9,
        significant=2,
        attributed_fraction=0.7,
    )
    items, works, master, publishing = aggregate(w, manifest, catalog)
    assert [i.isrc for i in items] == ["ZZTST2600000", "ZZTST2600005"]
    assert sum(p for _, p in works) == sum(p for _, p in master) == sum(p for _, p in publishing) == 700_000


# the registry --------------------------------------------------------------------------


def test_every_builtin_method_is_registered_and_a_new_one_registers_the_same_way():
    assert {"trak", "tracin", "gradsim", "embedding"} <= set(method_names())

    @dataclass(frozen=True)
    class FirstItem:
        name: str = "first-item-test"
        version: str = "1"
        floor: float = 0.9
        causal: bool = False
        description: str = "credits the first item"

        def index(self, ctx: AttributionContext, progress: Any = None) -> dict[str, Any]:
            return {}

        def scores(self, ctx: AttributionContext, query: Query) -> np.ndarray:
            return np.eye(len(ctx.isrcs))[0]

    register_method(FirstItem())
    try:
        assert get_method("first-item-test").floor == 0.9
    finally:
        unregister_method("first-item-test")
    assert "first-item-test" not in method_names()
    with pytest.raises(ValidationError, match="is not one of"):
        get_method("no-such-method")


# planted canaries on a tiny model (trained once for the module) -------------------------


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory):
    import torch

    from accord.model.sample import load_model
    from accord.model.train import train

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("planted")
    ps = build_planted_set(root, background_pieces=24)
    train(
        ps.manifest, ps.loader, ps.catalog, root / "model", preset="tiny", steps=200, val_fraction=0.0, eval_every=200
    )
    ctx = context_for(root / "model", ps.manifest, ps.catalog, ps.media, k=1024)
    queries = steer(load_model(root / "model"), ps)
    return ps, ctx, queries


@pytest.mark.slow
def test_outputs_steered_toward_planted_canaries_attribute_them_far_above_chance(planted):
    _, ctx, queries = planted
    rows = {r.method: r for r in canary_table(ctx, queries, random_draws=200)}
    exact = chance(queries, len(ctx.isrcs))
    assert rows[RANDOM].precision_at_1 < 0.2 and exact["precision_at_1"] < 0.1
    assert rows["trak"].precision_at_1 >= 0.75 and rows["trak"].recall_at_10 >= 0.75
    for name in ("trak", "tracin", "gradsim", "embedding"):
        assert rows[name].precision_at_1 >= 5 * exact["precision_at_1"], name
        assert rows[name].recall_at_10 >= 2 * exact["recall_at_10"], name


@pytest.mark.slow
def test_a_planted_attribution_names_only_manifest_items_and_its_holders_add_up(planted):
    ps, ctx, queries = planted
    manifest_isrcs = {i.isrc for i in ps.manifest.items}
    for method in ("trak", "embedding"):
        result = attribute(ctx, queries[-1].query, method)  # a motif canary
        data = result.to_credential()
        assert attribution_problems(data) == []
        assert {i["isrc"] for i in data["items"]} <= manifest_isrcs
        total = sum(i["weight_ppm"] for i in data["items"])
        assert total + data["unattributed_ppm"] == PPM_WHOLE
        for side in ("master", "publishing"):
            assert sum(h["weight_ppm"] for h in data["holders"][side]) == total
        assert data["items"] and data["items"][0]["isrc"] in ps.groups[queries[-1].name]
    # the index is stored with what it was computed from, and found again
    meta = json.loads((ctx.model_dir / "attribution" / "gradients.json").read_text())
    assert meta["manifest_root"] == ps.manifest.root and meta["k"] == 1024


@pytest.mark.slow
def test_accord_attribute_reads_any_midi_file_against_a_registered_model(store, settings, tmp_path, tmp_path_factory):
    from accord.cli import app
    from accord.datasets import service
    from accord.registry.importer import import_delivery
    from accord.signing import ensure_operator_key
    from tests.deliveries import catalog_agreement, small_catalog, write_delivery
    from tests.test_studio import tiny_model, tune

    doc = small_catalog()
    doc["agreements"].append(catalog_agreement("AGR-P2", "P-PUB2", "publishing"))
    for rec in doc["recordings"]:
        rec["genre"] = "reel"
        rec["media"][0].pop("sha256", None)
    import_delivery(store, write_delivery(tmp_path / "d", doc, {"media/a.mid": tune(1), "media/b.mid": tune(2)}))
    manifest, _, _ = service.build(
        store, ensure_operator_key(settings.home)[0], use="train", as_of=store.clock(), territory="GB"
    )
    record, _ = tiny_model(store, settings, manifest.root, tmp_path_factory)  # trained once per session
    piece = tmp_path / "piece.mid"
    piece.write_bytes(tune(1))
    runner = CliRunner()
    result = runner.invoke(
        app, ["attribute", str(piece), "--model", record.model_id, "--method", "embedding", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert attribution_problems(data) == [] and data["method"] == "embedding"
    assert {i["isrc"] for i in data["items"]} <= {i.isrc for i in manifest.items}
    result = runner.invoke(app, ["attribution", "index", "--model", record.model_id, "--json"])
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.output)) == {"trak", "tracin", "gradsim", "embedding"}
    missing = runner.invoke(app, ["attribute", str(tmp_path / "nope.mid"), "--model", record.model_id])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    result = runner.invoke(app, ["attribution", "evaluate", "--model", record.model_id, "--outputs", "1", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [r["method"] for r in report["canaries"]][-1] == "random" and report["setup"]["outputs"] == 1
    assert runner.invoke(app, ["attribution", "evaluate"]).exit_code == 2  # neither --model nor --planted
    # a released output carries the computed attribution in its signed credential
    from accord.outputs import store as outputs
    from accord.outputs.plans import parse_plans
    from accord.outputs.studio import Prompt, generate_output
    from accord.provenance.verify import verify_file

    outputs.add_creator(store, "ana", "free", "GB", parse_plans(settings.plans))
    made = generate_output(
        store, settings, model_id=record.model_id, creator_id="ana", prompt=Prompt(style="reel", bars=4), seed=5
    )
    attribution = made.output.credential["attribution"]
    assert attribution["status"] == "computed" and attribution["method"] == settings.attribution_method
    assert attribution_problems(attribution) == []
    key = ensure_operator_key(settings.home)[0].public_hex
    assert verify_file(made.paths["credential"], public_key_hex=key, media=made.paths["midi"]).valid


# batched per-example gradients ----------------------------------------------------------


@pytest.mark.parametrize("precision", ["fp32", "native"])
@pytest.mark.parametrize("dropout_seed", [None, 2])
def test_batched_projected_gradients_equal_one_backward_pass_per_sequence(dropout_seed, precision, monkeypatch):
    import torch

    import accord.attribution.gradients as gradients
    from accord.attribution.gradients import Member, Projector, n_params, projected_gradient, projected_gradients
    from accord.model.conditions import N_CONDITIONS
    from accord.model.gpt import GPT, PRESETS, padded_vocab
    from accord.model.tokenizer import MusicTokenizer

    bf16 = gradients._autocast(torch.device("cpu")) != torch.float32
    if precision == "fp32":  # the arithmetic itself: equal to float rounding
        monkeypatch.setattr(gradients, "_autocast", lambda _device: torch.float32)
    elif not bf16:  # no native bf16 here: the bf16 path is still checked (emulated, slower, same arithmetic)
        monkeypatch.setattr(gradients, "_autocast", lambda _device: torch.bfloat16)
    torch.manual_seed(0)
    tok = MusicTokenizer(styles=("reel",))
    config = replace(PRESETS["tiny"], vocab_size=padded_vocab(tok.vocab_size), block_size=32, dropout=0.1)
    model = GPT(config)
    model = model.train() if dropout_seed is not None else model.eval()
    member = Member("m", Path("unused"), 1, 1e-3, dropout_seed)
    rng = np.random.default_rng(0)
    cond = list(range(tok.condition_offset, tok.condition_offset + N_CONDITIONS))
    seqs = []
    for length in (5, 12, 40, 70, 20, 9):  # shorter and longer than a window; one or two windows
        body = rng.integers(0, tok.condition_offset, length)
        body[body == tok.pad_id] = tok.bar_id
        body[::8] = tok.bar_id
        seqs.append(tuple(cond + body.tolist()))
    seqs.append(tuple(cond))  # conditions only: no target, a zero gradient
    projector = Projector(n_params(model), 64, 7, torch.device("cpu"))
    ref = np.stack([projected_gradient(model, member, projector, s, tok, 2) for s in seqs])
    got = projected_gradients(model, member, projector, seqs, tok, 2)
    assert got.shape == (len(seqs), 64) and np.abs(ref).max() > 0
    if precision == "fp32":
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5 * float(np.abs(ref).max()))
    else:  # bf16 autocast (as training ran): batching changes the rounding, not the direction
        rows = slice(0, len(seqs) - 1)
        cosine = np.sum(got[rows] * ref[rows], axis=1) / (
            np.linalg.norm(got[rows], axis=1) * np.linalg.norm(ref[rows], axis=1)
        )
        assert cosine.min() > 0.999, cosine
    assert not got[-1].any()
