"""MIDI ↔ token ids: MidiTok's REMI with programs in one stream, led by four condition tokens.

A sequence is ``STYLE_<genre> KEY_<tonic>_<mode> TEMPO_<band> LEN_<bars>`` followed by the
REMI body (``Bar TimeSig Position Program Pitch Velocity Duration ...``) and ``EOS``.
The REMI vocabulary comes from a fixed :class:`miditok.TokenizerConfig` (no BPE), so the
same configuration always gives the same ids; the condition tokens are appended after it
(styles in sorted order), so a tokenizer is fully described by its styles and versions.

Keys come from the catalog (``Recording.metadata["key"]``) when it has one, otherwise from a
Krumhansl-Schmuckler estimate over the notes (:func:`estimate_key`). Each condition has an
``*_unknown`` token: training drops conditions to it now and then, so "any key" is a request
the model understands.
"""

from __future__ import annotations

import importlib.metadata
import json
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import miditok
from symusic.core import KeySignatureTick, ScoreTick, TempoTick

import accord
from accord.errors import ValidationError
from accord.model.conditions import (
    LEN_BUCKETS,
    N_CONDITIONS,
    TEMPO_BANDS,
    TONICS,
    UNKNOWN,
    estimate_key,
    key_name,
    len_bucket,
    parse_key,
    score_tempo,
    style_slug,
    tempo_band,
)
from accord.model.contracts import TIME_SIGNATURE_RANGE

FORMAT = "accord-tokenizer/1"
FILENAME = "tokenizer.json"

# The REMI configuration, fixed: changing any value changes the ids, so it is saved with every model.
MIDITOK_CONFIG: dict[str, Any] = {
    "pitch_range": (21, 109),  # the piano's range: GM2's recommended range for every melodic program
    "beat_res": {(0, 4): 8, (4, 12): 4},  # 1/32 notes within a bar's span, 1/16 for longer durations
    "num_velocities": 8,  # eight dynamics (ppp..fff): enough for phrasing, a small vocabulary
    "special_tokens": ("PAD", "BOS", "EOS", "MASK"),
    "use_programs": True,  # one stream for every instrument: a Program token before each note
    "one_token_stream_for_programs": True,
    "program_changes": False,  # Program before every note: any window decodes to the right instruments
    "use_time_signatures": True,  # jigs (6/8), reels (2/2) and airs (3/4) differ first of all in metre
    "time_signature_range": TIME_SIGNATURE_RANGE,  # the metres a request may ask for (contracts.METERS)
    "use_tempos": False,  # tempo is a condition (TEMPO_<band>) and is written into the decoded file
    "use_chords": False,
    "use_rests": False,
}


def _versions() -> dict[str, str]:
    return {
        "accord": accord.__version__,
        "miditok": importlib.metadata.version("miditok"),
        "symusic": importlib.metadata.version("symusic"),
    }


def parse_midi(midi_bytes: bytes) -> ScoreTick:
    try:
        return ScoreTick.from_midi(midi_bytes)
    except Exception as exc:  # symusic raises plain RuntimeError / ValueError on malformed files
        msg = f"midi: {len(midi_bytes)} bytes could not be read as a MIDI file ({exc})"
        raise ValidationError(msg, field="midi", value=len(midi_bytes)) from exc


@dataclass(frozen=True)
class EncodedPiece:
    """A piece as the model sees it.

    Attributes:
        ids: condition ids, body ids, then ``EOS``.
        key: the key conditioned on (``"G major"``).
        tempo_bpm: the piece's tempo.
        bars: its length in bars.
        programs: the General MIDI programs its notes play on (drums are -1).
    """

    ids: tuple[int, ...]
    key: str
    tempo_bpm: float
    bars: int
    programs: frozenset[int]


def _miditok_config() -> miditok.TokenizerConfig:
    kwargs = dict(MIDITOK_CONFIG)
    kwargs["special_tokens"] = list(kwargs["special_tokens"])
    kwargs["time_signature_range"] = {d: list(n) for d, n in kwargs["time_signature_range"].items()}
    return miditok.TokenizerConfig(**kwargs)


