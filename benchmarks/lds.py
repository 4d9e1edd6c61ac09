"""The linear datamodeling score (LDS) of every attribution method: a benchmark, resumable.

    python -m benchmarks.lds [--state DIR] [--models 8] [--steps 150] [--outputs 6] [--background 32]
                             [--libraries kron-ekfac,kron-kfac,dattri-trak,dattri-datainf] [--json OUT]

LDS (Park et al. 2023) asks whether attribution scores predict what retraining does. Train a
reference model on the whole (small, planted) manifest and sample held-out generations from it.
Then, for each of ``--models`` random halves ``S_j`` of the manifest, retrain the same model
(same seed, same steps) on ``S_j`` only and measure each generation's log-likelihood
``f_j(z) = -loss``. A method's prediction for the half is ``g_j(z) = Σ_{i ∈ S_j} τ_i(z)`` from the
reference model's scores; LDS is the Spearman correlation of ``g_j(z)`` with ``f_j(z)`` over the
halves, averaged over generations.

Every retrained model's result is written to ``--state`` as soon as it is known, so an
interrupted run continues where it stopped, and a later run with a larger ``--models`` adds
halves to the same state. The default (8 halves of a 40-item manifest, 150 steps of the tiny
model) takes minutes on a laptop CPU and gives a rough, noisy score; a score comparable to the
published ones (TRAK with 50 models ≈ 0.32 on MusicTransformer/MAESTRO) needs 50-100 halves of
a larger manifest trained for longer: hours on a CPU. With a GPU, ``--device cuda`` retrains there.

``--libraries`` scores the field's implementations on the same reference model and the same
halves (:mod:`benchmarks.lds_libraries`: kronfluence's EK-FAC and K-FAC, dattri's TRAK and
DataInf), each cached in ``--state`` once computed. Every row carries a 95% confidence interval
of its LDS by bootstrap over the generations (resampled with replacement, 2,000 draws, seeded).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy.stats import spearmanr

from accord.attribution.planted import BACKGROUND_PIECES
from benchmarks.lds_libraries import LIBRARY_METHODS

METHODS = ("trak", "tracin", "gradsim", "embedding")
BOOTSTRAP = 2000


def bootstrap_ci(per_output: list[float], draws: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    """The 95% interval of the mean over outputs, by resampling the outputs with replacement."""
    values = np.asarray(per_output, dtype=np.float64)
    if len(values) < 2:
        return (float("nan"), float("nan"))
    picks = np.random.default_rng(seed).integers(0, len(values), size=(draws, len(values)))
    means = values[picks].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _lds_row(name: str, tau: np.ndarray, mask_matrix: np.ndarray, actual: np.ndarray, seconds: float) -> dict[str, Any]:
    """LDS of scores ``tau`` (items × queries) against the retrained halves' log-likelihoods."""
    per_query = []
    for qi in range(actual.shape[1]):
        predicted = mask_matrix @ tau[:, qi]  # (J,)
        rho = spearmanr(predicted, actual[:, qi]).statistic if len(mask_matrix) > 2 else float("nan")
        per_query.append(float(rho) if np.isfinite(rho) else 0.0)
    lo, hi = bootstrap_ci(per_query)
    return {
        "method": name,
        "lds": float(np.mean(per_query)),
        "ci95": [lo, hi],
        "per_output": per_query,
        "seconds": round(seconds, 1),
    }


def _train(planted: Any, keep: set[str] | None, folder: Path, steps: int, seed: int, device: str | None) -> Path:
    import torch

    from accord.attribution.planted import sub_manifest
    from accord.datasets.loader import ManifestLoader
    from accord.model.train import train

    if (folder / "model_card.json").is_file():
        return folder
    drop = set() if keep is None else {i.isrc for i in planted.manifest.items} - keep
    manifest = sub_manifest(planted.manifest, drop)
    train(
        manifest, ManifestLoader(manifest, planted.media), planted.catalog, folder,
        preset="tiny", steps=steps, seed=seed, val_fraction=0.0, eval_every=steps, resume=False,
        device=torch.device(device) if device else None,
    )  # fmt: skip
    return folder


