"""The attribution features of a manifest computed on a cluster: sharded by items, merged in item order.

:func:`~accord.attribution.gradients.compute_features` takes every manifest item's projected
gradient under every member, :data:`~accord.attribution.gradients.BATCH` sequences per vectorised
pass, the items sorted by length so that a batch's padding is short. Here the same batches are cut
into shards (a run of whole batches under one member), each shard computed by a task on an
:mod:`accord.execution` backend (Ray with ``ACCORD_EXECUTOR=ray``), and each shard's rows written
back to their item's place. A batch is never split or regrouped, and a member's dropout masks are
seeded per batch, so every row is computed exactly as on one machine: the merged features are the
same bytes (with the same PyTorch thread count: a different count can change float rounding).

A task loads its member's network itself (from the model folder, on a path every node reads) and
rebuilds the seeded projection; shards are sized so that each worker gets a few, which keeps that
load a small part of the work.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import partial
from itertools import pairwise
from pathlib import Path

import numpy as np
import torch

from accord.attribution.gradients import (
    BATCH,
    GradientFeatures,
    Projector,
    file_sha256,
    load_member,
    members,
    n_params,
    projected_gradients,
)
from accord.execution import Executor, get_executor
from accord.model.checkpoint import FILENAME, load_checkpoint
from accord.model.gpt import GPTConfig
from accord.model.tokenizer import MusicTokenizer

SHARDS_PER_WORKER = 3
"""Shards per worker and member: enough to balance uneven batch costs, few enough that loading the
member's network in each task stays cheap."""

Shard = tuple[Path, int, tuple[tuple[tuple[int, tuple[int, ...]], ...], ...], MusicTokenizer, int, int, int, int, str]
"""A task: model folder, member index, its batches of (item row, token ids), tokenizer, k, seed,
windows, max_members, device."""


def shard_features(job: Shard) -> tuple[int, list[int], np.ndarray, int]:
    """One shard's projected gradients: ``(member index, item rows, (rows, k) float32, parameters)``."""
    model_dir, m, batches, tokenizer, k, seed, windows, max_members, device_name = job
    device = torch.device(device_name)
    config = GPTConfig(**load_checkpoint(model_dir / FILENAME)["config"])
    member = members(model_dir, max_members)[m]
    model = load_member(member, config, device)
    projector = Projector(n_params(model), k, seed, device)
    rows = [i for batch in batches for i, _ in batch]
    parts = [projected_gradients(model, member, projector, [ids for _, ids in b], tokenizer, windows) for b in batches]
    out = np.concatenate(parts) if parts else np.zeros((0, k), np.float32)
    return m, rows, out, n_params(model)


def compute_features_on(
    executor: Executor,
    sequences: Sequence[Sequence[int] | None],
    model_dir: Path,
    tokenizer: MusicTokenizer,
    *,
    k: int,
    seed: int,
    windows: int,
    max_members: int,
    device: torch.device,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = BATCH,
    shards: int = 0,
) -> GradientFeatures:
    """:func:`~accord.attribution.gradients.compute_features` with its batches run as tasks on
    ``executor`` (``shards`` per member; 0: :data:`SHARDS_PER_WORKER` per CPU this machine has)."""
    chosen = members(model_dir, max_members)
    valid = np.array([s is not None for s in sequences], dtype=bool)
    # the batches compute_features makes: items sorted by length, then by row
    todo = sorted(
        ((i, tuple(ids)) for i, ids in enumerate(sequences) if ids is not None), key=lambda t: (len(t[1]), t[0])
    )
    batches = [tuple(todo[s : s + batch_size]) for s in range(0, len(todo), batch_size)]
    per_member = max(1, min(len(batches), shards or SHARDS_PER_WORKER * _cpus()))
    cuts = [len(batches) * j // per_member for j in range(per_member + 1)]
    jobs: list[Shard] = [
        (model_dir, m, tuple(batches[a:b]), tokenizer, k, seed, windows, max_members, str(device))
        for m in range(len(chosen))
        for a, b in pairwise(cuts)
        if a < b
    ]
    total = len(chosen) * len(todo)
    sizes = [sum(len(b) for b in job[2]) for job in jobs]
    finished = np.cumsum([0, *sizes])

    def done(n: int, _: int) -> None:
        if progress is not None:
            progress(int(finished[n]), total)

    phi = np.zeros((len(chosen), len(sequences), k), dtype=np.float32)
    params = 0  # every member has the same network: any shard's count is each one's
    for m, rows, part, count in executor.map(shard_features, jobs, on_done=done):
        phi[m, rows], params = part, count
    meta = {
        "k": k,
        "seed": seed,
        "windows": windows,
        "members": [mb.to_dict() for mb in chosen],
        "checkpoint_sha256": file_sha256(model_dir / FILENAME),
        "params": params,
    }
    return GradientFeatures(phi, valid, tuple(chosen), meta)


def _cpus() -> int:
    return os.cpu_count() or 1


def feature_computer(workers: int = 0) -> Callable[..., GradientFeatures]:
    """How :func:`accord.attribution.influence.gradient_features` computes features: on this machine
    (:func:`~accord.attribution.gradients.compute_features`) unless ``ACCORD_EXECUTOR`` names a
    backend that leaves it, then sharded on that backend (:func:`compute_features_on`)."""
    from accord.attribution.gradients import compute_features
    from accord.settings import get_settings

    settings = get_settings()
    if settings.executor in ("local", "serial"):
        return compute_features
    return partial(compute_features_on, get_executor(settings.executor, workers or settings.workers))