def _config_json() -> dict[str, Any]:
    """:data:`MIDITOK_CONFIG` in JSON form (tuple keys written out), as saved with a model."""
    out = dict(MIDITOK_CONFIG)
    out["beat_res"] = [[lo, hi, res] for (lo, hi), res in MIDITOK_CONFIG["beat_res"].items()]
    out["time_signature_range"] = {str(d): list(n) for d, n in MIDITOK_CONFIG["time_signature_range"].items()}
    out["special_tokens"] = list(MIDITOK_CONFIG["special_tokens"])
    out["pitch_range"] = list(MIDITOK_CONFIG["pitch_range"])
    return out


def condition_names(styles: Iterable[str]) -> tuple[str, ...]:
    """Every condition token, in id order: styles (sorted), keys (by tonic, major then minor), tempi, lengths."""
    slugs = sorted({style_slug(s) for s in styles} - {UNKNOWN})
    keys = [f"KEY_{TONICS[pc]}_{mode}" for mode in ("major", "minor") for pc in range(12)]
    return (
        *(f"STYLE_{s}" for s in [UNKNOWN, *slugs]),
        *keys,
        f"KEY_{UNKNOWN}",
        *(f"TEMPO_{band}" for band, _, _ in TEMPO_BANDS),
        f"TEMPO_{UNKNOWN}",
        *(f"LEN_{b}" for b in (*(str(x) for x in LEN_BUCKETS), "long")),
        f"LEN_{UNKNOWN}",
    )


