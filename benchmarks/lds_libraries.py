"""The field's attribution libraries on Accord's model, for the LDS benchmark (:mod:`benchmarks.lds`).

* ``kronfluence`` (Grosse et al. 2023, EK-FAC influence functions; ``kronfluence==1.0.1``):
  ``kron-ekfac`` (eigenvalue-corrected Kronecker factors of every Linear layer) and ``kron-kfac``;
* ``dattri`` (``dattri==0.3.0``): ``dattri-trak`` (TRAK on the final weights, its own random
  projection to half as many dimensions as items, at most 2,048) and ``dattri-datainf``
  (DataInf's closed-form inverse-Hessian approximation).

Each adapter takes the reference model, the training examples and the queries as the same
windows our own methods differentiate (:func:`accord.attribution.gradients.windows_of`, one
window per sequence) and returns ``τ[items, queries]`` with the sign of ours: positive where
training on the item raises the query's likelihood. Every library scores the mean per-token
cross-entropy (``kronfluence``'s training loss is the summed one it needs for its factors, and
its Fisher is sampled from the model's own predictions, as its documentation asks).

Installing: both libraries pin ``torchvision``, which pulls a newer ``torch`` than Accord's
2.13.0; ``make attribution-libraries`` installs them without their dependencies, with the small
ones they import::

    pip install --no-deps kronfluence==1.0.1 dattri==0.3.0 accelerate einops einconv opt_einsum safetensors psutil

Where they are missing, :func:`available` says so and the benchmark scores our methods only.
"""

from __future__ import annotations

import importlib.util
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

IGNORE = -1  # targets that are not scored (conditions, padding), as in accord.attribution.gradients
LIBRARY_METHODS = ("kron-ekfac", "kron-kfac", "dattri-trak", "dattri-datainf")


def available() -> dict[str, bool]:
    """Which libraries import here."""
    return {name: importlib.util.find_spec(name) is not None for name in ("kronfluence", "dattri")}


