"""A training run's budget: how many steps it takes, and which checkpoint may continue it.

A run is bounded by **steps**, never by the clock (docs/model.md, Reproducibility).
``minutes`` is a convenience only: :func:`steps_for_minutes` turns them into a step count
before the first step, from the step rate measured on a throw-away copy of the model, and
the card records both. :func:`check_resumable` decides whether a checkpoint found in the
output folder belongs to the same run, so a resumed run continues exactly where the
interrupted one stopped and never mixes two runs' weights.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from accord.errors import Conflict
from accord.model.gpt import GPT

if TYPE_CHECKING:  # train.py imports this module; the dataclass is only read here
    from accord.datasets.manifest import Manifest
    from accord.model.tokenizer import MusicTokenizer
    from accord.model.train import Hyperparameters

DEFAULT_STEPS = 1000
"""Steps when neither ``steps`` nor ``minutes`` is given."""
PROBE_STEPS = 8
"""Timed steps (after two untimed ones) on a throw-away copy of the model when ``minutes`` is turned into steps."""
PROBE_WARMUP = 2
"""Untimed steps before the probe's clock starts (the first steps pay for allocation and kernel choice)."""

StepFn = Callable[[GPT, torch.optim.Optimizer, int], float]
"""One optimizer step of the real run on a model, with an optimizer, at a step number; its training loss."""


def steps_for_minutes(
    minutes: float,
    model: GPT,
    step: StepFn,
    *,
    lr: float,
    weight_decay: float,
    device: torch.device,
) -> tuple[int, float]:
    """``minutes`` of training as a step count, and the measured steps per second.

    Runs ``step`` :data:`PROBE_WARMUP` times untimed, then times :data:`PROBE_STEPS` steps,
    on a copy of ``model`` with a fresh optimizer (``lr``, ``weight_decay``), then throws both
    away. PyTorch's RNG is restored, so the real run starts from exactly where it would have
    without the probe (tested: a run given the probe's step count directly makes the same
    weights).
    """
    rng = torch.get_rng_state()
    probe = copy.deepcopy(model)
    optimizer = probe.configure_optimizer(lr=lr, weight_decay=weight_decay)
    probe.train()
    for n in range(PROBE_WARMUP):
        step(probe, optimizer, n)
    t0 = time.perf_counter()
    for n in range(PROBE_STEPS):
        step(probe, optimizer, PROBE_WARMUP + n)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    rate = PROBE_STEPS / max(time.perf_counter() - t0, 1e-9)
    torch.set_rng_state(rng)
    del probe, optimizer
    return max(1, int(minutes * 60.0 * rate)), rate


def check_resumable(
    ckpt: dict[str, Any],
    manifest: Manifest,
    tokenizer: MusicTokenizer,
    config: dict[str, Any],
    hp: Hyperparameters,
) -> None:
    """A checkpoint continues only the same run: same manifest, tokenizer, network and seed.

    Raises :class:`~accord.errors.Conflict` naming every difference at once.
    """
    problems = []
    if ckpt.get("manifest_root") != manifest.root:
        problems.append(f"it was trained on manifest {str(ckpt.get('manifest_root'))[:12]}, not {manifest.root[:12]}")
    if ckpt.get("config") != config:
        problems.append(f"its network is {ckpt.get('config')}, not {config}")
    if ckpt.get("tokenizer", {}).get("vocab") != tokenizer.to_dict()["vocab"]:
        problems.append("its tokenizer's vocabulary differs")
    saved = ckpt.get("hyperparameters", {})
    for name in ("seed", "batch_size", "lr"):
        if saved.get(name) != getattr(hp, name):
            problems.append(f"its {name} is {saved.get(name)!r}, not {getattr(hp, name)!r}")
    if problems:
        msg = "checkpoint: cannot resume: " + "; ".join(problems) + " (use another out_dir, or resume=False)"
        raise Conflict(msg)
