"""Gradient attribution: TRAK, TracIn and plain gradient similarity over one shared feature index.

The features (:mod:`accord.attribution.gradients`) are computed once per model over its
manifest and stored in ``<model_dir>/attribution/gradients.npz`` with ``gradients.json``
naming the manifest root, the checkpoint's SHA-256, the members, ``k``, the projection seed and
the version; a stored index that does not match the model and settings is rebuilt. A query
costs one backward pass per member and a matrix product.

- **TRAK** (Park et al. 2023): ``τ(z) = 1/M Σ_m φ_m(z)ᵀ (Φ_mᵀΦ_m + λI)⁻¹ Φ_mᵀ``; the kernel-applied
  features ``Φ_m (Φ_mᵀΦ_m + λI)⁻¹`` are stored in ``trak.npz`` so a query is ``A_m φ_m(z)``.
  (The ``1 - p`` re-weighting of the classification paper is 1 for a language model's loss.)
- **TracIn** (Pruthi et al. 2020, checkpoint form): ``Σ_m η_m ⟨φ_m(z), φ_m(x_i)⟩`` with ``η_m`` the
  learning rate at the member's step.
- **gradsim**: the mean over members of the cosine between ``φ_m(z)`` and ``φ_m(x_i)``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from accord.attribution.gradients import (
    GradientFeatures,
    Member,
    QueryModels,
    cosine_rows,
    file_sha256,
    members,
    trak_kernel,
)
from accord.attribution.methods import AttributionContext, Progress, Query, register_method
from accord.attribution.sharded import feature_computer
from accord.model.checkpoint import FILENAME

FEATURES_VERSION = "grad-sketch/1"
TRAK_DAMPING = 0.1
"""λ as a fraction of the mean non-zero eigenvalue of ΦᵀΦ."""


def _meta_matches(meta: dict[str, Any], ctx: AttributionContext, sha: str) -> bool:
    return (
        meta.get("version") == FEATURES_VERSION
        and meta.get("manifest_root") == ctx.manifest.root
        and meta.get("checkpoint_sha256") == sha
        and meta.get("k") == ctx.k
        and meta.get("seed") == ctx.seed
        and meta.get("windows") == ctx.windows
        and [m.get("name") for m in meta.get("members", [])]
        == [m.name for m in members(ctx.model_dir, ctx.max_members)]
        and meta.get("isrcs_sha256") == _isrcs_sha(ctx)
    )


def _isrcs_sha(ctx: AttributionContext) -> str:
    import hashlib

    return hashlib.sha256("\n".join(ctx.isrcs).encode()).hexdigest()


def gradient_features(ctx: AttributionContext, progress: Progress | None = None) -> GradientFeatures:
    """The model's stored features, computed and stored first when missing or stale."""
    if "gradients" in ctx.cache:
        return ctx.cache["gradients"]
    path, meta_path = ctx.index_dir / "gradients.npz", ctx.index_dir / "gradients.json"
    sha = file_sha256(ctx.model_dir / FILENAME)
    features = None
    if path.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if _meta_matches(meta, ctx, sha):
            with np.load(path) as data:
                chosen = tuple(
                    Member(m["name"], ctx.model_dir / m["path"], m["step"], m["lr"], m["dropout_seed"])
                    for m in meta["members"]
                )
                features = GradientFeatures(data["phi"], data["valid"], chosen, meta)
    if features is None:
        started = time.perf_counter()
        features = feature_computer()(  # compute_features, or sharded on ACCORD_EXECUTOR's cluster
            ctx.sequences(),
            ctx.model_dir,
            ctx.tokenizer(),
            k=ctx.k,
            seed=ctx.seed,
            windows=ctx.windows,
            max_members=ctx.max_members,
            device=ctx.torch_device(),
            progress=(lambda d, t: progress("gradients", d, t)) if progress else None,
        )
        meta = {
            **features.meta,
            "version": FEATURES_VERSION,
            "manifest_root": ctx.manifest.root,
            "isrcs_sha256": _isrcs_sha(ctx),
            "items": len(ctx.isrcs),
            "seconds": round(time.perf_counter() - started, 3),
        }
        for entry, member in zip(meta["members"], features.members, strict=True):
            entry["path"] = str(member.path.relative_to(ctx.model_dir))
        ctx.index_dir.mkdir(parents=True, exist_ok=True)
        tmp = ctx.index_dir / "gradients.tmp.npz"
        np.savez(tmp, phi=features.phi, valid=features.valid)
        tmp.replace(path)
        meta_path.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
        (ctx.index_dir / "trak.npz").unlink(missing_ok=True)  # the kernel follows the features
        features = GradientFeatures(features.phi, features.valid, features.members, meta)
    ctx.cache["gradients"] = features
    return features


