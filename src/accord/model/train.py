"""Training on a manifest, and only on it: verify → tokenize → split → train → card.

:func:`train` checks every file against the manifest's hashes before anything else (a
tampered file raises :class:`~accord.registry.media.TamperedMedia` and nothing is
trained or written), then reads media only by iterating the
:class:`~accord.datasets.loader.ManifestLoader`. The run is deterministic under its seed:
the weights start from ``torch.manual_seed(seed)`` and step ``n`` draws its batch from
``(seed, n)``, so a run resumed from ``ckpt.pt`` continues exactly where it stopped.

A run is bounded by **steps**, never by the clock, so the same command makes the same weights
on any machine of the same kind (same device type, dtype and thread count; see docs/model.md).
``minutes`` is a convenience only: it is turned into a step count before the first step, from
the step rate measured on a throw-away copy of the model (:func:`steps_for_minutes`), and the
card records both. Training runs with :func:`torch.use_deterministic_algorithms` and a fixed
number of PyTorch threads (recorded: the thread count changes the order of float reductions),
and the card records the sha256 of the final weights (:func:`accord.model.card.weights_sha256`).
Checkpoints are written on a timer (they never change the weights); weight snapshots for
attribution at fixed steps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from accord.datasets.loader import ManifestLoader
from accord.datasets.manifest import Manifest
from accord.errors import Conflict, ValidationError
from accord.model import card as model_card
from accord.model.budget import (  # noqa: F401 (PROBE_STEPS re-exported: it lived here)
    DEFAULT_STEPS,
    PROBE_STEPS,
    check_resumable,
    steps_for_minutes,
)
from accord.model.checkpoint import (
    FILENAME,
    SNAPSHOTS_KEPT,
    load_checkpoint,
    save_checkpoint,
    save_snapshot,
    versions,
)
from accord.model.data import IGNORE, Windows, batch_seed, split_pieces, tokenize_files
from accord.model.gpt import GPT, PRESETS, device_auto, padded_vocab
from accord.model.precision import autocast_dtype, native_cpu_bf16  # noqa: F401 (imported from here by others)
from accord.model.reproduce import reproducible
from accord.model.tokenizer import MusicTokenizer
from accord.registry.entities import Catalog

Progress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Hyperparameters:
    """How a model is trained (saved in its checkpoint and card).

    Attributes:
        preset: the network's shape (:data:`accord.model.gpt.PRESETS`).
        batch_size: windows per step; 8 on a CPU, where larger batches fall out of cache and run slower per token.
        lr: peak learning rate, reached after ``warmup_steps`` and decayed by a cosine to ``lr / 10``.
        weight_decay: AdamW decay on matrices (not on gains).
        warmup_steps: linear warm-up from ~0 (capped at a tenth of a step budget).
        grad_clip: the gradient's global norm is clipped to this.
        condition_dropout: chance that each condition token is replaced by its ``*_unknown`` token.
        transpose: chance that a training sample is transposed, key condition included, by an
            interval that keeps its notes in range (:class:`~accord.model.data.Transposer`).
        val_fraction: share of pieces held out (whole, by ISRC hash).
        eval_every: steps between validation evaluations.
        eval_windows: validation windows per evaluation (fixed, non-overlapping).
        checkpoint_every_s: seconds between checkpoints (and one at the end); they never change the weights.
        seed: the run's seed.
        steps: the step budget: the run stops there, whatever the machine's speed.
        minutes: the minutes asked for, if the budget was given as time (turned into ``steps`` before step 0).
        threads: PyTorch threads while training (``0``: the process's count when the run started, then recorded).
        deterministic: :func:`torch.use_deterministic_algorithms` while training.
    """

    preset: str = "demo"
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 0.1
    warmup_steps: int = 50
    grad_clip: float = 1.0
    condition_dropout: float = 0.1
    transpose: float = 0.0
    val_fraction: float = 0.1
    eval_every: int = 50
    eval_windows: int = 64
    checkpoint_every_s: float = 60.0
    seed: int = 0
    steps: int | None = None
    minutes: float | None = None
    threads: int = 0
    deterministic: bool = True


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced.

    Attributes:
        out_dir: the model folder (``ckpt.pt``, ``tokenizer.json``, ``model_card.*``, ``loss.png``).
        card: the model card.
        final_train_loss: mean training loss over the last evaluation interval.
        final_val_loss: validation loss at the last step (``nan`` without validation pieces).
        steps: optimizer steps taken in all (resumed runs included).
        seconds: training-loop time in all.
        tokens_per_second: tokens through the network per second of optimizer steps.
    """

    out_dir: Path
    card: dict[str, Any]
    final_train_loss: float
    final_val_loss: float
    steps: int
    seconds: float
    tokens_per_second: float


def learning_rate(step: int, hp: Hyperparameters, progress: float, warmup: int) -> float:
    """Linear warm-up, then a cosine from ``lr`` to ``lr / 10`` over the budget's ``progress`` (0..1)."""
    if step < warmup:
        return hp.lr * (step + 1) / warmup
    min_lr = hp.lr / 10
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))) * (hp.lr - min_lr)


