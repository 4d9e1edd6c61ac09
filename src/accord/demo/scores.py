"""Reading one piece: music21 parses it, and it is flattened to note events.

:func:`read_piece` runs in worker processes, so it takes and returns plain data: a
piece's title, style, key, meter and tempo, and every sounding note as
``[part, midi pitch, start tick, duration ticks]`` at :data:`TICKS_PER_QUARTER`.

Repeats are stripped, not expanded: each section is played once, and where a section
has first and second endings only the last ending is kept (expanding them is where
music21's own MIDI export fails on badly balanced repeats).
"""

from __future__ import annotations

import itertools
import re
import string
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from accord.demo.corpus import CHORALE, NOT_CHORALES, PieceRef, abc_field, abc_tunes, read_text
from accord.demo.styles import abc_tempo, default_tempo, infer_style, tempo_in_range

TICKS_PER_QUARTER = 480
"""MIDI resolution of the note events: divisible by 2, 3, 4, 5, 8, 16 (tuplets stay exact)."""


@dataclass(frozen=True)
class PieceTask:
    """What a worker needs to read one piece (plain data: it crosses process boundaries).

    Attributes:
        ref: the piece.
        root: the music21 corpus root.
    """

    ref: PieceRef
    root: str


def read_piece(task: PieceTask) -> dict[str, Any]:
    """Parse one piece; return its description and note events, or the reason it failed.

    The result is JSON-ready: ``{"status": "ok", "title", "style", "style_from", "key",
    "meter", "tempo_bpm", "parts", "events": [[part, pitch, start, duration], ...], ...}``
    or ``{"status": "skipped", "reason": ...}``. It never raises for a bad score.
    """
    import warnings

    from music21 import converter

    ref = task.ref
    path = Path(task.root) / ref.corpus_path
    if ref.collection == "bach" and ref.name in NOT_CHORALES:
        return {"status": "skipped", "reason": "not_a_chorale"}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # music21 warns about every odd ABC symbol
            if ref.number is None:
                score = converter.parse(path, forceSource=True)
            else:
                score = converter.parse(path, number=ref.number, forceSource=True)
    except Exception as exc:  # music21 raises many types for malformed scores
        return {"status": "skipped", "reason": f"parse_error:{type(exc).__name__}"}
    try:
        return _describe(ref, score, path)
    except Exception as exc:  # an odd structure (repeats, voices) we cannot flatten
        return {"status": "skipped", "reason": f"export_error:{type(exc).__name__}"}


def _describe(ref: PieceRef, score: Any, path: Path) -> dict[str, Any]:
    from music21 import meter as m21meter
    from music21 import tempo

    events = _note_events(score)
    if not events:
        return {"status": "skipped", "reason": "no_notes"}
    first_ts = next(iter(score.recurse().getElementsByClass(m21meter.TimeSignature)), None)
    meter = first_ts.ratioString if first_ts is not None else ""
    block = ""
    if ref.number is not None:
        block = dict(abc_tunes(read_text(path))).get(ref.number, "")
    title = _title(ref, score, block)
    if ref.collection == "bach":
        style, style_from = CHORALE, "collection"
    else:
        r_field = abc_field(block, "R")
        style, style_from = infer_style(ref.collection, ref.name, r_field, title, meter)
    if ref.number is not None:
        bpm = abc_tempo(block)
    else:
        mark = next(iter(score.recurse().getElementsByClass(tempo.MetronomeMark)), None)
        bpm = round(mark.getQuarterBPM()) if mark is not None and mark.getQuarterBPM() else None
    if bpm is not None and not tempo_in_range(bpm):
        bpm = None
    return {
        "status": "ok",
        "title": title,
        "style": style,
        "style_from": style_from,
        "key": _key_name(score),
        "sharps": _sharps(score),
        "meter": meter,
        "tempo_bpm": bpm if bpm is not None else default_tempo(style, meter),
        "tempo_from": "score" if bpm else "style",
        "parts": 1 + max(e[0] for e in events),
        "transcriber": transcription_credit(abc_field(block, "Z")),
        "events": events,
    }


def _title(ref: PieceRef, score: Any, block: str) -> str:
    if ref.collection == "bach":
        return _chorale_title(ref.name)
    title = abc_field(block, "T") or (score.metadata.title if score.metadata else "") or ref.name
    title = re.sub(r"\s+", " ", title.replace(" -- ", " ")).strip().rstrip(".,;:").strip()
    if title.isupper():  # Ryan's shouts some titles: "HALF-PENNY -- REEL"
        title = string.capwords(title.lower())
    if title.endswith(", The"):  # index form "Banshee, The"
        title = "The " + title[: -len(", The")]
    return title or ref.name


