"""``accord model reproduce``: train a registered model again from its card and compare the weights.

A card names everything a run depends on: the manifest (whose files are hash-checked), the
network's config, every hyperparameter (the step budget, the seed, the PyTorch thread count),
the device and autocast dtype, and the sha256 of the final weights
(:func:`accord.model.card.weights_sha256`). :func:`reproduce_model` trains again from those into
a fresh folder, on the same device type and dtype where this machine has them, and reports
whether the hash matches; when it does not (or the device or dtype had to differ) it reports
the largest difference between any two parameters, and what else differs (code, libraries).

:func:`reproducible` is the context training runs in (threads fixed, deterministic algorithms).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch

from accord.errors import ValidationError
from accord.registry.store import Store
from accord.settings import Settings

Progress = Callable[[dict[str, Any]], None]


@contextmanager
def reproducible(threads: int, deterministic: bool = True) -> Iterator[None]:
    """PyTorch with ``threads`` threads and (optionally) deterministic algorithms; restored on exit."""
    old_threads, old_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    # cuBLAS is deterministic only with a fixed workspace (read when CUDA starts; harmless on a CPU)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def dtype_named(name: str) -> torch.dtype:
    """``"float32"`` / ``"bfloat16"`` / ``"float16"`` (as a card records them) to the torch dtype."""
    if name not in DTYPES:
        msg = f"dtype: {name!r} is not one of {', '.join(DTYPES)}"
        raise ValidationError(msg, field="dtype", value=name)
    return DTYPES[name]


@dataclass(frozen=True)
class Reproduction:
    """What re-running a model's training gave.

    Attributes:
        model_id: the model.
        manifest_root: the manifest both runs read.
        original_sha256: the weights hash its card records.
        reproduced_sha256: the hash of the weights trained again.
        original: device, dtype and threads of the original run (from its card).
        reproduced: the same for this run.
        max_abs_diff: the largest absolute difference between two corresponding values (``0.0``
            when the hashes match; ``None`` when the original weights are not on this machine).
        max_diff_parameter: the parameter holding it (``""`` when none).
        differences: what else differs between the two runs (code commit, library versions), in words.
        seconds: the reproduction's wall time.
        folder: where the reproduced model was kept (``None``: removed after comparing).
    """

    model_id: str
    manifest_root: str
    original_sha256: str
    reproduced_sha256: str
    original: Mapping[str, Any]
    reproduced: Mapping[str, Any]
    max_abs_diff: float | None
    max_diff_parameter: str
    differences: tuple[str, ...]
    seconds: float
    folder: Path | None = None

    @property
    def matches(self) -> bool:
        return self.original_sha256 == self.reproduced_sha256

    @property
    def same_setup(self) -> bool:
        return all(self.original.get(k) == self.reproduced.get(k) for k in ("device_type", "dtype", "threads"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "manifest_root": self.manifest_root,
            "matches": self.matches,
            "original_sha256": self.original_sha256,
            "reproduced_sha256": self.reproduced_sha256,
            "original": dict(self.original),
            "reproduced": dict(self.reproduced),
            "same_setup": self.same_setup,
            "max_abs_diff": self.max_abs_diff,
            "max_diff_parameter": self.max_diff_parameter,
            "differences": list(self.differences),
            "seconds": round(self.seconds, 3),
            "folder": None if self.folder is None else str(self.folder),
        }


def max_difference(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> tuple[float, str]:
    """The largest absolute difference between corresponding values of two state dicts, and where."""
    if set(a) != set(b):
        msg = f"weights: the two models hold different parameters ({sorted(set(a) ^ set(b))[:3]} …)"
        raise ValidationError(msg, field="weights")
    worst, where = 0.0, ""
    for name in sorted(a):  # by name, so a tie is reported the same way every time
        x, y = a[name].detach().float().cpu(), b[name].detach().float().cpu()
        if x.shape != y.shape:
            msg = f"weights: {name} is {tuple(x.shape)} in one model and {tuple(y.shape)} in the other"
            raise ValidationError(msg, field="weights", value=name)
        d = float((x - y).abs().max()) if x.numel() else 0.0
        if d > worst:
            worst, where = d, name
    return worst, where


def _setup(hardware: Mapping[str, Any], hp: Mapping[str, Any]) -> dict[str, Any]:
    device = str(hardware.get("device", "cpu"))
    return {
        "device": device,
        "device_type": device.split(":")[0],
        "device_name": hardware.get("device_name"),
        "dtype": hardware.get("dtype"),
        "threads": hp.get("threads") or hardware.get("torch_threads"),
    }


def choose_device(recorded: str) -> torch.device:
    """The recorded device type when this machine has it (a CUDA run is reproduced on CUDA), else the CPU."""
    kind = recorded.split(":")[0]
    if kind == "cuda" and torch.cuda.is_available():
        return torch.device("cuda")
    if kind == "mps" and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def choose_dtype(recorded: str | None, device: torch.device) -> torch.dtype:
    """The recorded autocast dtype when ``device`` runs it, else the device's own (:func:`autocast_dtype`)."""
    from accord.model.train import autocast_dtype

    native = autocast_dtype(device)
    wanted = dtype_named(recorded) if recorded else native
    return wanted if wanted in (torch.float32, native) else native


