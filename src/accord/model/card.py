"""The model card: what a model was trained on, how, on what, and how well.

Written as ``model_card.json`` (for machines: the registry records it), ``model_card.md``
(for people) and ``loss.png`` (the train and validation loss curves).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

import accord
from accord.datasets.manifest import Manifest
from accord.errors import NotFound

FORMAT = "accord-model-card/1"
WEIGHTS_FORMAT = "accord-weights-sha256/1"
"""How :func:`weights_sha256` serialises a state dict (named in every card, so the hash can be recomputed)."""


def weights_sha256(state_dict: Mapping[str, torch.Tensor]) -> str:
    """The sha256 of a state dict in a canonical serialisation (:data:`WEIGHTS_FORMAT`).

    Parameters in name order; for each: its name, dtype and shape as one UTF-8 line
    (``name\tdtype\tshape\n``), then its values as contiguous little-endian bytes on the CPU.
    Nothing about storage (device, strides, sharing between tied weights) changes the hash; any
    changed bit of any value does.
    """
    digest = hashlib.sha256()
    for name in sorted(state_dict):  # by name: a state dict's own order is an implementation detail
        tensor = state_dict[name].detach().to("cpu").contiguous()
        shape = "x".join(str(n) for n in tensor.shape)
        digest.update(f"{name}\t{str(tensor.dtype).removeprefix('torch.')}\t{shape}\n".encode())
        raw = tensor.view(torch.uint8) if tensor.dim() else tensor.reshape(1).view(torch.uint8)
        digest.update(raw.numpy().tobytes())  # x86 and ARM hosts are little-endian, as the format says
    return digest.hexdigest()


def weights_record(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """What a card says about the final weights: their hash, its format, and how many values it covers."""
    return {
        "sha256": weights_sha256(state_dict),
        "format": WEIGHTS_FORMAT,
        "tensors": len(state_dict),
        "values": int(sum(t.numel() for t in state_dict.values())),
    }


def code_version() -> dict[str, str]:
    """Accord's version and the git commit it runs from (``"unknown"`` outside a checkout)."""
    commit = "unknown"
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(accord.__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        if out.returncode == 0 and out.stdout.strip():
            commit = out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return {"accord": accord.__version__, "git_commit": commit}


def cpu_name() -> str:
    """The processor's model name (Linux's ``/proc/cpuinfo``), else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def hardware(device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": str(torch.__version__),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "dtype": str(dtype).removeprefix("torch."),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def manifest_summary(manifest: Manifest) -> dict[str, Any]:
    """Items per master licensor and per genre (an item with two owners counts for each)."""
    licensors: Counter[str] = Counter()
    for item in manifest.items:
        licensors.update(item.master_owners)
    genres = Counter(item.genre or "(none)" for item in manifest.items)
    return {
        "root": manifest.root,
        "items": len(manifest.items),
        "as_of": manifest.header.to_dict()["as_of"],
        "use": manifest.header.use.value,
        "territory": manifest.header.territory,
        "items_per_master_licensor": dict(sorted(licensors.items())),
        "genres": dict(sorted(genres.items())),
    }


def write_card(out_dir: Path, card: Mapping[str, Any]) -> None:
    """``model_card.json``, ``model_card.md`` and ``loss.png`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "model_card.json").write_text(json.dumps(card, indent=1, sort_keys=True) + "\n")
    (out_dir / "model_card.md").write_text(card_markdown(card))
    plot_loss(card.get("loss_curve", []), out_dir / "loss.png")


def add_to_card(out_dir: Path, name: str, section: Mapping[str, Any]) -> dict[str, Any]:
    """Set one section of the card in ``out_dir`` (e.g. ``memorisation``), rewrite its files; the card."""
    path = out_dir / "model_card.json"
    if not path.is_file():
        msg = f"model card: {out_dir.name} has no model_card.json"
        raise NotFound(msg)
    card = json.loads(path.read_text())
    card[name] = dict(section)
    write_card(out_dir, card)
    return card


def plot_loss(curve: Sequence[Mapping[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window, never need a display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    steps = [p["step"] for p in curve]
    ax.plot(steps, [p["train_loss"] for p in curve], label="train")
    val = [(p["step"], p["val_loss"]) for p in curve if p.get("val_loss") is not None]
    if val:
        ax.plot([s for s, _ in val], [v for _, v in val], label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def card_markdown(card: Mapping[str, Any]) -> str:
    m = card["manifest"]
    t = card["training"]
    lines = [
        f"# Model card: {card['model']['preset']} GPT on manifest {m['root'][:12]}",
        "",
        f"Trained only on the {m['items']:,} recordings of training-set manifest `{m['root']}` "
        f"(use `{m['use']}`, territory {m['territory']}, as of {m['as_of']}).",
        "",
        "## Results",
        "",
        "| | |",
        "|---|---|",
        f"| final train loss | {_fmt(card['final_train_loss'])} |",
        f"| final validation loss | {_fmt(card['final_val_loss'])} |",
        f"| steps | {_fmt(t['steps'])} |",
        f"| training time | {_fmt(t['seconds'])} s |",
        f"| tokens seen | {_fmt(t['tokens_seen'])} |",
        f"| tokens / s | {_fmt(t['tokens_per_second'])} |",
        "",
        "![loss](loss.png)",
        "",
        "## Data",
        "",
        f"Pieces: {card['data']['train_pieces']:,} train, {card['data']['val_pieces']:,} validation "
        f"(held out whole, by ISRC hash); {card['data']['train_tokens']:,} / {card['data']['val_tokens']:,} tokens; "
        f"{len(card['data']['skipped'])} skipped.",
        "",
        "| master licensor | items |",
        "|---|---|",
        *(f"| {k} | {v:,} |" for k, v in m["items_per_master_licensor"].items()),
        "",
        "| genre | items |",
        "|---|---|",
        *(f"| {k} | {v:,} |" for k, v in m["genres"].items()),
        "",
        "## Model and training",
        "",
        "| | |",
        "|---|---|",
        f"| parameters | {card['model']['parameters']:,} |",
        *(f"| {k} | {_fmt(v)} |" for k, v in card["model"]["config"].items()),
        *(f"| {k} | {_fmt(v)} |" for k, v in card["hyperparameters"].items()),
        "",
        "## Reproducibility",
        "",
        *_reproducibility(card),
        "| | |",
        "|---|---|",
        *(f"| {k} | {_fmt(v)} |" for k, v in card["hardware"].items()),
        *(f"| {k} | {_fmt(v)} |" for k, v in card["code"].items()),
        *(f"| {k} | {_fmt(v)} |" for k, v in card["versions"].items()),
        "",
        *_memorisation(card.get("memorisation")),
    ]
    return "\n".join(lines)


def _reproducibility(card: Mapping[str, Any]) -> list[str]:
    weights = card.get("weights")
    if not weights:
        return ["This card records no weights hash (trained before cards held one).", ""]
    hp = card.get("hyperparameters", {})
    return [
        f"Weights sha256 `{weights['sha256']}` ({weights['format']}: {weights['values']:,} values in "
        f"{weights['tensors']} tensors). `accord model reproduce` trains again from this card — manifest "
        f"`{card['manifest']['root']}`, {card['training']['steps']:,} steps, seed {card.get('seed')}, "
        f"{hp.get('threads')} PyTorch thread(s), {card['hardware'].get('dtype')} on {card['hardware'].get('device')} "
        "— and compares.",
        "",
    ]


def _memorisation(audit: Mapping[str, Any] | None) -> list[str]:
    if not audit:
        return ["## Memorisation audit", "", "Not run yet (`accord model audit`).", ""]
    verdict = "**passed**" if audit["passed"] else "**FAILED**: this model may not be approved or serve"
    rows = [
        "## Memorisation audit",
        "",
        f"{verdict}. Continuations of training works reach the replication guard's threshold against their "
        f"source {audit['extraction_rate']:.1%} of the time; of works the model never saw, "
        f"{audit['control_extraction_rate']:.1%}; memorisation {audit['memorisation']:.1%} "
        f"(limit {audit['limit']:.0%}). "
        f"{audit['train_works']} training and {audit['control_works']} unseen works, "
        f"{audit['settings']['prompt_bars']} bars of prompt, {audit['settings']['continue_bars']} bars sampled at "
        f"temperatures {', '.join(str(t) for t in audit['settings']['temperatures'])}.",
        "",
        "| bars of the source reproduced | training continuations | unseen continuations |",
        "|---|---|---|",
    ]
    hist = audit["bars_reproduced"]
    for bars in sorted({*hist["train"], *hist["control"]}, key=int):
        rows.append(f"| {bars} | {hist['train'].get(bars, 0)} | {hist['control'].get(bars, 0)} |")
    rows += ["", "| closest training works | bars | guard score | extracted |", "|---|---|---|---|"]
    rows += [
        f"| {w['isrc']} {w['title']} | {w['bars']} | {w['score']:.2f} | {w['extracted']} |" for w in audit["worst"]
    ]
    return [*rows, ""]
