"""The attribution features of a manifest computed on Ray, sharded by items, are the local bytes.

A tiny model is trained for a few steps on a small planted set; its features are computed on one
machine (:func:`~accord.attribution.gradients.compute_features`) and as shards of whole batches
on a local Ray with two CPUs (:mod:`accord.attribution.sharded`), both with one PyTorch thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray
import torch

from accord.attribution.gradients import compute_features
from accord.attribution.influence import gradient_features
from accord.attribution.planted import build_planted_set
from accord.attribution.service import context_for
from accord.attribution.sharded import compute_features_on, feature_computer
from accord.execution import SerialExecutor
from accord.execution_ray import RayExecutor, start_ray


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """A Ray on this machine with two CPUs for the module."""
    start_ray("", workers=2)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A context over a small planted set and a tiny model trained for 10 steps (one thread)."""
    from accord.model.train import train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("sharded")
    ps = build_planted_set(root, background_pieces=6)
    train(ps.manifest, ps.loader, ps.catalog, root / "model", preset="tiny", steps=10, val_fraction=0.0, eval_every=10)
    yield context_for(root / "model", ps.manifest, ps.catalog, ps.media, k=64)
    torch.set_num_threads(threads)


def _args(ctx: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    args = (ctx.sequences(), ctx.model_dir, ctx.tokenizer())
    return args, {"k": 64, "seed": 0, "windows": 1, "max_members": 2, "device": torch.device("cpu"), "batch_size": 3}


def test_features_sharded_on_ray_are_the_features_computed_on_one_machine(ray_cluster: None, tiny: Any) -> None:
    args, kwargs = _args(tiny)
    local = compute_features(*args, **kwargs)
    seen: list[tuple[int, int]] = []
    on_ray = compute_features_on(RayExecutor(2, ""), *args, **kwargs, progress=lambda d, t: seen.append((d, t)))
    assert local.phi.shape[1] == len(tiny.isrcs) >= 10 and local.phi.shape[0] == 2
    assert on_ray.phi.tobytes() == local.phi.tobytes()
    assert on_ray.valid.tobytes() == local.valid.tobytes()
    assert on_ray.meta == local.meta and on_ray.members == local.members
    assert seen[-1] == (2 * int(local.valid.sum()), 2 * int(local.valid.sum()))
    assert np.abs(local.phi).sum() > 0  # real gradients, not an empty array compared with itself


@pytest.mark.parametrize("shards", [1, 2, 50])
def test_any_cut_into_shards_gives_the_same_features(tiny: Any, shards: int) -> None:
    args, kwargs = _args(tiny)
    local = compute_features(*args, **kwargs)
    assert compute_features_on(SerialExecutor(), *args, **kwargs, shards=shards).phi.tobytes() == local.phi.tobytes()


def test_accord_executor_ray_sends_the_features_of_a_model_to_the_cluster(
    ray_cluster: None, tiny: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert feature_computer() is compute_features
    monkeypatch.setenv("ACCORD_EXECUTOR", "ray")
    assert feature_computer() is not compute_features
    features = gradient_features(tiny)  # computes and stores the model's features through the cluster
    args, _ = _args(tiny)
    cpu = torch.device("cpu")
    local = compute_features(
        *args, k=tiny.k, seed=tiny.seed, windows=tiny.windows, max_members=tiny.max_members, device=cpu
    )
    assert features.phi.tobytes() == local.phi.tobytes()
    assert Path(tiny.index_dir / "gradients.npz").is_file()