def reproduce_model(
    store: Store,
    settings: Settings,
    model_id: str,
    *,
    out_dir: Path | None = None,
    device: torch.device | None = None,
    progress: Progress | None = None,
) -> Reproduction:
    """Train ``model_id`` again from its registered card and manifest; compare the weights.

    ``out_dir`` keeps the reproduced model there (it must not hold a model already); by default
    it is trained in a fresh temporary folder that is removed after the comparison.
    """
    from accord.datasets import repository
    from accord.datasets.loader import ManifestLoader
    from accord.model.card import code_version
    from accord.model.checkpoint import load_checkpoint, versions
    from accord.model.train import Hyperparameters, train

    started = time.perf_counter()
    record = repository.get_model(store, model_id)
    card = record.card
    recorded_hash = (card.get("weights") or {}).get("sha256")
    if not recorded_hash:
        msg = (
            f"model {model_id!r}: its card records no weights hash (trained before cards held one); "
            "there is nothing to compare a reproduction with: retrain it (accord model retrain)"
        )
        raise ValidationError(msg, field="model", value=model_id)
    saved_hp = dict(card.get("hyperparameters") or {})
    known = {f.name for f in fields(Hyperparameters)}
    unknown = sorted(set(saved_hp) - known)
    if unknown:
        msg = f"model {model_id!r}: its card holds hyperparameters this code does not know: {', '.join(unknown)}"
        raise ValidationError(msg, field="hyperparameters", value=unknown)
    # the step count the original run took is the budget; its minutes (if any) were already turned into it
    hp = replace(Hyperparameters(**saved_hp), minutes=None, steps=int(card["training"]["steps"]))
    if not hp.threads:
        hp = replace(hp, threads=int(card.get("hardware", {}).get("torch_threads") or 1))
    hardware = card.get("hardware") or {}
    device = device or choose_device(str(hardware.get("device", "cpu")))
    dtype = choose_dtype(hardware.get("dtype"), device)

    manifest, _ = repository.load_manifest(store, record.manifest_root)
    loader = ManifestLoader(manifest, store.media)
    catalog = store.snapshot(manifest.header.as_of)
    if out_dir is not None and (out_dir / "ckpt.pt").exists():
        msg = f"out: {out_dir} already holds a model; give an empty or new folder"
        raise ValidationError(msg, field="out", value=str(out_dir))
    folder = out_dir or Path(tempfile.mkdtemp(prefix=f"reproduce-{model_id[:40]}-"))
    try:
        result = train(
            manifest, loader, catalog, folder, hyperparameters=hp, device=device, dtype=dtype, progress=progress
        )
        again = result.card
        diff: float | None
        original_ckpt = settings.models_dir / model_id / "ckpt.pt"
        if again["weights"]["sha256"] == recorded_hash:
            diff, where = 0.0, ""
        elif original_ckpt.is_file():
            original = load_checkpoint(original_ckpt)["model"]
            reproduced = load_checkpoint(folder / "ckpt.pt")["model"]
            diff, where = max_difference(original, reproduced)
        else:
            diff, where = None, ""
    finally:
        if out_dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    differences = []
    then_code, now_code = card.get("code") or {}, code_version()
    if then_code.get("git_commit") != now_code["git_commit"]:
        differences.append(
            f"code: trained at commit {then_code.get('git_commit')}, reproduced at {now_code['git_commit']}"
        )
    then_versions, now_versions = card.get("versions") or {}, versions()
    for lib in sorted(set(then_versions) | set(now_versions)):
        if then_versions.get(lib) != now_versions.get(lib):
            differences.append(f"{lib}: {then_versions.get(lib)} then, {now_versions.get(lib)} now")
    if again["weights"]["sha256"] != recorded_hash and diff is None:
        differences.append(f"the original weights are not on this machine ({original_ckpt}): no parameter diff")
    return Reproduction(
        model_id=model_id,
        manifest_root=record.manifest_root,
        original_sha256=recorded_hash,
        reproduced_sha256=again["weights"]["sha256"],
        original=_setup(hardware, saved_hp),
        reproduced=_setup(again["hardware"], again["hyperparameters"]),
        max_abs_diff=diff,
        max_diff_parameter=where,
        differences=tuple(differences),
        seconds=time.perf_counter() - started,
        folder=out_dir,
    )
