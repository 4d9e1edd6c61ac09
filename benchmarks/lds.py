"""The linear datamodeling score (LDS) of every attribution method: a benchmark, resumable.

    python -m benchmarks.lds [--state DIR] [--models 8] [--steps 150] [--outputs 6] [--background 32] [--json OUT]

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
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy.stats import spearmanr

from accord.attribution.planted import BACKGROUND_PIECES

METHODS = ("trak", "tracin", "gradsim", "embedding")


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
        method.index(ctx)
        per_query = []
        for qi, q in enumerate(queries):
            raw = method.scores(ctx, q)
            tau = raw.scores if isinstance(raw, Scored) else raw
            predicted = mask_matrix @ tau  # (J,)
            rho = spearmanr(predicted, actual[:, qi]).statistic if models > 2 else float("nan")
            per_query.append(float(rho) if np.isfinite(rho) else 0.0)
        rows.append({"method": name, "lds": float(np.mean(per_query)), "per_output": per_query})
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
    )
    t = Table(
        title=f"LDS over {result['halves']} halves of {result['items']} items, "
        f"{result['outputs']} generations ({result['label']})",
        title_justify="left",
    )
    for col in ("method", "LDS (mean Spearman)", "min", "max"):
        t.add_column(col, justify="left" if col == "method" else "right")
    for r in result["rows"]:
        t.add_row(r["method"], f"{r['lds']:.3f}", f"{min(r['per_output']):.3f}", f"{max(r['per_output']):.3f}")
    console.print(t)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