def _library_rows(
    state: Path,
    reference: Path,
    ctx: Any,
    queries: Sequence[Any],
    libraries: Sequence[str],
    mask_matrix: np.ndarray,
    actual: np.ndarray,
    say: Callable[..., Any],
) -> list[dict[str, Any]]:
    """The field's libraries scored on the same reference model, cached per method in ``state``."""
    from benchmarks.lds_libraries import library_scores

    cache = state / "libraries"
    cache.mkdir(exist_ok=True)
    sequences = ctx.sequences()
    valid = [i for i, seq in enumerate(sequences) if seq is not None]
    todo = [m for m in libraries if not (cache / f"{m}.npz").is_file()]
    if todo:
        found = library_scores(reference, [sequences[i] for i in valid], [q.token_ids for q in queries], todo, say=say)
        for name, (tau, seconds) in found.items():
            full = np.zeros((len(sequences), len(queries)))
            full[valid] = tau
            if len(valid) < len(sequences):  # an item without a sequence sits at the typical level
                full[[i for i in range(len(sequences)) if i not in set(valid)]] = np.median(tau, axis=0)
            np.savez(cache / f"{name}.npz", tau=full, seconds=seconds)
    rows = []
    for name in libraries:
        path = cache / f"{name}.npz"
        if path.is_file():
            saved = np.load(path)
            rows.append(_lds_row(name, saved["tau"], mask_matrix, actual, float(saved["seconds"])))
    return rows