def examples(model_dir: Path, sequences: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets ``(N, T)``: one window per sequence, as our gradient index takes it."""
    from accord.attribution.gradients import windows_of
    from accord.model.checkpoint import load_checkpoint, model_from_checkpoint, tokenizer_from_checkpoint

    ckpt = load_checkpoint(model_dir)
    block = model_from_checkpoint(ckpt).config.block_size
    tok = tokenizer_from_checkpoint(ckpt)
    pairs = [windows_of(ids, block, tok, 1) for ids in sequences]
    return torch.cat([x for x, _ in pairs]), torch.cat([y for _, y in pairs])


def _model(model_dir: Path) -> torch.nn.Module:
    from accord.model.checkpoint import load_checkpoint, model_from_checkpoint

    return model_from_checkpoint(load_checkpoint(model_dir)).float().eval()


def _mean_ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the scored targets of one or more windows."""
    flat_y = y.reshape(-1)
    loss = F.cross_entropy(logits.float().reshape(flat_y.numel(), -1), flat_y, ignore_index=IGNORE, reduction="sum")
    return loss / (flat_y != IGNORE).sum().clamp_min(1)


# kronfluence ------------------------------------------------------------------------------------


def kronfluence_scores(
    model_dir: Path,
    train: tuple[torch.Tensor, torch.Tensor],
    query: tuple[torch.Tensor, torch.Tensor],
    *,
    strategy: str = "ekfac",
    damping: float | None = None,
) -> np.ndarray:
    """``τ[items, queries]`` by kronfluence's pairwise influence (``strategy``: ``ekfac``, ``kfac``,
    ``diagonal`` or ``identity``; ``damping``: ``None`` is its heuristic, 0.1 × the mean eigenvalue)."""
    from kronfluence.analyzer import Analyzer, prepare_model
    from kronfluence.arguments import FactorArguments, ScoreArguments
    from kronfluence.task import Task

    class NextToken(Task):
        """Next-token prediction: the summed loss for the factors, the mean loss as measurement."""

        def compute_train_loss(self, batch: Any, model: torch.nn.Module, sample: bool = False) -> torch.Tensor:
            x, y = batch
            logits, _ = model(x)
            logits = logits.float().reshape(-1, logits.size(-1))
            flat = y.reshape(-1)
            if sample:  # the true Fisher: targets drawn from the model's own predictions
                with torch.no_grad():
                    drawn = torch.multinomial(logits.detach().softmax(-1), 1).flatten()
                flat = torch.where(flat == IGNORE, flat, drawn)
            return F.cross_entropy(logits, flat, ignore_index=IGNORE, reduction="sum")

        def compute_measurement(self, batch: Any, model: torch.nn.Module) -> torch.Tensor:
            x, y = batch
            logits, _ = model(x)
            return _mean_ce(logits, y) * x.size(0)  # per query: its mean per-token loss

    model = prepare_model(_model(model_dir), NextToken())
    train_set = torch.utils.data.TensorDataset(*train)
    query_set = torch.utils.data.TensorDataset(*query)
    with tempfile.TemporaryDirectory() as out:
        analyzer = Analyzer("accord-lds", model, NextToken(), cpu=True, disable_tqdm=True, output_dir=out)
        analyzer.fit_all_factors(
            "factors",
            train_set,
            per_device_batch_size=8,
            factor_args=FactorArguments(strategy=strategy),
            overwrite_output_dir=True,
        )
        analyzer.compute_pairwise_scores(
            "scores",
            "factors",
            query_set,
            train_set,
            per_device_query_batch_size=1,
            per_device_train_batch_size=8,
            score_args=ScoreArguments(damping_factor=damping),
            overwrite_output_dir=True,
        )
        scores = analyzer.load_pairwise_scores("scores")["all_modules"]  # (queries, items)
    # kronfluence's scores: g_query · H⁻¹ · g_train of the losses, positive where training on the
    # item lowers the query's loss (raises its likelihood): our sign already
    return scores.T.double().numpy()


# dattri -------------------------------------------------------------------------------------------


def _dattri_task(model: torch.nn.Module) -> Any:
    from dattri.task import AttributionTask

    def loss(params: dict[str, torch.Tensor], data: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = data
        logits, _ = torch.func.functional_call(model, params, (x.reshape(-1, x.size(-1)),))
        return _mean_ce(logits, y)

    return AttributionTask(loss_func=loss, model=model, checkpoints=model.state_dict())


def dattri_scores(
    model_dir: Path,
    train: tuple[torch.Tensor, torch.Tensor],
    query: tuple[torch.Tensor, torch.Tensor],
    *,
    method: str = "trak",
    proj_dim: int = 2048,
    regularization: float = 0.0,
) -> np.ndarray:
    """``τ[items, queries]`` by dattri (``method``: ``trak``, or ``datainf`` for DataInf's influence)."""
    from dattri.algorithm.influence_function import IFAttributorDataInf
    from dattri.algorithm.trak import TRAKAttributor

    model = _model(model_dir)
    task = _dattri_task(model)
    train_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*train), batch_size=8, shuffle=False)
    query_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*query), batch_size=1, shuffle=False)
    if method == "trak":

        def correct(params: dict[str, torch.Tensor], data: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            x, y = data
            logits, _ = torch.func.functional_call(model, params, (x.reshape(-1, x.size(-1)),))
            return torch.exp(-_mean_ce(logits, y))

        attributor: Any = TRAKAttributor(
            task=task,
            correct_probability_func=correct,
            projector_kwargs={"proj_dim": proj_dim, "proj_max_batch_size": 8, "proj_seed": 0, "device": "cpu"},
            device="cpu",
            regularization=regularization,
        )
    elif method == "datainf":
        attributor = IFAttributorDataInf(task=task, device="cpu", regularization=regularization or 0.01)
    else:
        msg = f"method: {method!r} is not one of trak, datainf"
        raise ValueError(msg)
    attributor.cache(train_loader)
    if method == "trak":
        scores = attributor.attribute(query_loader)
    else:
        scores = attributor.attribute(train_loader, query_loader)
    # dattri's TRAK and IF scores: positive where the item helps the query (our sign)
    return scores.detach().double().numpy()  # (items, queries)


def library_scores(
    model_dir: Path,
    sequences: Sequence[Sequence[int]],
    queries: Sequence[Sequence[int]],
    methods: Sequence[str] = LIBRARY_METHODS,
    say: Callable[[str], None] = lambda _m: None,
) -> dict[str, tuple[np.ndarray, float]]:
    """``{method: (τ[items, queries], seconds)}`` for each library method whose library imports."""
    have = available()
    train = examples(model_dir, sequences)
    query = examples(model_dir, queries)
    out: dict[str, tuple[np.ndarray, float]] = {}
    for name in methods:
        library = "kronfluence" if name.startswith("kron-") else "dattri"
        if not have[library]:
            say(f"  {name}: {library} is not installed (see benchmarks/lds_libraries.py); left out")
            continue
        t0 = time.perf_counter()
        if name.startswith("kron-"):
            tau = kronfluence_scores(model_dir, train, query, strategy=name.removeprefix("kron-"))
        else:
            # dattri's TRAK solves (ΦᵀΦ + λI) with an absolute λ (0 by default): with fewer items than
            # projected dimensions ΦᵀΦ is singular, so the projection is kept below the item count
            dims = min(2048, max(8, len(train[0]) // 2))
            tau = dattri_scores(model_dir, train, query, method=name.removeprefix("dattri-"), proj_dim=dims)
        out[name] = (tau, time.perf_counter() - t0)
        say(f"  {name}: scored in {out[name][1]:.0f} s")
    return out
