"""The symbolic music model: tokenizer, network, training on a manifest, sampling.

``tokenizer``  MIDI ↔ ids: REMI (programs in one stream) after STYLE/KEY/TEMPO/LEN conditions
``gpt``        the decoder-only transformer (nanoGPT-style) with a KV cache
``data``       tokenized pieces, the ISRC-hash split, bar-aligned windows
``train``      verify → tokenize → split → train → card, resumable and seeded
``checkpoint`` self-describing checkpoints
``card``       the model card (JSON, Markdown, loss plot)
``sample``     load a model folder, generate a piece

Names are imported lazily: ``import accord.model`` does not load PyTorch. The training
entry point is ``accord.model.train.train`` (the submodule's name would shadow it here).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "MusicTokenizer": "accord.model.tokenizer",
    "estimate_key": "accord.model.conditions",
    "GPT": "accord.model.gpt",
    "GPTConfig": "accord.model.gpt",
    "PRESETS": "accord.model.gpt",
    "device_auto": "accord.model.gpt",
    "TrainResult": "accord.model.train",
    "load_model": "accord.model.sample",
    "generate": "accord.model.sample",
    "LoadedModel": "accord.model.sample",
    "GeneratedPiece": "accord.model.sample",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    msg = f"module 'accord.model' has no attribute {name!r}"
    raise AttributeError(msg)