def run(
    state: Path,
    *,
    models: int,
    steps: int,
    outputs: int,
    seed: int = 0,
    background: int = BACKGROUND_PIECES,
    device: str | None = None,
    console: Console | None = None,
    libraries: Sequence[str] = (),
) -> dict[str, Any]:
    """Bring ``state`` up to ``models`` halves and return the scores (see the module docstring)."""
    from accord.attribution.evaluate import query_loss
    from accord.attribution.methods import Query, Scored, get_method
    from accord.attribution.planted import build_planted_set
    from accord.attribution.service import context_for
    from accord.model.sample import generate, load_model

    say = console.print if console else (lambda *a, **k: None)
    state.mkdir(parents=True, exist_ok=True)
    config_path = state / "config.json"
    config: dict[str, Any] = {"steps": steps, "seed": seed, "outputs": outputs, "preset": "tiny", "planted_seed": 0}
    if background != BACKGROUND_PIECES:  # the default planted set keeps states made before this option valid
        config["background"] = background
    if config_path.is_file():
        saved = json.loads(config_path.read_text())
        if saved != config:
            msg = f"state {state}: made with {saved}, not {config}; use another --state"
            raise SystemExit(msg)
    else:
        config_path.write_text(json.dumps(config, indent=1))
    planted = build_planted_set(state / "planted", seed=0, background_pieces=background)
    isrcs = [i.isrc for i in planted.manifest.items]
    reference = _train(planted, None, state / "reference", steps, seed, device)

    queries_path = state / "queries.json"
    if not queries_path.is_file():  # held-out generations: unprimed samples of the reference model
        loaded = load_model(reference)
        styles = sorted({i.genre for i in planted.manifest.items})
        pieces = [
            generate(loaded, style=styles[n % len(styles)], bars=6, seed=1000 + n, temperature=1.0)
            for n in range(outputs)
        ]
        queries_path.write_text(json.dumps([{"ids": list(p.token_ids), "midi": p.midi.hex()} for p in pieces]))
    queries = [
        Query(tuple(q["ids"]), bytes.fromhex(q["midi"]), f"gen-{n}")
        for n, q in enumerate(json.loads(queries_path.read_text()))
    ]

    rng = np.random.default_rng(seed)
    halves_dir = state / "halves"
    halves_dir.mkdir(exist_ok=True)
    masks = [rng.random(len(isrcs)) < 0.5 for _ in range(models)]  # the j-th half is the same in every run
    started = time.perf_counter()
    for j, mask in enumerate(masks):
        path = halves_dir / f"{j:04d}.json"
        if path.is_file():
            continue
        keep = {isrcs[i] for i in np.flatnonzero(mask)}
        folder = _train(planted, keep, state / "models" / f"{j:04d}", steps, seed, device)
        losses = [query_loss(folder, q.token_ids) for q in queries]
        path.write_text(json.dumps({"mask": mask.astype(int).tolist(), "losses": losses}))
        say(f"  half {j + 1}/{models}: trained and measured ({time.perf_counter() - started:.0f} s so far)")
    done = [json.loads((halves_dir / f"{j:04d}.json").read_text()) for j in range(models)]
    mask_matrix = np.array([d["mask"] for d in done], dtype=np.float64)  # (J, n)
    actual = -np.array([d["losses"] for d in done])  # (J, Q) log-likelihood per token

    ctx = context_for(reference, planted.manifest, planted.catalog, planted.media)
    rows = []
    for name in METHODS:
        method = get_method(name)
        t0 = time.perf_counter()
        method.index(ctx)
        taus = []
        for q in queries:
            raw = method.scores(ctx, q)
            taus.append(raw.scores if isinstance(raw, Scored) else raw)
        rows.append(_lds_row(name, np.stack(taus, axis=1), mask_matrix, actual, time.perf_counter() - t0))
    rows += _library_rows(state, reference, ctx, queries, libraries, mask_matrix, actual, say)
    return {
        "items": len(isrcs),
        "halves": models,
        "steps": steps,
        "outputs": len(queries),
        "rows": rows,
        "label": "rough: tiny model, small planted manifest, few halves" if models < 50 else "halves >= 50",
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state", type=Path, default=None, help="progress folder (default: ACCORD_HOME/cache/lds)")
    parser.add_argument("--models", type=int, default=8, help="random halves to retrain on")
    parser.add_argument("--steps", type=int, default=150, help="training steps of every model")
    parser.add_argument("--outputs", type=int, default=6, help="held-out generations")
    parser.add_argument(
        "--background", type=int, default=BACKGROUND_PIECES, help="background pieces of the planted manifest"
    )
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument(
        "--libraries",
        default="",
        help="the field's methods to score beside ours (comma-separated; 'all': " + ", ".join(LIBRARY_METHODS) + ")",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args(argv)
    import torch

    from accord.settings import get_settings

    torch.set_num_threads(1)
    args.state = args.state or get_settings().cache_dir / "lds"
    console = Console(width=160)
    console.print(f"LDS: {args.models} halves x {args.steps} steps, state in {args.state} ...")
    result = run(
        args.state,
        models=args.models,
        steps=args.steps,
        outputs=args.outputs,
        background=args.background,
        device=args.device,
        console=console,
        libraries=LIBRARY_METHODS if args.libraries == "all" else [m for m in args.libraries.split(",") if m],
    )
    t = Table(
        title=f"LDS over {result['halves']} halves of {result['items']} items, "
        f"{result['outputs']} generations ({result['label']})",
        title_justify="left",
    )
    for col in ("method", "LDS (mean Spearman)", "95% CI (bootstrap)", "min", "max", "seconds"):
        t.add_column(col, justify="left" if col == "method" else "right")
    for r in result["rows"]:
        lo, hi = r["ci95"]
        t.add_row(
            r["method"],
            f"{r['lds']:.3f}",
            f"{lo:.3f} .. {hi:.3f}",
            f"{min(r['per_output']):.3f}",
            f"{max(r['per_output']):.3f}",
            f"{r['seconds']:.0f}",
        )
    console.print(t)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
