"""A piano-roll picture of a MIDI file: time in seconds across, pitch up, one colour per track.

Drawn with matplotlib's object API on the Agg canvas (no pyplot, no global state, so it is
safe from threads and servers). Notes are one :class:`~matplotlib.collections.PolyCollection`
per track, shaded by velocity; the pitch axis names every C (C4 = middle C, MIDI 60) and
shades the black-key rows; bar lines come from the file's time signatures.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from accord.errors import ValidationError
from accord.media.features import NOTE_NAMES, Performance, read_performance

SIZE = (1400, 500)
"""Default picture size in pixels (width, height)."""

_DPI = 100
_COLOURS = (
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
    "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
)  # fmt: skip  # matplotlib's tab10, reordered so the first tracks differ most
_BLACK_KEYS = frozenset({1, 3, 6, 8, 10})
_MAX_BAR_LINES = 300  # past this many bars the lines would grey the whole picture out


def note_name(pitch: int) -> str:
    """``60 -> "C4"`` (scientific pitch notation, middle C = C4)."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def piano_roll(
    midi: bytes | Path | Performance,
    out: Path,
    *,
    title: str = "",
    size: tuple[int, int] = SIZE,
) -> Path:
    """Draw ``midi`` as a piano roll and save it as a PNG at ``out``; returns ``out``.

    Args:
        title: shown above the roll (nothing when empty).
        size: picture size in pixels, ``(width, height)``.

    Raises:
        ValidationError: the bytes are not a MIDI file, or ``size`` is too small.
    """
    width, height = size
    if width < 200 or height < 150:
        msg = f"size={size!r}: expected at least 200x150 pixels"
        raise ValidationError(msg, field="size", value=size)
    perf = midi if isinstance(midi, Performance) else read_performance(midi)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)

    figure = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    notes = perf.notes
    pitched = notes[:, 4] >= 0
    if np.any(pitched):
        low, high = int(notes[pitched, 2].min()), int(notes[pitched, 2].max())
    elif len(notes):
        low, high = int(notes[:, 2].min()), int(notes[:, 2].max())
    else:
        low, high = 60, 72
    low, high = max(0, low - 2), min(127, high + 2)
    end = max(perf.seconds, 1.0)

    # Black-key rows, lightly shaded, behind everything.
    for pitch in range(low, high + 1):
        if pitch % 12 in _BLACK_KEYS:
            axes.axhspan(pitch - 0.5, pitch + 0.5, color="#f0f0f0", zorder=0, linewidth=0)
    # Bar lines.
    if 1 < len(perf.downbeats) <= _MAX_BAR_LINES:
        axes.vlines(perf.downbeats, low - 0.5, high + 0.5, colors="#c8c8c8", linewidth=0.6, zorder=1)

    handles: list[Patch] = []
    for index, instrument in enumerate(perf.instruments):
        rows = notes[perf.track == index]
        colour = _COLOURS[index % len(_COLOURS)]
        onset, duration, pitch, velocity = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
        right = onset + np.maximum(duration, 0.02)  # a zero-length note still shows as a tick
        vertices = np.stack(
            [
                np.column_stack([onset, pitch - 0.4]),
                np.column_stack([onset, pitch + 0.4]),
                np.column_stack([right, pitch + 0.4]),
                np.column_stack([right, pitch - 0.4]),
            ],
            axis=1,
        )  # (N, 4, 2)
        faces = np.tile(np.array(to_rgba(colour)), (len(rows), 1))
        faces[:, 3] = 0.45 + 0.55 * np.clip(velocity, 0, 127) / 127  # louder notes are more opaque
        axes.add_collection(PolyCollection(list(vertices), facecolors=faces, edgecolors="none", zorder=2))
        handles.append(Patch(color=colour, label=instrument.label))

    c_rows = [p for p in range(low, high + 1) if p % 12 == 0]
    if len(c_rows) < 2:  # a narrow range: name every natural note instead
        c_rows = [p for p in range(low, high + 1) if p % 12 not in _BLACK_KEYS]
    axes.set_yticks(c_rows, [note_name(p) for p in c_rows])
    axes.set_ylim(low - 0.5, high + 0.5)
    axes.set_xlim(0.0, end)
    axes.set_xlabel("time (s)")
    axes.set_ylabel("pitch")
    axes.grid(axis="y", color="#dddddd", linewidth=0.5)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    if title:
        axes.set_title(title, loc="left", fontsize=12)
    if handles:
        figure.legend(
            handles=handles,
            loc="outside right upper",  # constrained layout makes room for it beside the roll
            frameon=False,
            fontsize=9,
            title="instrument",
            title_fontsize=9,
        )

    fd, partial = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=".png")
    os.close(fd)
    try:
        figure.savefig(partial, format="png", dpi=_DPI)
        os.replace(partial, out)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return out