def transcription_credit(z_field: str) -> str:
    """An ABC ``Z:`` credit without e-mail addresses, web links or timestamps."""
    text = re.sub(r"[<(\[][^>)\]]*[>)\]]", " ", z_field.strip('"'))
    text = re.sub(r"\S*[@:]\S*|\S*www\.\S*|\b\d{8,}\b", " ", text)
    text = re.sub(r"[\s*,]+", " ", text).strip(" ,*")
    return text


def _chorale_title(stem: str) -> str:
    from music21.corpus import chorales

    bwv = stem.removeprefix("bwv")
    base = bwv.split("-", 1)[0]
    entry = chorales.ChoraleListRKBWV().byBWV.get(base)
    label = f"BWV {bwv}"
    return f"{entry['title']}, {label}" if entry else f"Chorale, {label}"


def _key_name(score: Any) -> str:
    from music21 import key

    for k in score.recurse().getElementsByClass(key.KeySignature):
        if isinstance(k, key.Key):
            return f"{k.tonic.name.replace('-', 'b')} {k.mode}"
        return f"{k.asKey('major').tonic.name.replace('-', 'b')} major"
    analysed = score.analyze("key")
    return f"{analysed.tonic.name.replace('-', 'b')} {analysed.mode}"


def _sharps(score: Any) -> int:
    from music21 import key

    ks = next(iter(score.recurse().getElementsByClass(key.KeySignature)), None)
    return int(ks.sharps) if ks is not None else 0


def _ticks(quarter_length: Any) -> int:
    return round(Fraction(quarter_length) * TICKS_PER_QUARTER)


def _note_events(score: Any) -> list[list[int]]:
    """Every sounding note as ``[part, midi pitch, start tick, duration ticks]``, sorted.

    Repeats are stripped: sections play once, first endings are dropped where a later
    ending exists, tied notes are merged, grace notes (no duration) are left out.
    """
    from music21 import stream

    events: list[list[int]] = []
    parts = list(score.parts) or [score]
    for part_index, part in enumerate(parts):
        open_ties: dict[int, list[int]] = {}
        for base, element in _timeline(part, stream):
            if element.duration.quarterLength == 0:
                continue
            start = _ticks(base)
            length = _ticks(element.duration.quarterLength)
            tie = element.tie.type if element.tie is not None else None
            for pitch in element.pitches:
                midi = int(pitch.midi)
                held = open_ties.get(midi)
                if tie in ("continue", "stop") and held is not None and held[2] + held[3] == start:
                    held[3] += length
                else:
                    held = [part_index, midi, start, length]
                    events.append(held)
                if tie in ("start", "continue"):
                    open_ties[midi] = held
                else:
                    open_ties.pop(midi, None)
    events = sorted(e for e in events if 0 <= e[1] <= 127 and e[3] > 0)
    # two voices of one part striking the same pitch: end the first where the next begins
    last: dict[tuple[int, int], list[int]] = {}
    for e in events:
        before = last.get((e[0], e[1]))
        if before is not None and before[2] + before[3] > e[2]:
            before[3] = e[2] - before[2]
        last[(e[0], e[1])] = e
    return [e for e in events if e[3] > 0]


def _timeline(part: Any, stream: Any) -> list[tuple[Fraction, Any]]:
    """``(absolute offset, note or chord)`` for a part, with first endings removed."""
    from music21 import spanner

    measures = list(part.getElementsByClass(stream.Measure))
    if not measures:
        return [(Fraction(n.offset), n) for n in part.flatten().notes]
    brackets = [
        b for b in part.spanners.getElementsByClass(spanner.RepeatBracket) if b.numberRange and b.getFirst() is not None
    ]
    brackets.sort(key=lambda b: b.getFirst().offset)
    dropped: set[int] = set()
    for ending, following in itertools.pairwise(brackets):
        # a first ending followed by a later one: playing each section once, keep the last
        if min(following.numberRange) > max(ending.numberRange):
            dropped.update(id(m) for m in ending.getSpannedElements())
    out: list[tuple[Fraction, Any]] = []
    shift = Fraction(0)
    for m in measures:
        if id(m) in dropped:
            shift += Fraction(m.duration.quarterLength)
            continue
        base = Fraction(m.offset) - shift
        out.extend((base + Fraction(n.offset), n) for n in m.flatten().notes)
    return out