@dataclass(frozen=True)
class MusicTokenizer:
    """REMI (programs in one stream) plus condition tokens.

    Attributes:
        styles: the style slugs it conditions on (sorted; ``unknown`` is always there too).
        style_programs: the programs seen in training pieces of each style (sampling keeps to them).
        style_tempo_bpm: the median training tempo of each style (a decoded file's tempo when none is asked).
        style_ensembles: each style's instrumentations (the programs of one piece) with how many
            training pieces had each, most common first: sampling plays one of them.
        style_pitch_ranges: for each style, each program's lowest and highest pitch in the training
            pieces (pitched notes only; drums are not in it): sampling keeps every note inside them.
        style_max_chord: for each style, the most notes any training piece strikes at one instant
            (one ``Position``): sampling never piles up more.
        style_meters: each style's metres with how many training bars had each, most common first:
            a piece asked for without a metre takes one of them (:mod:`accord.model.contracts`).
        style_scale_degrees: for each style and mode, how many training notes fell on each of the
            12 degrees above the key's tonic: the accidentals a style uses are measured from it.
        tempo_range: the slowest and fastest tempo of the training pieces (``None``: not kept).
    """

    styles: tuple[str, ...]
    style_programs: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    style_tempo_bpm: Mapping[str, float] = field(default_factory=dict)
    style_ensembles: Mapping[str, tuple[tuple[tuple[int, ...], int], ...]] = field(default_factory=dict)
    style_pitch_ranges: Mapping[str, Mapping[int, tuple[int, int]]] = field(default_factory=dict)
    style_max_chord: Mapping[str, int] = field(default_factory=dict)
    style_meters: Mapping[str, tuple[tuple[str, int], ...]] = field(default_factory=dict)
    style_scale_degrees: Mapping[str, Mapping[str, tuple[int, ...]]] = field(default_factory=dict)
    tempo_range: tuple[float, float] | None = None
    remi: miditok.REMI = field(default_factory=lambda: miditok.REMI(_miditok_config()), repr=False, compare=False)
    _conditions: dict[str, int] = field(init=False, repr=False, compare=False)
    _names: dict[int, str] = field(init=False, repr=False, compare=False)
    _special: frozenset[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        base = len(self.remi)
        conditions = {name: base + i for i, name in enumerate(condition_names(self.styles))}
        names = {int(v): k for k, v in self.remi.vocab.items()} | {v: k for k, v in conditions.items()}
        special = {self.remi.vocab[f"{t}_None"] for t in ("PAD", "BOS", "MASK")} | set(conditions.values())
        object.__setattr__(self, "_conditions", conditions)
        object.__setattr__(self, "_names", names)
        object.__setattr__(self, "_special", frozenset(special))

    # construction -------------------------------------------------------------------------

    @classmethod
    def build(cls, styles: Sequence[str]) -> MusicTokenizer:
        """A tokenizer for these styles (genres as in the manifest; order and repeats do not matter)."""
        return cls(tuple(sorted({style_slug(s) for s in styles} - {UNKNOWN})))

    def with_style_stats(
        self,
        pieces: Iterable[tuple[str, Iterable[int], float]],
        *,
        bodies: Iterable[tuple[str, Sequence[int]]] = (),
    ) -> MusicTokenizer:
        """The same vocabulary, with what training saw of each style.

        ``pieces`` gives ``(genre, programs, tempo_bpm)`` per piece; ``bodies`` gives ``(genre, ids)``
        per piece, whose notes (:meth:`note_pitches`) make each style's per-program pitch ranges.
        """
        ensembles: dict[str, Counter[tuple[int, ...]]] = {}
        tempi: dict[str, list[float]] = {}
        for genre, programs, tempo in pieces:
            ensembles.setdefault(style_slug(genre), Counter())[tuple(sorted(set(programs)))] += 1
            tempi.setdefault(style_slug(genre), []).append(float(tempo))
        ranges: dict[str, dict[int, tuple[int, int]]] = {}
        chords: dict[str, int] = {}
        meters: dict[str, Counter[str]] = {}
        degrees: dict[str, dict[str, list[int]]] = {}
        for genre, ids in bodies:
            style = ranges.setdefault(style_slug(genre), {})
            for program, pitch in self.note_pitches(ids):
                low, high = style.get(program, (pitch, pitch))
                style[program] = (min(low, pitch), max(high, pitch))
            chords[style_slug(genre)] = max(chords.get(style_slug(genre), 0), self.max_chord(ids))
            meters.setdefault(style_slug(genre), Counter()).update(self.meters(ids))
            counted = self.scale_degree_counts(ids)
            if counted is not None:
                total = degrees.setdefault(style_slug(genre), {}).setdefault(counted[0], [0] * 12)
                total[:] = [a + b for a, b in zip(total, counted[1], strict=True)]
        all_tempi = [t for ts in tempi.values() for t in ts]
        return MusicTokenizer(
            self.styles,
            style_programs={s: tuple(sorted({p for e in c for p in e})) for s, c in sorted(ensembles.items())},
            style_tempo_bpm={s: statistics.median(t) for s, t in sorted(tempi.items())},
            style_ensembles={
                s: tuple(sorted(c.items(), key=lambda e: (-e[1], e[0]))) for s, c in sorted(ensembles.items())
            },
            style_pitch_ranges={s: dict(sorted(r.items())) for s, r in sorted(ranges.items()) if r},
            style_max_chord={s: n for s, n in sorted(chords.items()) if n},
            style_meters={
                s: tuple(sorted(c.items(), key=lambda e: (-e[1], e[0]))) for s, c in sorted(meters.items()) if c
            },
            style_scale_degrees={s: {m: tuple(c) for m, c in sorted(d.items())} for s, d in sorted(degrees.items())},
            tempo_range=(round(min(all_tempi), 1), round(max(all_tempi), 1))
            if all_tempi
            else None,  # MIDI stores µs per beat
            remi=self.remi,
        )

    def note_pitches(self, ids: Iterable[int]) -> list[tuple[int, int]]:
        """``(program, pitch)`` of every pitched note in ``ids``: each ``Pitch`` token, after its ``Program``."""
        out: list[tuple[int, int]] = []
        program: int | None = None
        for token in ids:
            name = self._names.get(int(token), "")
            if name.startswith("Program_"):
                program = int(name.removeprefix("Program_"))
            elif name.startswith("Pitch_") and program is not None and program >= 0:
                out.append((program, int(name.removeprefix("Pitch_"))))
        return out

    def max_chord(self, ids: Iterable[int]) -> int:
        """The most notes (``Program`` tokens) between two time tokens (``Position`` or ``Bar``) in ``ids``."""
        most = count = 0
        for token in ids:
            name = self._names.get(int(token), "")
            if name.startswith(("Position_", "Bar_")):
                count = 0
            elif name.startswith("Program_"):
                count += 1
                most = max(most, count)
        return most

    def meters(self, ids: Iterable[int]) -> list[str]:
        """The metre of every bar in ``ids`` (``"6/8"``: each ``TimeSig`` token, one after every ``Bar``)."""
        names = (self._names.get(int(token), "") for token in ids)
        return [name.removeprefix("TimeSig_") for name in names if name.startswith("TimeSig_")]

    def scale_degree_counts(self, ids: Sequence[int]) -> tuple[str, list[int]] | None:
        """``(mode, notes on each of the 12 degrees above the tonic)`` of a piece, by its ``KEY`` condition.

        ``None`` when ``ids`` start with no known key.
        """
        names = [self._names.get(int(token), "") for token in ids[:N_CONDITIONS]]
        key = next((n for n in names if n.startswith("KEY_") and not n.endswith(UNKNOWN)), None)
        if key is None:
            return None
        _, tonic, mode = key.split("_")
        counts = [0] * 12
        for _, pitch in self.note_pitches(ids):
            counts[(pitch - TONICS.index(tonic)) % 12] += 1
        return mode, counts

    def pitch_token_ids(self, lowest: int, highest: int) -> set[int]:
        """Ids of the ``Pitch_<n>`` tokens with ``lowest <= n <= highest`` (drum pitches are not among them)."""
        return {
            i for name, i in self.remi.vocab.items() if name.startswith("Pitch_") and lowest <= int(name[6:]) <= highest
        }

    def pitch_range(self, style: str, programs: Iterable[int] | None = None) -> tuple[int, int] | None:
        """The lowest and highest pitch training saw in ``style`` on ``programs`` (every program when ``None``).

        ``None`` when training saw no such note (an unknown style, or a model trained before ranges were kept).
        """
        ranges = self.style_pitch_ranges.get(style_slug(style), {})
        chosen = [r for p, r in ranges.items() if programs is None or p in set(programs)]
        if not chosen:
            return None
        return min(r[0] for r in chosen), max(r[1] for r in chosen)

    # vocabulary ---------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return len(self.remi) + len(self._conditions)

    @property
    def condition_offset(self) -> int:
        """The first condition id: every id below it is a REMI token."""
        return len(self.remi)

    @property
    def pad_id(self) -> int:
        return int(self.remi.pad_token_id)

    @property
    def eos_id(self) -> int:
        return int(self.remi.vocab["EOS_None"])

    @property
    def bar_id(self) -> int:
        return int(self.remi.vocab["Bar_None"])

    def token_id(self, name: str) -> int:
        """The id of a token by name (``"Bar_None"``, ``"STYLE_reel"`` ...)."""
        ids = self._conditions | self.remi.vocab
        if name not in ids:
            msg = f"token: {name!r} is not in the vocabulary"
            raise ValidationError(msg, field="token", value=name)
        return int(ids[name])

    def token_name(self, token: int) -> str:
        return self._names[token]

    def special_ids(self) -> frozenset[int]:
        """Ids never sampled inside a body: PAD, BOS, MASK and every condition token."""
        return self._special

    def program_token_ids(self, programs: Iterable[int] | None = None) -> set[int]:
        """Ids of the ``Program_<n>`` tokens for ``programs`` (every Program token when ``None``)."""
        vocab = self.remi.vocab
        if programs is None:
            return {i for name, i in vocab.items() if name.startswith("Program_")}
        return {vocab[f"Program_{p}"] for p in programs if f"Program_{p}" in vocab}

    def program_of(self, token: int) -> int | None:
        name = self._names.get(token, "")
        return int(name.removeprefix("Program_")) if name.startswith("Program_") else None

    # conditions ---------------------------------------------------------------------------

    def condition_ids(self, style: str | None, key: str | None, tempo_bpm: float | None, bars: int | None) -> list[int]:
        """``[STYLE, KEY, TEMPO, LEN]`` ids; ``None`` (or a style it was not built with) is ``*_unknown``."""
        slug = style_slug(style or "")
        style_token = f"STYLE_{slug}" if slug in self.styles else f"STYLE_{UNKNOWN}"
        if key:
            pc, mode = parse_key(key)
            key_token = f"KEY_{TONICS[pc]}_{mode}"
        else:
            key_token = f"KEY_{UNKNOWN}"
        tempo_token = f"TEMPO_{tempo_band(tempo_bpm) if tempo_bpm else UNKNOWN}"
        len_token = f"LEN_{len_bucket(bars) if bars else UNKNOWN}"
        return [self._conditions[t] for t in (style_token, key_token, tempo_token, len_token)]

    def unknown_condition_ids(self) -> list[int]:
        """The ``*_unknown`` id of each condition slot, in slot order (for condition dropout)."""
        return self.condition_ids(None, None, None, None)

    # encoding -----------------------------------------------------------------------------

    def body_ids(self, score: ScoreTick) -> list[int]:
        """The REMI tokens of a score (no conditions, no ``EOS``)."""
        seq = self.remi.encode(score)
        if isinstance(seq, list):  # one_token_stream gives one sequence; be safe with older configs
            seq = seq[0]
        return [int(i) for i in seq.ids]

    def encode_piece(self, midi_bytes: bytes, *, style: str, key: str | None = None) -> EncodedPiece:
        """Conditions + body + ``EOS``, with what the conditions were made from."""
        score = parse_midi(midi_bytes)
        body = self.body_ids(score)
        if not body:
            msg = f"midi: {len(midi_bytes)} bytes hold no notes the tokenizer can represent"
            raise ValidationError(msg, field="midi", value=len(midi_bytes))
        key = key_name(*parse_key(key)) if key else estimate_key(score)
        tempo = score_tempo(score)
        bars = body.count(self.bar_id)
        programs = frozenset(-1 if t.is_drum else int(t.program) for t in score.tracks if len(t.notes))
        ids = (*self.condition_ids(style, key, tempo, bars), *body, self.eos_id)
        return EncodedPiece(ids, key, tempo, bars, programs)

    def encode(self, midi_bytes: bytes, *, style: str, key: str | None = None) -> list[int]:
        """Token ids of a MIDI file: ``[STYLE, KEY, TEMPO, LEN, *body, EOS]``."""
        return list(self.encode_piece(midi_bytes, style=style, key=key).ids)

    def decode_score(self, ids: Sequence[int], *, tempo_bpm: float | None = None) -> ScoreTick:
        """A score from ids; conditions set its tempo and key signature, special tokens are dropped."""
        conditions = [self.token_name(i) for i in ids if i >= self.condition_offset]
        body = [int(i) for i in ids if i < self.condition_offset and i not in self._special and i != self.eos_id]
        score = cast(ScoreTick, self.remi.decode(body)) if body else ScoreTick(self.remi.time_division)
        if tempo_bpm is None:
            bands = {band: bpm for band, _, bpm in TEMPO_BANDS}
            tempo_bpm = next((bands[c[6:]] for c in conditions if c[6:] in bands and c.startswith("TEMPO_")), 120.0)
        score.tempos.clear()
        score.tempos.append(TempoTick(0, qpm=float(tempo_bpm)))
        key_token = next((c for c in conditions if c.startswith("KEY_") and not c.endswith(UNKNOWN)), None)
        if key_token is not None:
            _, tonic, mode = key_token.split("_")
            pc = TONICS.index(tonic) + (3 if mode == "minor" else 0)  # a minor key shares its relative major's sharps
            sharps = (pc * 7) % 12
            sharps = sharps - 12 if sharps > 6 else sharps
            score.key_signatures.clear()
            score.key_signatures.append(KeySignatureTick(0, sharps, int(mode == "minor")))
        return score

    def decode(self, ids: Sequence[int], *, tempo_bpm: float | None = None) -> bytes:
        """MIDI file bytes from ids (see :meth:`decode_score`)."""
        return bytes(self.decode_score(ids, tempo_bpm=tempo_bpm).dumps_midi())

    # persistence --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild it, and the vocabulary it must rebuild to."""
        return {
            "format": FORMAT,
            "tokenization": "REMI",
            "miditok_config": _config_json(),
            "styles": list(self.styles),
            "style_programs": {s: list(p) for s, p in self.style_programs.items()},
            "style_tempo_bpm": dict(self.style_tempo_bpm),
            "style_ensembles": {s: [[list(p), n] for p, n in e] for s, e in self.style_ensembles.items()},
            "style_max_chord": dict(self.style_max_chord),
            "style_meters": {s: [[m, n] for m, n in e] for s, e in self.style_meters.items()},
            "style_scale_degrees": {s: {m: list(c) for m, c in d.items()} for s, d in self.style_scale_degrees.items()},
            "tempo_range": list(self.tempo_range) if self.tempo_range is not None else None,
            "style_pitch_ranges": {
                s: {str(p): list(r) for p, r in ranges.items()} for s, ranges in self.style_pitch_ranges.items()
            },
            "n_conditions": N_CONDITIONS,
            "vocab": {self.token_name(i): i for i in range(self.vocab_size)},
            "versions": _versions(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MusicTokenizer:
        """Rebuild; refuses when this MidiTok would give different ids than the saved vocabulary."""
        if d.get("format") != FORMAT:
            msg = f"tokenizer: format is {d.get('format')!r}; expected {FORMAT!r}"
            raise ValidationError(msg, field="format", value=d.get("format"))
        if d.get("miditok_config") != _config_json():
            msg = "tokenizer: its MidiTok configuration differs from this version of Accord's; retrain the model"
            raise ValidationError(msg, field="miditok_config", value=d.get("miditok_config"))
        tok = cls(
            tuple(d["styles"]),
            {s: tuple(int(x) for x in p) for s, p in d.get("style_programs", {}).items()},
            {s: float(t) for s, t in d.get("style_tempo_bpm", {}).items()},
            {
                s: tuple((tuple(int(x) for x in p), int(n)) for p, n in e)
                for s, e in d.get("style_ensembles", {}).items()
            },
            {  # absent from models trained before pitch ranges were kept: no pitch constraint
                s: {int(p): (int(r[0]), int(r[1])) for p, r in ranges.items()}
                for s, ranges in d.get("style_pitch_ranges", {}).items()
            },
            {s: int(n) for s, n in d.get("style_max_chord", {}).items()},  # likewise: no cap when absent
            # absent from models trained before the musical contracts: any metre, no accidentals, metronome tempos
            style_meters={s: tuple((str(m), int(n)) for m, n in e) for s, e in d.get("style_meters", {}).items()},
            style_scale_degrees={
                s: {str(m): tuple(int(x) for x in c) for m, c in modes.items()}
                for s, modes in d.get("style_scale_degrees", {}).items()
            },
            tempo_range=(float(d["tempo_range"][0]), float(d["tempo_range"][1])) if d.get("tempo_range") else None,
        )
        saved = {str(k): int(v) for k, v in d["vocab"].items()}
        if saved != {tok.token_name(i): i for i in range(tok.vocab_size)}:
            was = d.get("versions", {}).get("miditok", "?")
            msg = f"tokenizer: vocabulary saved with miditok {was} differs from miditok {_versions()['miditok']}'s"
            raise ValidationError(msg, field="vocab", value=was)
        return tok

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / FILENAME
        path.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, directory: Path) -> MusicTokenizer:
        path = directory / FILENAME if directory.is_dir() else directory
        return cls.from_dict(json.loads(path.read_text()))
