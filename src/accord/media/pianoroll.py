"""A piano-roll picture of a MIDI file: time in seconds across, pitch up, one colour per track.

Drawn with Pillow (``ImageDraw`` on one RGB image; no matplotlib, no global state, so it is safe
from threads and servers). Pillow was chosen over matplotlib's Agg canvas because a generation
draws one roll in a fresh process: importing matplotlib (its figure, axes, projections and font
machinery) cost ~0.3-0.5 s of a cold ``accord generate`` and drawing ~0.13 s, against ~0.05 s for
Pillow to import and draw. Notes are rectangles, one colour per track, more opaque the louder
they are; the pitch axis names every C (C4 = middle C, MIDI 60) and shades the black-key rows;
bar lines come from the file's time signatures.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from accord.errors import ValidationError
from accord.media.features import NOTE_NAMES, Performance, read_performance

if TYPE_CHECKING:
    from PIL import ImageDraw, ImageFont

SIZE = (1400, 500)
"""Default picture size in pixels (width, height)."""

_COLOURS = (
    (0x1F, 0x77, 0xB4), (0xD6, 0x27, 0x28), (0x2C, 0xA0, 0x2C), (0xFF, 0x7F, 0x0E), (0x94, 0x67, 0xBD),
    (0x8C, 0x56, 0x4B), (0xE3, 0x77, 0xC2), (0x17, 0xBE, 0xCF), (0xBC, 0xBD, 0x22), (0x7F, 0x7F, 0x7F),
)  # fmt: skip  # matplotlib's tab10, reordered so the first tracks differ most
_BLACK_KEYS = frozenset({1, 3, 6, 8, 10})
_MAX_BAR_LINES = 300  # past this many bars the lines would grey the whole picture out
_BACKGROUND, _INK, _ROW, _GRID, _BAR = "#ffffff", "#333333", "#f0f0f0", "#dddddd", "#c8c8c8"
_TICK_STEPS = (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1200, 3600)  # seconds between time ticks
_MAX_TIME_TICKS = 14


def note_name(pitch: int) -> str:
    """``60 -> "C4"`` (scientific pitch notation, middle C = C4)."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font at ``size`` pixels (its scalable one where FreeType is available)."""
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _text_width(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> int:
    left, _, right, _ = draw.textbbox((0, 0), text, font=font)
    return int(right - left)


def _time_step(end: float) -> float:
    """Seconds between time ticks: the first of :data:`_TICK_STEPS` giving at most ``_MAX_TIME_TICKS`` ticks."""
    return next((s for s in _TICK_STEPS if end / s <= _MAX_TIME_TICKS), _TICK_STEPS[-1])


def _pitch_range(perf: Performance) -> tuple[int, int]:
    """The pitches shown: those played (drums only when nothing else plays), two semitones either side."""
    notes = perf.notes
    pitched = notes[:, 4] >= 0
    if np.any(pitched):
        low, high = int(notes[pitched, 2].min()), int(notes[pitched, 2].max())
    elif len(notes):
        low, high = int(notes[:, 2].min()), int(notes[:, 2].max())
    else:
        low, high = 60, 72
    return max(0, low - 2), min(127, high + 2)


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
    from PIL import Image, ImageDraw

    width, height = size
    if width < 200 or height < 150:
        msg = f"size={size!r}: expected at least 200x150 pixels"
        raise ValidationError(msg, field="size", value=size)
    perf = midi if isinstance(midi, Performance) else read_performance(midi)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)

    image = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(image, "RGBA")  # RGBA fills are blended over what is drawn already
    small, label_font, title_font = _font(11), _font(12), _font(14)
    low, high = _pitch_range(perf)
    end = max(perf.seconds, 1.0)
    c_rows = [p for p in range(low, high + 1) if p % 12 == 0]
    if len(c_rows) < 2:  # a narrow range: name every natural note instead
        c_rows = [p for p in range(low, high + 1) if p % 12 not in _BLACK_KEYS]

    # The frame: room for the pitch names and axis label on the left, the legend on the right.
    labels = [instrument.label for instrument in perf.instruments]
    legend_width = 0
    if labels:
        legend_width = 44 + max(_text_width(draw, text, small) for text in [*labels, "instrument"])
    left = 30 + max((_text_width(draw, note_name(p), small) for p in c_rows), default=0)
    right = width - 12 - legend_width
    top = 34 if title else 12
    bottom = height - 40
    if right - left < 50:  # a long instrument name on a narrow picture: the roll keeps its width
        right, legend_width = width - 12, 0

    def x_of(seconds: np.ndarray | float) -> np.ndarray:
        return left + np.asarray(seconds, dtype=np.float64) / end * (right - left)

    def y_of(pitch: np.ndarray | float) -> np.ndarray:  # pitch rows run from low - 0.5 to high + 0.5
        return bottom - (np.asarray(pitch, dtype=np.float64) - (low - 0.5)) / (high - low + 1) * (bottom - top)

    # Black-key rows behind everything, then the C grid lines and the bar lines.
    for pitch in range(low, high + 1):
        if pitch % 12 in _BLACK_KEYS:
            draw.rectangle((left, float(y_of(pitch + 0.5)), right, float(y_of(pitch - 0.5))), fill=_ROW)
    for pitch in c_rows:
        y = float(y_of(pitch))
        draw.line((left, y, right, y), fill=_GRID, width=1)
    if 1 < len(perf.downbeats) <= _MAX_BAR_LINES:
        for x in x_of(perf.downbeats[perf.downbeats <= end]):
            draw.line((float(x), top, float(x), bottom), fill=_BAR, width=1)

    # Notes: one colour per track, alpha 0.45 (silent) to 1.0 (velocity 127).
    notes = perf.notes
    for index in range(len(perf.instruments)):
        rows = notes[perf.track == index]
        red, green, blue = _COLOURS[index % len(_COLOURS)]
        onset, duration, pitch, velocity = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
        shown = (pitch >= low) & (pitch <= high)  # drums beyond the pitched range are left out, as off the axes
        onset, duration, pitch, velocity = onset[shown], duration[shown], pitch[shown], velocity[shown]
        x0 = x_of(onset)
        x1 = np.minimum(np.maximum(x_of(onset + np.maximum(duration, 0.02)), x0 + 1.0), right)  # short: still shown
        y0, y1 = y_of(pitch + 0.4), y_of(pitch - 0.4)
        alpha = np.rint(255 * (0.45 + 0.55 * np.clip(velocity, 0, 127) / 127)).astype(int)
        for a, b, c, d, o in zip(x0.tolist(), y0.tolist(), x1.tolist(), y1.tolist(), alpha.tolist(), strict=True):
            draw.rectangle((a, b, c, d), fill=(red, green, blue, o))

    # Axes: the left and bottom spines, pitch names at the C rows, time ticks in seconds.
    draw.line((left, top, left, bottom), fill=_INK, width=1)
    draw.line((left, bottom, right, bottom), fill=_INK, width=1)
    for pitch in c_rows:
        y = float(y_of(pitch))
        draw.line((left - 4, y, left, y), fill=_INK, width=1)
        draw.text((left - 7, y), note_name(pitch), fill=_INK, font=small, anchor="rm")
    step = _time_step(end)
    for tick in np.arange(0.0, end + 1e-9, step):
        x = float(x_of(tick))
        draw.line((x, bottom, x, bottom + 4), fill=_INK, width=1)
        draw.text((x, bottom + 7), f"{tick:g}", fill=_INK, font=small, anchor="mt")
    draw.text(((left + right) / 2, height - 4), "time (s)", fill=_INK, font=label_font, anchor="md")
    pitch_label = Image.new("RGB", (_text_width(draw, "pitch", label_font) + 4, 16), _BACKGROUND)
    ImageDraw.Draw(pitch_label).text((2, 8), "pitch", fill=_INK, font=label_font, anchor="lm")
    rotated = pitch_label.rotate(90, expand=True)
    image.paste(rotated, (4, int((top + bottom) / 2 - rotated.height / 2)))
    if title:
        draw.text((left, 8), title, fill=_INK, font=title_font)

    # The legend, beside the roll: one swatch per track.
    if labels and legend_width:
        x = right + 24
        draw.text((x, top), "instrument", fill=_INK, font=small)
        for index, text in enumerate(labels):
            y = top + 18 + 16 * index
            if y + 12 > bottom:
                break
            draw.rectangle((x, y + 1, x + 14, y + 11), fill=_COLOURS[index % len(_COLOURS)])
            draw.text((x + 20, y), text, fill=_INK, font=small)

    fd, partial = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=".png")
    os.close(fd)
    try:
        image.save(partial, format="PNG")
        os.replace(partial, out)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return out
