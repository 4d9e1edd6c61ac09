"""The attribution-method registry and what every method is given.

A method turns a query (an output's tokens and MIDI) into one score per item of the model's
manifest, in manifest order, after an optional one-off ``index`` step whose result it keeps
under ``<model_dir>/attribution/``. The built-ins (``trak``, ``tracin``, ``gradsim`` in
:mod:`accord.attribution.influence`, ``embedding`` in :mod:`accord.attribution.similarity`)
register themselves with :func:`register_method` exactly as a plug-in would.

Each method declares a ``floor``: the share of an output it never attributes, because no
method of its kind explains all of a model's behaviour. The floors are set from how well each
kind of method predicts retraining in the published linear-datamodeling benchmarks (TRAK best,
then TracIn, then gradient similarity; content similarity measures resemblance, not influence):

========== ===== ======= ====================================================
method     floor causal  why
========== ===== ======= ====================================================
trak       0.20  yes     best published LDS (≈0.32 with 50 models on MAESTRO)
tracin     0.30  yes     LDS ≈0.13
gradsim    0.40  yes     LDS ≈0.06
embedding  0.50  no      similarity of content, not influence on the model
========== ===== ======= ====================================================
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from accord.datasets.manifest import Manifest
from accord.errors import ValidationError
from accord.registry.entities import Catalog
from accord.registry.media import MediaStore

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Query:
    """What is attributed.

    Attributes:
        token_ids: the piece as the model reads it: conditions, body (and ``EOS`` when it ended).
        midi: the piece's MIDI bytes (content methods read the notes).
        label: a name for messages (output id or file name).
    """

    token_ids: tuple[int, ...]
    midi: bytes
    label: str = ""


@dataclass
class AttributionContext:
    """A model, its manifest and registry view, and the per-method state built from them.

    Not a domain record: it caches (tokenized items, loaded indexes, networks) so that a
    second query against the same model costs only the query.

    Attributes:
        model_dir: the model folder (``ckpt.pt``, optional ``snapshots/``).
        manifest: the manifest the model was trained on: the only items that can be credited.
        catalog: the registry as of the manifest's ``as_of`` (titles, works, ownership shares).
        media: where the manifest's files are (read only through a hash-checking loader).
        k: projected gradient dimensions.
        max_members: checkpoints (or dropout members) gradients are averaged over.
        windows: bar-aligned windows of each sequence whose loss is differentiated.
        seed: the projection's seed.
        device: ``"cpu"``, ``"cuda"`` ... (``None``: CPU).
        cache: per-method state (filled by the methods).
    """

    model_dir: Path
    manifest: Manifest
    catalog: Catalog
    media: MediaStore
    k: int = 2048
    max_members: int = 3
    windows: int = 1
    seed: int = 0
    device: str | None = None
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def index_dir(self) -> Path:
        return self.model_dir / "attribution"

    @property
    def isrcs(self) -> list[str]:
        return [item.isrc for item in self.manifest.items]

    def tokenizer(self) -> Any:
        if "tokenizer" not in self.cache:
            from accord.model.checkpoint import load_checkpoint, tokenizer_from_checkpoint

            self.cache["tokenizer"] = tokenizer_from_checkpoint(load_checkpoint(self.model_dir))
        return self.cache["tokenizer"]

    def files(self) -> list[bytes]:
        """Every item's file, hash-checked, in manifest order."""
        if "files" not in self.cache:
            from accord.datasets.loader import ManifestLoader

            self.cache["files"] = [tf.data for tf in ManifestLoader(self.manifest, self.media)]
        return self.cache["files"]

    def sequences(self) -> list[tuple[int, ...] | None]:
        """Every item's tokens as training saw them (``None``: its file holds no usable notes)."""
        if "sequences" not in self.cache:
            from accord.model.data import catalog_key

            tok = self.tokenizer()
            out: list[tuple[int, ...] | None] = []
            for item, data in zip(self.manifest.items, self.files(), strict=True):
                try:
                    out.append(tuple(tok.encode(data, style=item.genre, key=catalog_key(self.catalog, item.isrc))))
                except ValidationError:
                    out.append(None)
            self.cache["sequences"] = out
        return self.cache["sequences"]

    def trained(self) -> np.ndarray:
        """(n,) bool: the item was trained on. Training holds some manifest items out for validation
        (named in the model card, or chosen by ISRC hash as training chose them); they shaped
        nothing and are never credited."""
        if "trained" not in self.cache:
            import json

            card_path = self.model_dir / "model_card.json"
            held: set[str] = set()
            if card_path.is_file():
                held = set(json.loads(card_path.read_text()).get("data", {}).get("val_isrcs", []))
            else:
                from accord.model.checkpoint import load_checkpoint
                from accord.model.data import held_out_fraction

                fraction = float(load_checkpoint(self.model_dir).get("hyperparameters", {}).get("val_fraction", 0.0))
                held = {i for i in self.isrcs if held_out_fraction(i) < fraction}
            self.cache["trained"] = np.array([i not in held for i in self.isrcs], dtype=bool)
        return self.cache["trained"]

    def credit_only_trained(self, scores: np.ndarray) -> np.ndarray:
        """``scores`` with every item training never saw set to the others' median (never named)."""
        trained = self.trained()
        if trained.all() or not trained.any():
            return scores
        out = np.array(scores, dtype=np.float64)
        out[~trained] = float(np.median(out[trained]))
        return out

    def torch_device(self) -> Any:
        import torch

        return torch.device(self.device or "cpu")


@dataclass(frozen=True)
class Scored:
    """Scores from a method that looked at only the best candidates of a very large manifest.

    Attributes:
        scores: (n,) the candidates' scores; every other item at the sample's median.
        sample: scores of a seeded uniform sample of the manifest (for the median and spread).
        excess_total: the estimated total excess over the median of all items.
    """

    scores: np.ndarray
    sample: np.ndarray
    excess_total: float


class AttributionMethod(Protocol):
    """An attribution method (see the module docstring); read-only attributes (a frozen dataclass fits)."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def floor(self) -> float: ...

    @property
    def causal(self) -> bool: ...

    @property
    def description(self) -> str: ...

    def index(self, ctx: AttributionContext, progress: Progress | None = None) -> dict[str, Any]:
        """Build (or find) the method's per-model index; what it holds (sizes, seconds)."""
        ...

    def scores(self, ctx: AttributionContext, query: Query) -> np.ndarray | Scored:
        """(n,) one score per manifest item, manifest order; higher: more influence."""
        ...


_METHODS: dict[str, AttributionMethod] = {}
BUILTIN_MODULES = ("accord.attribution.influence", "accord.attribution.similarity")
DEFAULT_METHOD = "trak"


def register_method(method: AttributionMethod) -> AttributionMethod:
    """Add a method under its ``name`` (a second method of the same name replaces the first)."""
    if not method.name or not 0.0 <= method.floor < 1.0:
        msg = f"method: {method.name!r} with floor {method.floor}; expected a name and 0 <= floor < 1"
        raise ValidationError(msg, field="method", value=method.name)
    _METHODS[method.name] = method
    return method


def unregister_method(name: str) -> None:
    """Remove a method (a plug-in unloading; unknown names are ignored)."""
    _METHODS.pop(name, None)


def _load_builtins() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def method_names() -> list[str]:
    _load_builtins()
    return sorted(_METHODS)


def get_method(name: str) -> AttributionMethod:
    _load_builtins()
    if name not in _METHODS:
        msg = f"method: {name!r} is not one of {', '.join(sorted(_METHODS))}"
        raise ValidationError(msg, field="method", value=name)
    return _METHODS[name]
