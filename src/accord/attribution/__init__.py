"""Which training works shaped an output (attribution) and proof that it copies nobody (the replication guard).

Attribution (this package; the guard is :mod:`accord.attribution.guard`):

``contract``    the :class:`Attribution` record and the credential JSON the royalty engine reads
``weights``     scores → ppm weights with an explicit unattributed share; works and holders per side
``methods``     the method registry (``trak``, ``tracin``, ``gradsim``, ``embedding``) and its context
``gradients``   projected per-example gradients over checkpoints (or a dropout ensemble)
``influence``   TRAK, TracIn and gradient similarity over one stored feature index
``similarity``  a symbolic content embedding searched with FAISS
``service``     attribute an output or any MIDI file against a registered model's manifest
``remix``       a continuation's or remix's bars taken from its source, credited to it directly
``evaluate``    planted canaries (precision@1, recall@10 against chance) and leave-top-k-out
``typical``     the harder planted test: typical items at several strengths, precision and recall
``planted``     the tiny planted training set the tests and ``--planted`` use

Names are imported lazily: ``import accord.attribution`` does not load PyTorch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Attribution": "accord.attribution.contract",
    "attribution_problems": "accord.attribution.contract",
    "get_method": "accord.attribution.methods",
    "method_names": "accord.attribution.methods",
    "register_method": "accord.attribution.methods",
    "Query": "accord.attribution.methods",
    "attribute": "accord.attribution.service",
    "attribute_midi": "accord.attribution.service",
    "attribute_output": "accord.attribution.service",
    "credential_attribution": "accord.attribution.service",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    msg = f"module 'accord.attribution' has no attribute {name!r}"
    raise AttributeError(msg)
