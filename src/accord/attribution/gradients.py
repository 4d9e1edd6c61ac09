"""Projected per-example gradients of the model's loss: the features TRAK, TracIn and gradient similarity share.

For each *member* (a training checkpoint, or the final weights under one fixed dropout seed
when the model folder has no snapshots) and each sequence (a manifest item's tokens, or an
output's), the gradient of the mean next-token loss over the sequence's first ``windows``
bar-aligned windows is taken with respect to every parameter, then projected to ``k``
dimensions by a seeded sparse Rademacher projection (a count sketch: each parameter is sent to
one of ``k`` coordinates with a random sign, Kane & Nelson's sparse Johnson-Lindenstrauss
transform with one non-zero per column). Inner products are preserved in expectation with the
same ``O(1/k)`` variance as a dense Gaussian projection, and the projection costs one
``index_add`` per gradient and ``P`` small integers of memory, where a dense ``P × k`` matrix for
the 3.4M-parameter demo model would be 28 GB. The index is built :data:`BATCH` sequences at a
time (:func:`projected_gradients`, per-example gradients by ``torch.func``); a query takes one
backward pass (:func:`projected_gradient`); the two agree to float rounding.

Shapes: P parameters, k projected dimensions, n manifest items, M members, W windows, T tokens.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from accord.errors import NotFound
from accord.model.checkpoint import FILENAME, load_checkpoint
from accord.model.conditions import N_CONDITIONS
from accord.model.data import IGNORE
from accord.model.gpt import GPT, GPTConfig
from accord.model.tokenizer import MusicTokenizer

SNAPSHOT_DIR = "snapshots"
DROPOUT = 0.1
"""Dropout rate of the dropout-ensemble members (used when a model folder has no snapshots)."""


@dataclass(frozen=True)
class Member:
    """One model whose gradients are taken.

    Attributes:
        name: ``step-0000400`` for a snapshot or the final checkpoint, ``dropout-<seed>`` for an ensemble member.
        path: the checkpoint file it loads.
        step: the optimizer step of its weights.
        lr: the learning rate at that step (TracIn's weight).
        dropout_seed: the seed of its fixed dropout masks, ``None`` for the weights as trained.
    """

    name: str
    path: Path
    step: int
    lr: float
    dropout_seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "step": self.step, "lr": self.lr, "dropout_seed": self.dropout_seed}


def _lr_at(ckpt: dict[str, Any], step: int) -> float:
    """The learning rate the training schedule gave at ``step`` (warm-up, then cosine)."""
    from accord.model.train import Hyperparameters, learning_rate

    saved = ckpt.get("hyperparameters") or {}
    hp = Hyperparameters(**{k: v for k, v in saved.items() if k in Hyperparameters.__dataclass_fields__})
    total = hp.steps or int(ckpt.get("step", step)) or 1
    warmup = min(hp.warmup_steps, max(1, total // 10)) if hp.steps is not None else hp.warmup_steps
    return float(learning_rate(step, hp, step / total, warmup))


def members(model_dir: Path, max_members: int = 3) -> list[Member]:
    """Up to ``max_members`` members: snapshots from the later three quarters of training, evenly
    spaced and ending with the final checkpoint; without snapshots, the final weights and
    ``max_members - 1`` dropout members."""
    final_path = model_dir / FILENAME
    if not final_path.is_file():
        msg = f"model: no checkpoint at {final_path} (train the model first)"
        raise NotFound(msg)
    final = load_checkpoint(final_path)
    final_step = int(final.get("step", 0))
    snaps: dict[int, Path] = {}
    for path in sorted((model_dir / SNAPSHOT_DIR).glob("step-*.pt")):
        try:
            snaps[int(path.stem.removeprefix("step-"))] = path
        except ValueError:
            continue
    snaps[final_step] = final_path  # the final weights win over a snapshot of the same step
    late = sorted(s for s in snaps if s >= final_step // 4)
    if len(late) > 1:
        picks = sorted({late[round(x)] for x in np.linspace(0, len(late) - 1, min(max_members, len(late)))})
        return [Member(f"step-{s:07d}", snaps[s], s, _lr_at(final, s)) for s in picks]
    lr = _lr_at(final, final_step)
    out = [Member(f"step-{final_step:07d}", final_path, final_step, lr)]
    out += [Member(f"dropout-{seed}", final_path, final_step, lr, seed) for seed in range(1, max_members)]
    return out


def load_member(
    member: Member, config: GPTConfig, device: torch.device, loaded: dict[Path, dict[str, Any]] | None = None
) -> GPT:
    """The member's network: its weights, with dropout on (and fixed by seed per sequence) for ensemble members.

    ``loaded``: checkpoints already read, by resolved path (read here and added when missing). The
    dropout members share the final checkpoint's file, which is then read once, not once per member.
    """
    key = Path(member.path).resolve()
    data = loaded.get(key) if loaded is not None else None
    if data is None:
        data = torch.load(member.path, map_location="cpu", weights_only=True)
        if loaded is not None:
            loaded[key] = data
    state = data["model"]
    dropout = DROPOUT if member.dropout_seed is not None else 0.0
    model = GPT(replace(config, dropout=dropout))
    model.load_state_dict(state)
    model.to(device)
    return model.train() if member.dropout_seed is not None else model.eval()


class Projector:
    """A seeded count sketch from ``P`` parameters to ``k`` dimensions (see the module docstring)."""

    def __init__(self, n_params: int, k: int, seed: int, device: torch.device) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.k = k
        self.bucket = torch.randint(0, k, (n_params,), generator=gen).to(device)  # (P,)
        self.sign = (torch.randint(0, 2, (n_params,), generator=gen) * 2 - 1).to(device, torch.float32)  # (P,)

    def __call__(self, flat: torch.Tensor) -> torch.Tensor:
        """(P,) → (k,)."""
        out = torch.zeros(self.k, device=flat.device, dtype=torch.float32)
        return out.index_add_(0, self.bucket, flat.float() * self.sign)

    def batch(self, parts: Sequence[torch.Tensor]) -> torch.Tensor:
        """(B, P) given as consecutive column blocks (B, P_i) → (B, k): each row as :meth:`__call__`
        projects it, without concatenating the blocks."""
        out = torch.zeros(parts[0].shape[0], self.k, device=parts[0].device, dtype=torch.float32)
        start = 0
        for part in parts:
            end = start + part.shape[1]
            out.index_add_(1, self.bucket[start:end], part.float() * self.sign[start:end])
            start = end
        if start != self.bucket.numel():
            msg = f"parts: {start} columns; the projection takes {self.bucket.numel()}"
            raise ValueError(msg)
        return out


def windows_of(
    ids: Sequence[int], block_size: int, tokenizer: MusicTokenizer, windows: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets (W, T) of a sequence: its conditions, then its body from up to ``windows``
    non-overlapping bar lines (as training and validation windows are cut); conditions and padding
    are never targets."""
    arr = np.asarray(ids, dtype=np.int64)
    cond, body_len = arr[:N_CONDITIONS], block_size + 1 - N_CONDITIONS
    bars = [i for i in np.flatnonzero(arr == tokenizer.bar_id).tolist() if i >= N_CONDITIONS] or [N_CONDITIONS]
    starts: list[int] = []
    for s in bars:
        if not starts or s >= starts[-1] + body_len:
            starts.append(s)
        if len(starts) == windows:
            break
    rows = []
    for s in starts:
        row = np.full(block_size + 1, tokenizer.pad_id, dtype=np.int64)
        joined = np.concatenate([cond, arr[s : s + body_len]])
        row[: len(joined)] = joined
        rows.append(row)
    seqs = np.stack(rows)  # (W, T + 1)
    x, y = seqs[:, :-1].copy(), seqs[:, 1:].copy()
    y[(y >= tokenizer.condition_offset) | (y == tokenizer.pad_id)] = IGNORE
    return torch.from_numpy(x), torch.from_numpy(y)


def sequence_loss(model: GPT, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the targets (a sequence with no target gives 0)."""
    logits, _ = model(x)  # (W, T, V)
    if not bool((y != IGNORE).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), ignore_index=IGNORE)


def projected_gradient(
    model: GPT,
    member: Member,
    projector: Projector,
    ids: Sequence[int],
    tokenizer: MusicTokenizer,
    windows: int,
) -> np.ndarray:
    """(k,) projected gradient of the sequence's loss under ``member``."""
    device = model.lm_head.weight.device
    x, y = windows_of(ids, model.config.block_size, tokenizer, windows)
    model.zero_grad(set_to_none=True)
    dtype = _autocast(device)
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
        if member.dropout_seed is not None:
            torch.manual_seed(member.dropout_seed)  # the same masks for every sequence: one fixed sub-network
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):  # as training ran
            loss = sequence_loss(model, x.to(device), y.to(device))
        loss.backward()
    flat = torch.cat(
        [p.grad.reshape(-1) if p.grad is not None else torch.zeros_like(p).reshape(-1) for p in params(model)]
    )
    return projector(flat).cpu().numpy()


BATCH = 8
"""Sequences whose per-example gradients are taken in one vectorised pass (bounds memory: ~14 MB
of gradient per sequence for the demo model, plus its activations)."""


def _target_length(y: torch.Tensor) -> int:
    """Positions up to and including the last target of (W, T) targets (at least 1)."""
    hits = torch.nonzero((y != IGNORE).any(dim=0))
    return int(hits[-1, 0]) + 1 if len(hits) else 1


def _masked_mean_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of (W, T, V) logits over the targets of (W, T) ``y``, 0 with none;
    written without data-dependent branches so it runs under ``vmap``."""
    mask = y != IGNORE
    logp = logits.float().log_softmax(dim=-1)
    picked = logp.gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # (W, T)
    return -(picked * mask).sum() / mask.sum().clamp(min=1)


def projected_gradients(
    model: GPT,
    member: Member,
    projector: Projector,
    batch: Sequence[Sequence[int]],
    tokenizer: MusicTokenizer,
    windows: int,
) -> np.ndarray:
    """(B, k) projected gradients of ``batch``'s sequences: :func:`projected_gradient` for each,
    vectorised with ``torch.func`` (``vmap`` of ``grad``) over sequences of the same window count.

    The model is causal, so positions after a batch's last target change no loss: they are cut
    off (for members as trained; a dropout member keeps the full length, since its fixed masks
    are drawn for that shape)."""
    device = model.lm_head.weight.device
    pairs = [windows_of(ids, model.config.block_size, tokenizer, windows) for ids in batch]
    out = np.zeros((len(batch), projector.k), dtype=np.float32)
    names = [n for n, _ in sorted(model.named_parameters(), key=lambda kv: kv[0])]
    weights = {n: p.detach() for n, p in model.named_parameters()}

    def loss_of(w: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits, _ = torch.func.functional_call(model, w, (x,))
        return _masked_mean_loss(logits, y)

    per_example = torch.func.vmap(torch.func.grad(loss_of), in_dims=(None, 0, 0), randomness="same")
    by_shape: dict[int, list[int]] = {}
    for i, (x, _) in enumerate(pairs):
        by_shape.setdefault(x.shape[0], []).append(i)
    dtype = _autocast(device)
    for rows in by_shape.values():
        x = torch.stack([pairs[i][0] for i in rows]).to(device)  # (B, W, T)
        y = torch.stack([pairs[i][1] for i in rows]).to(device)  # (B, W, T)
        if member.dropout_seed is None:
            t = max(_target_length(yy) for yy in y)
            x, y = x[..., :t], y[..., :t]
        with torch.random.fork_rng(devices=[]):
            if member.dropout_seed is not None:
                torch.manual_seed(member.dropout_seed)  # the masks projected_gradient draws, for every sequence
            with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                grads = per_example(weights, x, y)
        out[rows] = projector.batch([grads[n].reshape(len(rows), -1) for n in names]).cpu().numpy()
    return out


def _autocast(device: torch.device) -> torch.dtype:
    """The mixed precision training used on this device (bf16 where native, else fp32): about twice
    as fast on a CPU with AVX512-BF16/AMX; gradients are accumulated and projected in fp32."""
    from accord.model.train import autocast_dtype

    return autocast_dtype(device)


def params(model: GPT) -> list[torch.nn.Parameter]:
    """Every trainable parameter once (the tied embedding once), in name order."""
    return [p for _, p in sorted(model.named_parameters(), key=lambda kv: kv[0])]


def n_params(model: GPT) -> int:
    return sum(p.numel() for p in params(model))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class GradientFeatures:
    """Projected gradients of every manifest item under every member.

    Attributes:
        phi: (M, n, k) float32.
        valid: (n,) bool: the item's file could be tokenized (others score at the median: never named).
        members: the members, in ``phi``'s first axis.
        meta: what they were computed from (manifest root, checkpoint hash, k, seed, windows ...).
    """

    phi: np.ndarray
    valid: np.ndarray
    members: tuple[Member, ...]
    meta: dict[str, Any]


def compute_features(
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
) -> GradientFeatures:
    """Gradients of ``sequences`` (``None``: an item that could not be tokenized) under every member,
    ``batch_size`` sequences per vectorised pass (:func:`projected_gradients`)."""
    ckpt = load_checkpoint(model_dir / FILENAME)
    config = GPTConfig(**ckpt["config"])
    chosen = members(model_dir, max_members)
    valid = np.array([s is not None for s in sequences], dtype=bool)
    phi = np.zeros((len(chosen), len(sequences), k), dtype=np.float32)
    total, done = len(chosen) * int(valid.sum()), 0
    projector: Projector | None = None
    # batched by length, so a batch's padding (cut off past its last target) is short
    todo = sorted(((i, ids) for i, ids in enumerate(sequences) if ids is not None), key=lambda t: (len(t[1]), t[0]))
    for m, member in enumerate(chosen):
        model = load_member(member, config, device)
        projector = projector or Projector(n_params(model), k, seed, device)
        for start in range(0, len(todo), batch_size):
            rows = [i for i, _ in todo[start : start + batch_size]]
            batch = [ids for _, ids in todo[start : start + batch_size]]
            phi[m, rows] = projected_gradients(model, member, projector, batch, tokenizer, windows)
            done += len(rows)
            if progress is not None:
                progress(done, total)
    meta = {
        "k": k,
        "seed": seed,
        "windows": windows,
        "members": [mb.to_dict() for mb in chosen],
        "checkpoint_sha256": file_sha256(model_dir / FILENAME),
        "params": projector.bucket.numel() if projector is not None else 0,
    }
    return GradientFeatures(phi, valid, tuple(chosen), meta)


class QueryModels:
    """The members' networks kept in memory, so a query costs one backward pass per member."""

    def __init__(self, model_dir: Path, features: GradientFeatures, tokenizer: MusicTokenizer, device: torch.device):
        ckpt = load_checkpoint(model_dir / FILENAME)
        config = GPTConfig(**ckpt["config"])
        self.members = features.members
        loaded = {(model_dir / FILENAME).resolve(): ckpt}  # the final weights, read once for every member using them
        self.models = [load_member(m, config, device, loaded) for m in self.members]
        self.projector = Projector(
            n_params(self.models[0]), int(features.meta["k"]), int(features.meta["seed"]), device
        )
        self.tokenizer = tokenizer
        self.windows = int(features.meta["windows"])

    def gradients(self, ids: Sequence[int]) -> np.ndarray:
        """(M, k) projected gradients of one sequence."""
        return np.stack(
            [
                projected_gradient(model, member, self.projector, ids, self.tokenizer, self.windows)
                for model, member in zip(self.models, self.members, strict=True)
            ]
        )


def trak_kernel(phi: np.ndarray, damping: float) -> np.ndarray:
    """``Φ (ΦᵀΦ + λI)⁻¹`` (n, k) for one member's features Φ (n, k), with ``λ = damping · ‖Φ‖²_F / min(n, k)``
    (a fraction of the mean non-zero eigenvalue, so the damping scales with the gradients).

    Computed as ``(ΦΦᵀ + λI)⁻¹ Φ`` when n ≤ k (the push-through identity: an n × n solve)."""
    phi64 = phi.astype(np.float64)
    n, k = phi64.shape
    lam = damping * float((phi64**2).sum()) / max(min(n, k), 1)
    lam = lam if lam > 0 else 1.0
    if n <= k:
        gram = phi64 @ phi64.T  # (n, n)
        gram[np.diag_indices(n)] += lam
        return np.linalg.solve(gram, phi64).astype(np.float32)
    cov = phi64.T @ phi64  # (k, k)
    cov[np.diag_indices(k)] += lam
    return np.linalg.solve(cov, phi64.T).T.astype(np.float32)


def cosine_rows(a: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(a, axis=-1, keepdims=True)
    return np.where(norms > 0, a / np.maximum(norms, 1e-30), 0.0).astype(np.float32)