def query_gradients(ctx: AttributionContext, query: Query) -> np.ndarray:
    """(M, k) the query's projected gradients under each member."""
    features = gradient_features(ctx)
    if "query_models" not in ctx.cache:
        ctx.cache["query_models"] = QueryModels(ctx.model_dir, features, ctx.tokenizer(), ctx.torch_device())
    return ctx.cache["query_models"].gradients(query.token_ids)


def _at_median_where_invalid(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Items that could not be tokenized get the median of the others: never named, never counted."""
    if valid.all() or not valid.any():
        return scores
    out = scores.copy()
    out[~valid] = float(np.median(scores[valid]))
    return out


@dataclass(frozen=True)
class Trak:
    name: str = "trak"
    version: str = f"trak/1 ({FEATURES_VERSION}, damping {TRAK_DAMPING})"
    floor: float = 0.20
    causal: bool = True
    description: str = "TRAK: projected gradients through the damped inverse Gram kernel, averaged over members"

    def kernel(self, ctx: AttributionContext, progress: Progress | None = None) -> np.ndarray:
        """(M, n, k) ``Φ_m (Φ_mᵀΦ_m + λI)⁻¹``, stored next to the features."""
        if "trak" in ctx.cache:
            return ctx.cache["trak"]
        features = gradient_features(ctx, progress)
        path = ctx.index_dir / "trak.npz"
        kernel = None
        if path.is_file():
            with np.load(path) as data:
                if (
                    str(data["checkpoint_sha256"]) == features.meta["checkpoint_sha256"]
                    and float(data["damping"]) == TRAK_DAMPING
                ):
                    kernel = data["a"]
        if kernel is None:
            kernel = np.stack([trak_kernel(phi[features.valid], TRAK_DAMPING) for phi in features.phi])
            full = np.zeros_like(features.phi)
            full[:, features.valid] = kernel
            kernel = full
            tmp = ctx.index_dir / "trak.tmp.npz"
            np.savez(tmp, a=kernel, damping=TRAK_DAMPING, checkpoint_sha256=features.meta["checkpoint_sha256"])
            tmp.replace(path)
        ctx.cache["trak"] = kernel
        return kernel

    def index(self, ctx: AttributionContext, progress: Progress | None = None) -> dict[str, Any]:
        kernel = self.kernel(ctx, progress)
        return {
            "items": kernel.shape[1],
            "members": kernel.shape[0],
            "k": kernel.shape[2],
            "bytes": int(kernel.nbytes * 2),
        }

    def scores(self, ctx: AttributionContext, query: Query) -> np.ndarray:
        kernel = self.kernel(ctx)
        g = query_gradients(ctx, query)  # (M, k)
        scores = np.einsum("mnk,mk->n", kernel, g) / len(g)  # (n,)
        return _at_median_where_invalid(scores.astype(np.float64), gradient_features(ctx).valid)


@dataclass(frozen=True)
class TracIn:
    name: str = "tracin"
    version: str = f"tracin-cp/1 ({FEATURES_VERSION})"
    floor: float = 0.30
    causal: bool = True
    description: str = "TracIn: learning-rate-weighted gradient dot products summed over checkpoints"

    def index(self, ctx: AttributionContext, progress: Progress | None = None) -> dict[str, Any]:
        f = gradient_features(ctx, progress)
        return {"items": f.phi.shape[1], "members": f.phi.shape[0], "k": f.phi.shape[2], "bytes": int(f.phi.nbytes)}

    def scores(self, ctx: AttributionContext, query: Query) -> np.ndarray:
        f = gradient_features(ctx)
        g = query_gradients(ctx, query)
        lrs = np.array([m.lr for m in f.members], dtype=np.float32)
        scores = np.einsum("mnk,mk,m->n", f.phi, g, lrs)
        return _at_median_where_invalid(scores.astype(np.float64), f.valid)


@dataclass(frozen=True)
class GradSim:
    name: str = "gradsim"
    version: str = f"gradsim/1 ({FEATURES_VERSION})"
    floor: float = 0.40
    causal: bool = True
    description: str = "gradient similarity: cosine of projected gradients, averaged over members"

    def index(self, ctx: AttributionContext, progress: Progress | None = None) -> dict[str, Any]:
        f = gradient_features(ctx, progress)
        return {"items": f.phi.shape[1], "members": f.phi.shape[0], "k": f.phi.shape[2], "bytes": int(f.phi.nbytes)}

    def scores(self, ctx: AttributionContext, query: Query) -> np.ndarray:
        f = gradient_features(ctx)
        if "gradsim" not in ctx.cache:
            ctx.cache["gradsim"] = np.stack([cosine_rows(phi) for phi in f.phi])
        unit = ctx.cache["gradsim"]
        g = cosine_rows(query_gradients(ctx, query))
        scores = np.einsum("mnk,mk->n", unit, g) / len(g)
        return _at_median_where_invalid(scores.astype(np.float64), f.valid)


register_method(Trak())
register_method(TracIn())
register_method(GradSim())