@torch.no_grad()
def evaluate(
    model: GPT, windows: Windows, rows: Sequence[tuple[int, int]], batch_size: int, dtype: torch.dtype
) -> float:
    """Mean cross-entropy per target token over fixed windows."""
    if not rows:
        return float("nan")
    device = next(model.parameters()).device
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(rows), batch_size):
        x, y = windows.batch(rows[i : i + batch_size])
        x, y = x.to(device), y.to(device)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            logits, _ = model(x)
        total += float(F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), ignore_index=IGNORE, reduction="sum"))
        count += int((y != IGNORE).sum())
    model.train()
    return total / max(count, 1)


def train(
    manifest: Manifest,
    loader: ManifestLoader,
    catalog: Catalog,
    out_dir: Path,
    *,
    preset: str = "demo",
    minutes: float | None = None,
    steps: int | None = None,
    seed: int = 0,
    batch_size: int = 8,
    lr: float = 2e-3,
    val_fraction: float = 0.1,
    progress: Progress | None = None,
    resume: bool = True,
    eval_every: int = 50,
    checkpoint_every_s: float = 60.0,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
    threads: int | None = None,
    hyperparameters: Hyperparameters | None = None,
    transpose: float = 0.0,
) -> TrainResult:
    """Train a model on ``manifest``'s files into ``out_dir``; continue from ``out_dir/ckpt.pt`` when resuming.

    ``steps`` is the total over every run into ``out_dir`` (:data:`DEFAULT_STEPS` when neither
    it nor ``minutes`` is given); ``minutes`` alone is turned into steps before the first step
    (:func:`steps_for_minutes`; both: the smaller). ``hyperparameters``, when given, replaces
    every option it holds (``accord model reproduce`` passes a card's). ``dtype`` is the
    autocast dtype (default :func:`autocast_dtype`); ``threads`` the PyTorch threads while
    training (default: the process's count now).
    """
    emit = progress or (lambda event: None)
    hp = hyperparameters or Hyperparameters(
        preset=preset,
        batch_size=batch_size,
        lr=lr,
        val_fraction=val_fraction,
        eval_every=eval_every,
        checkpoint_every_s=checkpoint_every_s,
        seed=seed,
        steps=steps,
        minutes=minutes,
        threads=threads or 0,
        transpose=transpose,
    )
    if hp.preset not in PRESETS:
        msg = f"preset: {hp.preset!r} is not one of {', '.join(PRESETS)}"
        raise ValidationError(msg, field="preset", value=hp.preset)
    if loader.manifest.root != manifest.root:
        msg = f"loader: reads manifest {loader.manifest.root[:12]}, training was asked for {manifest.root[:12]}"
        raise Conflict(msg)
    if hp.steps is None and hp.minutes is None:
        hp = replace(hp, steps=DEFAULT_STEPS)
    if hp.steps is not None and hp.steps < 1:
        msg = f"steps: {hp.steps}; expected at least 1"
        raise ValidationError(msg, field="steps", value=hp.steps)
    if hp.minutes is not None and hp.minutes <= 0:
        msg = f"minutes: {hp.minutes}; expected a positive budget"
        raise ValidationError(msg, field="minutes", value=hp.minutes)
    if not 0.0 <= hp.transpose <= 1.0:
        msg = f"transpose: {hp.transpose}; expected a chance between 0 and 1"
        raise ValidationError(msg, field="transpose", value=hp.transpose)
    if hp.threads < 0:
        msg = f"threads: {hp.threads}; expected 0 (this process's count) or more"
        raise ValidationError(msg, field="threads", value=hp.threads)
    hp = replace(hp, threads=hp.threads or torch.get_num_threads())
    with reproducible(hp.threads, hp.deterministic):
        return _train(manifest, loader, catalog, out_dir, hp, emit, resume, device, dtype)


