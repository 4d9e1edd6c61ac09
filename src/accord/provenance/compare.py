"""Field-by-field comparison of two copies of a credential.

An output's credential exists in several copies (the signed sidecar, the exact RFC 8785 text
embedded in the audio, the structured C2PA assertion a C2PA viewer shows); verification says
whether two copies hold the same document and, when they do not, names the first field where
they part: ``credential.guard.closest[0].catalog_seconds[1]``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any


def _kind(value: Any) -> str:
    """The JSON kind of a decoded value; ``bool`` is not a number, and ``int`` is not ``float``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _close_floats(a: float, b: float, ulps: int) -> bool:
    """``a`` and ``b`` are at most ``ulps`` representable doubles apart."""
    if a == b:
        return True
    step = a
    for _ in range(ulps):
        step = math.nextafter(step, b)
        if step == b:
            return True
    return False


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def first_difference(
    left: Any,
    right: Any,
    *,
    where: str = "credential",
    names: tuple[str, str] = ("left", "right"),
    float_ulps: int = 0,
) -> str | None:
    """Where two decoded JSON documents first differ, as a message naming the field; ``None`` if equal.

    Equal means the same keys, the same array lengths and, at every leaf, the same JSON kind
    (a boolean is not the integer 1, the integer 3 is not the float 3.0) and the same value.
    Object keys are visited in sorted order, so "first" is the same on every run.

    Args:
        left, right: the two documents.
        where: the name of the root, the start of every field path.
        names: what to call each side in the message (``("embedded", "sidecar")``).
        float_ulps: how many representable doubles apart two floats may be and still count as
            equal (0: exactly equal).
    """
    stack: list[tuple[str, Any, Any]] = [(where, left, right)]
    while stack:
        path, a, b = stack.pop()
        kind_a, kind_b = _kind(a), _kind(b)
        if kind_a != kind_b:
            return f"{path}: {names[0]} has {kind_a} {_show(a)}, {names[1]} has {kind_b} {_show(b)}"
        if kind_a == "object":
            keys_a, keys_b = set(a), set(b)
            for key in sorted(keys_a | keys_b, key=str):
                if key not in keys_b:
                    return f"{path}.{key}: only in the {names[0]}"
                if key not in keys_a:
                    return f"{path}.{key}: only in the {names[1]}"
            # reversed so that the smallest key is compared first (a stack pops the last pushed)
            stack.extend((f"{path}.{key}", a[key], b[key]) for key in sorted(keys_a, key=str, reverse=True))
        elif kind_a == "array":
            if len(a) != len(b):
                return f"{path}: {names[0]} has {len(a)} items, {names[1]} has {len(b)}"
            stack.extend((f"{path}[{i}]", a[i], b[i]) for i in reversed(range(len(a))))
        elif kind_a == "float":
            if not _close_floats(a, b, float_ulps):
                return f"{path}: {names[0]} has {_show(a)}, {names[1]} has {_show(b)}"
        elif a != b:
            return f"{path}: {names[0]} has {_show(a)}, {names[1]} has {_show(b)}"
    return None