def _train(
    manifest: Manifest,
    loader: ManifestLoader,
    catalog: Catalog,
    out_dir: Path,
    hp: Hyperparameters,
    emit: Progress,
    resume: bool,
    device: torch.device | None,
    dtype: torch.dtype | None,
) -> TrainResult:
    wall_start = time.perf_counter()
    seed = hp.seed

    # 1. verify: every file against its manifest hash, before anything is learned or written
    emit({"stage": "verify", "items": len(manifest.items)})
    loader.verify()

    # 2. tokenize, reading media only through the loader
    tokenizer = MusicTokenizer.build([item.genre for item in manifest.items])
    pieces, skipped = tokenize_files(
        loader,
        tokenizer,
        catalog,
        total=len(loader),
        progress=lambda n, total: emit({"stage": "tokenize", "done": n, "total": total}),
    )
    if not pieces:
        msg = f"manifest {manifest.root[:12]}: none of its {len(manifest.items)} files could be tokenized"
        raise ValidationError(msg, field="manifest", value=manifest.root)
    # 3. split whole pieces by ISRC hash; pitch ranges come from the training pieces only
    train_pieces, val_pieces = split_pieces(pieces, hp.val_fraction)
    tokenizer = tokenizer.with_style_stats(
        ((p.genre, p.programs, p.tempo_bpm) for p in pieces), bodies=((p.genre, p.ids) for p in train_pieces)
    )
    config = replace(PRESETS[hp.preset], vocab_size=padded_vocab(tokenizer.vocab_size))
    train_windows = Windows(train_pieces, config.block_size, tokenizer)
    val_windows = Windows(val_pieces, config.block_size, tokenizer) if val_pieces else None
    val_rows = val_windows.tiles(hp.eval_windows) if val_windows else []
    emit(
        {
            "stage": "split",
            "train_pieces": len(train_pieces),
            "val_pieces": len(val_pieces),
            "train_windows": len(train_windows),
            "skipped": len(skipped),
        }
    )

    # 4. the model, fresh or from the checkpoint
    device = device or device_auto()
    dtype = dtype or autocast_dtype(device)
    torch.manual_seed(seed)
    model = GPT(config).to(device)
    optimizer = model.configure_optimizer(lr=hp.lr, weight_decay=hp.weight_decay)
    ckpt_path = out_dir / FILENAME
    state: dict[str, Any] = {
        "step": 0,
        "tokens_seen": 0,
        "seconds": 0.0,
        "step_seconds": 0.0,
        "curve": [],
        "recent": [],
    }
    ckpt = load_checkpoint(ckpt_path, map_location=device) if resume and ckpt_path.is_file() else None
    step_rate: float | None = None
    minutes = hp.minutes
    if minutes is not None:
        saved = (ckpt or {}).get("hyperparameters", {})
        if saved.get("minutes") == minutes and saved.get("steps") and hp.steps is None:
            hp = replace(hp, steps=int(saved["steps"]))  # a resumed time budget keeps the steps it was given
        else:
            by_time, step_rate = steps_for_minutes(
                minutes,
                model,
                lambda m, o, n: _step(m, o, train_windows, hp, n, device, dtype),
                lr=hp.lr,
                weight_decay=hp.weight_decay,
                device=device,
            )
            hp = replace(hp, steps=by_time if hp.steps is None else min(hp.steps, by_time))
            emit({"stage": "budget", "minutes": hp.minutes, "steps": hp.steps, "steps_per_second": step_rate})
    steps = int(hp.steps or DEFAULT_STEPS)
    if ckpt is not None:
        check_resumable(ckpt, manifest, tokenizer, config.to_dict(), hp)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["rng"]["torch"].cpu())
        state = {k: ckpt[k] for k in state}
        emit({"stage": "resume", "step": state["step"]})
    tokenizer.save(out_dir)

    def save(snapshot: bool) -> None:
        save_checkpoint(
            ckpt_path,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "config": config.to_dict(),
                "hyperparameters": asdict(hp),
                "tokenizer": tokenizer.to_dict(),
                "manifest_root": manifest.root,
                "rng": {"torch": torch.get_rng_state()},
                **state,
            },
        )
        event = {"stage": "checkpoint", "step": state["step"], "path": str(ckpt_path)}
        if snapshot:
            event["snapshot"] = str(save_snapshot(out_dir, state["step"], model.state_dict()))
        emit(event)

    # 5. the loop: bounded by steps only; snapshots at fixed steps, checkpoints on a timer
    warmup = min(hp.warmup_steps, max(1, steps // 10))
    snapshot_every = max(1, steps // SNAPSHOTS_KEPT)
    tokens_per_step = hp.batch_size * config.block_size
    recent: list[float] = state["recent"]  # train losses since the last curve point
    loop_start = time.perf_counter() - state["seconds"]
    last_save = time.perf_counter()
    model.train()
    while state["step"] < steps:
        step = state["step"]
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, hp, step / steps, warmup)
        t0 = time.perf_counter()
        loss = _step(model, optimizer, train_windows, hp, step, device, dtype)
        recent.append(loss)
        state["step"] = step + 1
        state["tokens_seen"] += tokens_per_step
        state["step_seconds"] += time.perf_counter() - t0
        state["seconds"] = time.perf_counter() - loop_start
        if state["step"] % 10 == 0:
            emit(
                {
                    "stage": "train",
                    "step": state["step"],
                    "steps": steps,
                    "fraction": state["step"] / steps,
                    "loss": recent[-1],
                    "lr": optimizer.param_groups[0]["lr"],
                    "seconds": state["seconds"],
                    "tokens_per_second": state["tokens_seen"] / max(state["step_seconds"], 1e-9),
                }
            )
        if state["step"] % hp.eval_every == 0:
            _record(state, recent, model, val_windows, val_rows, hp.batch_size, dtype, emit)
            recent.clear()
        at_mark = state["step"] % snapshot_every == 0 and state["step"] < steps
        if at_mark or time.perf_counter() - last_save >= hp.checkpoint_every_s:
            save(snapshot=at_mark)
            last_save = time.perf_counter()
    if recent or not state["curve"]:
        _record(state, recent, model, val_windows, val_rows, hp.batch_size, dtype, emit)
        recent.clear()
    save(snapshot=True)

    # 6. the model card
    final = state["curve"][-1]
    card = {
        "format": model_card.FORMAT,
        "manifest": model_card.manifest_summary(manifest),
        "model": {"preset": hp.preset, "config": config.to_dict(), "parameters": model.num_params(non_embedding=False)},
        "hyperparameters": asdict(hp),
        "weights": model_card.weights_record(model.state_dict()),
        "data": {
            "train_pieces": len(train_pieces),
            "val_pieces": len(val_pieces),
            "train_tokens": int(sum(len(p.ids) for p in train_pieces)),
            "val_tokens": int(sum(len(p.ids) for p in val_pieces)),
            "keys_from_catalog": sum(p.key_from == "catalog" for p in pieces),
            "keys_estimated": sum(p.key_from == "estimated" for p in pieces),
            "skipped": [{"isrc": s.isrc, "reason": s.reason} for s in skipped],
            "val_isrcs": [p.isrc for p in val_pieces],
            "style_programs": {s: list(p) for s, p in tokenizer.style_programs.items()},
            "style_tempo_bpm": dict(tokenizer.style_tempo_bpm),
            "style_ensembles": tokenizer.to_dict()["style_ensembles"],
        },
        "training": {
            "steps": state["step"],
            "budget": "steps" if hp.minutes is None else f"{hp.minutes:g} minutes, turned into {steps} steps",
            "measured_steps_per_second": None if step_rate is None else round(step_rate, 3),
            "seconds": round(state["seconds"], 3),
            "step_seconds": round(state["step_seconds"], 3),
            "tokens_seen": state["tokens_seen"],
            "tokens_per_second": round(state["tokens_seen"] / max(state["step_seconds"], 1e-9), 1),
            "wall_seconds_this_run": round(time.perf_counter() - wall_start, 3),
        },
        "final_train_loss": final["train_loss"],
        "final_val_loss": final["val_loss"],
        "loss_curve": state["curve"],
        "tokenizer": {"vocab_size": tokenizer.vocab_size, "styles": list(tokenizer.styles), "file": "tokenizer.json"},
        "hardware": model_card.hardware(device, dtype) | {"deterministic": hp.deterministic},
        "code": model_card.code_version(),
        "versions": versions(),
        "seed": seed,
    }
    model_card.write_card(out_dir, card)
    emit({"stage": "done", "step": state["step"], "val_loss": final["val_loss"], "weights": card["weights"]["sha256"]})
    return TrainResult(
        out_dir=out_dir,
        card=card,
        final_train_loss=float("nan") if final["train_loss"] is None else float(final["train_loss"]),
        final_val_loss=float("nan") if final["val_loss"] is None else float(final["val_loss"]),
        steps=state["step"],
        seconds=state["seconds"],
        tokens_per_second=card["training"]["tokens_per_second"],
    )


def _step(
    model: GPT,
    optimizer: torch.optim.Optimizer,
    windows: Windows,
    hp: Hyperparameters,
    step: int,
    device: torch.device,
    dtype: torch.dtype,
) -> float:
    """One optimizer step on step ``step``'s batch (drawn from ``(seed, step)``); its training loss."""
    x, y = windows.random_batch(batch_seed(hp.seed, step), hp.batch_size, hp.condition_dropout, hp.transpose)
    x, y = x.to(device), y.to(device)
    with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        _, loss = model(x, y)
    assert loss is not None  # targets were given
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), hp.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.item())


def _record(
    state: dict[str, Any],
    recent: list[float],
    model: GPT,
    val_windows: Windows | None,
    val_rows: Sequence[tuple[int, int]],
    batch_size: int,
    dtype: torch.dtype,
    emit: Progress,
) -> None:
    """Append a loss-curve point: mean train loss since the last point, and the validation loss now."""
    val = evaluate(model, val_windows, val_rows, batch_size, dtype) if val_windows else float("nan")
    train_loss = float(np.mean(recent)) if recent else (state["curve"][-1]["train_loss"] if state["curve"] else None)
    point = {
        "step": state["step"],
        "train_loss": None if train_loss is None else round(train_loss, 5),
        "val_loss": None if math.isnan(val) else round(val, 5),
        "seconds": round(state["seconds"], 3),
        "tokens_seen": state["tokens_seen"],
    }
    state["curve"].append(point)
    emit({"stage": "eval", **point})
