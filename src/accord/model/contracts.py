"""Musical contracts: what a request may ask of a model, and the masks that make a piece keep it.

A request names a style, and may name a key, a tempo, a metre and a length in bars.
:func:`check_request` refuses what the model cannot honour (a style it was not trained on, a key
outside the vocabulary, a tempo outside the catalog's range, a metre it has no token for), each
with a :class:`~accord.errors.ValidationError` naming the field and listing the allowed values.
Sampling (:func:`accord.model.sample.generate`) then keeps the rest with logit masks:

- **Key** (:class:`KeyKeeper`): a ``Pitch`` token is allowed only on a degree of the key's
  diatonic scale, or on an accidental the style uses (measured on its training pieces in that
  mode, :attr:`MusicTokenizer.style_scale_degrees`: e.g. the raised leading tone in minor), and
  each accidental at most about as often as the style uses it.
- **Metre** (:class:`MeterKeeper`): every ``Bar`` is followed by one ``TimeSig`` token, as in
  every tokenized piece; the first bar's is the requested metre or the style's most common one in
  training, and every later bar repeats it (unless changes are asked for).
- **Length**: ``EOS`` is masked until the piece has its bars, sampling stops at the next ``Bar``,
  a piece the token budget cuts short is completed with empty bars, and the file ends exactly at
  the last bar line; so a piece of N bars lasts N bars of its metre at its tempo.

:func:`key_adherence`, :func:`meters_of` and :func:`expected_seconds` measure the same contracts on
finished pieces (the evaluation and the tests use them).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from accord.errors import ValidationError
from accord.model.conditions import UNKNOWN, key_name, parse_key, style_slug

if TYPE_CHECKING:
    import torch

    from accord.model.tokenizer import MusicTokenizer

MAX_BARS = 256
"""The longest piece a request may ask for (the tokenizer's ``LEN_long`` bucket; ~10 minutes of a reel)."""

SCALES: dict[str, frozenset[int]] = {
    "major": frozenset({0, 2, 4, 5, 7, 9, 11}),
    "minor": frozenset({0, 2, 3, 5, 7, 8, 10}),  # natural minor; the raised 6th and 7th are measured accidentals
}
"""Each mode's diatonic degrees, in semitones above the tonic."""

ACCIDENTAL_MIN_SHARE = 0.02
"""A chromatic degree counts as one the style uses when at least one note in fifty of the style's
training pieces in that mode falls on it (the raised leading tone in minor is ~5-10%; a chromatic
passing note is well under 1%)."""

ACCIDENTAL_SLACK = 1.5
"""A piece may use each accidental up to 1.5 times as often as its style does (plus one note),
so a minor tune may have its leading tones but not turn into the parallel major."""

TEMPO_SLACK = 1.25
"""Tempos from the catalog's slowest divided by 1.25 to its fastest times 1.25 are allowed: a tempo
band the model learnt, played a little faster or slower; far outside it the model has no idea."""

METRONOME_BPM = (40.0, 208.0)
"""The tempo range of a model trained before the catalog's tempos were kept (Maelzel's metronome)."""

ALLOWED_KEYS = tuple(key_name(pc, mode) for mode in ("major", "minor") for pc in range(12))


@dataclass(frozen=True)
class Request:
    """A request the model can honour, in canonical form.

    Attributes:
        style: the style's slug (one the tokenizer was built with).
        key: ``"G minor"`` (church modes mapped to major or minor), or ``None``: any.
        tempo_bpm: quarter notes per minute inside the catalog's range, or ``None``: the style's.
        bars: length in bars, 1 to :data:`MAX_BARS`.
        meter: ``"6/8"``, or ``None``: one the style had in training.
    """

    style: str
    key: str | None
    tempo_bpm: float | None
    bars: int
    meter: str | None = None


def tempo_range(tok: MusicTokenizer) -> tuple[float, float]:
    """The tempos (quarter notes per minute) a request may ask of a model with this tokenizer."""
    if tok.tempo_range is None:
        return METRONOME_BPM
    low, high = tok.tempo_range
    return round(low / TEMPO_SLACK, 1), round(high * TEMPO_SLACK, 1)


TIME_SIGNATURE_RANGE: dict[int, tuple[int, ...]] = {8: (3, 6, 9, 12), 4: (1, 2, 3, 4, 5, 6), 2: (1, 2, 3, 4)}
"""Denominator → numerators: the metres REMI has a ``TimeSig`` token for (the tokenizer's fixed
configuration reads it from here): jigs' 6/8, slip jigs' 9/8, reels' 2/2, airs' 3/4 and their neighbours."""

METERS = tuple(
    f"{numerator}/{denominator}" for denominator, numerators in TIME_SIGNATURE_RANGE.items() for numerator in numerators
)
"""The metres a request may ask for, in vocabulary order (:func:`vocabulary_meters` of every model of this
tokenizer format), listed where no model is read yet (the portal's form, help texts)."""


def vocabulary_meters(tok: MusicTokenizer) -> tuple[str, ...]:
    """Every metre the tokenizer has a ``TimeSig`` token for, in vocabulary order."""
    return tuple(name.removeprefix("TimeSig_") for name in tok.remi.vocab if name.startswith("TimeSig_"))


def _refuse(field: str, value: object, why: str, allowed: Sequence[str] | str) -> ValidationError:
    listed = allowed if isinstance(allowed, str) else ", ".join(allowed)
    msg = f"{field}: {value!r} {why}; allowed: {listed}"
    return ValidationError(msg, field=field, value=value)


def check_request(
    tok: MusicTokenizer,
    *,
    style: str,
    key: str | None = None,
    tempo_bpm: float | None = None,
    bars: int = 16,
    meter: str | None = None,
) -> Request:
    """The request in canonical form, or a :class:`ValidationError` naming the field and the allowed values."""
    slug = style_slug(style or "")
    if slug == UNKNOWN or slug not in tok.styles:
        raise _refuse("style", style, "is not a style the model was trained on", tok.styles or ("none",))
    canonical_key = None
    if key is not None:
        try:
            canonical_key = key_name(*parse_key(key))
        except ValidationError:
            allowed = [*ALLOWED_KEYS, "(or a church mode: D dorian, G mixolydian ...)"]
            raise _refuse("key", key, "is not a key in the vocabulary", allowed) from None
    if tempo_bpm is not None:
        low, high = tempo_range(tok)
        if not low <= float(tempo_bpm) <= high:
            raise _refuse("tempo_bpm", tempo_bpm, "is outside the catalog's tempos", f"{low:g} to {high:g} BPM")
    if not isinstance(bars, int) or not 1 <= bars <= MAX_BARS:
        raise _refuse("bars", bars, "is not a length the model can write", f"1 to {MAX_BARS} bars")
    if meter is not None and meter not in vocabulary_meters(tok):
        raise _refuse("meter", meter, "is not a metre in the vocabulary", vocabulary_meters(tok))
    return Request(slug, canonical_key, None if tempo_bpm is None else float(tempo_bpm), bars, meter)


def check_request_for_model(
    models_dir: Path,
    model_id: str,
    *,
    style: str,
    key: str | None = None,
    tempo_bpm: float | None = None,
    bars: int = 16,
    meter: str | None = None,
) -> Request | None:
    """:func:`check_request` against the tokenizer saved with model ``model_id``, before any work is queued.

    ``None`` when ``models_dir`` holds no tokenizer for it (an unknown model, or one whose files
    are elsewhere): the generation itself checks again and reports what is missing.
    """
    from accord.model.tokenizer import FILENAME, MusicTokenizer

    path = models_dir / model_id / FILENAME
    if path.parent.parent != models_dir or not path.is_file():  # a model id is one folder name, never a path
        return None
    stat = path.stat()
    stamp = (str(path), stat.st_mtime_ns, stat.st_size)  # a rewritten file is read again
    tok = _TOKENIZERS.get(stamp)
    if tok is None:
        tok = MusicTokenizer.from_dict(json.loads(path.read_text()))
        if len(_TOKENIZERS) >= _TOKENIZER_CACHE:
            _TOKENIZERS.pop(next(iter(_TOKENIZERS)))
        _TOKENIZERS[stamp] = tok
    return check_request(tok, style=style, key=key, tempo_bpm=tempo_bpm, bars=bars, meter=meter)


_TOKENIZER_CACHE = 32
_TOKENIZERS: dict[tuple[str, int, int], MusicTokenizer] = {}
"""The vocabularies read by :func:`check_request_for_model`, per file and its modification stamp,
so that an API process does not read and parse a model's tokenizer on every submission."""


def _mask(vocab_size: int, banned: Iterable[int]) -> torch.Tensor:
    import torch  # here, so that checking a request (the API does it) does not load PyTorch

    bias = torch.zeros(vocab_size)
    bias[sorted(set(banned))] = float("-inf")
    return bias


class KeyKeeper:
    """Keeps the ``Pitch`` tokens of a piece in ``key``: diatonic degrees, and the style's accidentals
    within their budget (see the module docstring). ``extra_degrees`` (a prime's) are always allowed.
    """

    def __init__(
        self,
        tok: MusicTokenizer,
        vocab_size: int,
        key: str,
        style: str,
        *,
        extra_degrees: Iterable[int] = (),
        program: int | None = None,
    ) -> None:
        tonic, mode = parse_key(key)
        self.vocab_size = vocab_size
        self.degree_of = {
            i: (int(name.removeprefix("Pitch_")) - tonic) % 12
            for name, i in tok.remi.vocab.items()
            if name.startswith("Pitch_")
        }
        self.always = SCALES[mode] | frozenset(int(d) % 12 for d in extra_degrees)
        shares = style_accidentals(tok, style, mode)
        self.budget = {d: s * ACCIDENTAL_SLACK for d, s in shares.items() if d not in self.always}
        # a note counts as :meth:`MusicTokenizer.note_pitches` counts it (a ``Pitch`` after a pitched
        # ``Program``), so the budget is kept on the notes the piece will be measured by; ``program``:
        # the instrument playing when the keeper starts (a prime's last)
        self.program_of = tok.program_of
        self.program = program
        self.counts: Counter[int] = Counter()
        self.notes = 0
        self._biases: dict[frozenset[int], torch.Tensor] = {}

    def allowed_degrees(self) -> frozenset[int]:
        """The degrees the next note may take: the scale, and each accidental still within its budget."""
        within = {d for d, share in self.budget.items() if self.counts[d] + 1 <= share * (self.notes + 1) + 1}
        return self.always | within

    def bias(self) -> torch.Tensor:
        """(V,) ``-inf`` on every ``Pitch`` token on a degree not allowed now."""
        allowed = self.allowed_degrees()
        if allowed not in self._biases:
            self._biases[allowed] = _mask(self.vocab_size, (i for i, d in self.degree_of.items() if d not in allowed))
        return self._biases[allowed]

    def update(self, token: int) -> None:
        program = self.program_of(token)
        if program is not None:
            self.program = program
            return
        degree = self.degree_of.get(token)
        if degree is not None and self.program is not None and self.program >= 0:
            self.counts[degree] += 1
            self.notes += 1


def style_accidentals(tok: MusicTokenizer, style: str, mode: str) -> dict[int, float]:
    """Chromatic degrees (not in the mode's scale) the style uses, each with its share of the style's notes."""
    counts = tok.style_scale_degrees.get(style_slug(style), {}).get(mode)
    if not counts or not sum(counts):
        return {}
    total = sum(counts)
    return {
        d: counts[d] / total for d in range(12) if d not in SCALES[mode] and counts[d] / total >= ACCIDENTAL_MIN_SHARE
    }


class MeterKeeper:
    """One ``TimeSig`` after every ``Bar`` and nowhere else; every bar in one metre unless ``changes``.

    The first bar's metre is ``meter``, or else one of ``choices`` (the style's metres in training;
    the model picks among them), or any metre when neither is known.
    """

    def __init__(
        self,
        tok: MusicTokenizer,
        vocab_size: int,
        *,
        meter: str | None = None,
        choices: Iterable[str] = (),
        changes: bool = False,
    ) -> None:
        self.bar_id = tok.bar_id
        self.vocab_size = vocab_size
        self.ids = {
            name.removeprefix("TimeSig_"): i for name, i in tok.remi.vocab.items() if name.startswith("TimeSig_")
        }
        known = [m for m in choices if m in self.ids]
        self.first_choices = [meter] if meter else known or list(self.ids)
        self.meter = meter
        self.changes = changes
        every = set(self.ids.values())
        self.no_meter = _mask(vocab_size, every)
        self._only: dict[tuple[str, ...], torch.Tensor] = {}

    def _only_meters(self, meters: Sequence[str]) -> torch.Tensor:
        key = tuple(sorted(meters))
        if key not in self._only:
            allowed = {self.ids[m] for m in key}
            self._only[key] = _mask(self.vocab_size, (i for i in range(self.vocab_size) if i not in allowed))
        return self._only[key]

    def start(self, body: Sequence[int], tok: MusicTokenizer) -> None:
        """Take the metre of a prime already in the body (its last ``TimeSig``)."""
        seen = tok.meters(body)
        if seen and not self.meter:
            self.meter = seen[-1]

    def bias(self, last_token: int | None) -> torch.Tensor:
        """(V,) bias for the next token, given the last one."""
        if last_token != self.bar_id:
            return self.no_meter
        if self.changes:
            return self._only_meters(list(self.ids))
        return self._only_meters([self.meter] if self.meter else self.first_choices)

    def update(self, token: int) -> None:
        for name, i in self.ids.items():
            if i == token and self.meter is None:
                self.meter = name


def only_token(vocab_size: int, token: int) -> torch.Tensor:
    """(V,) bias allowing just ``token``."""
    import torch

    bias = torch.full((vocab_size,), float("-inf"))
    bias[token] = 0.0
    return bias


# measuring finished pieces --------------------------------------------------------------------


@dataclass(frozen=True)
class KeyAdherence:
    """How well a piece keeps its key.

    Attributes:
        notes: pitched notes counted.
        in_scale: share of them on the key's diatonic scale.
        in_style_scale: share on the scale or an accidental the style uses (:func:`style_accidentals`).
    """

    notes: int
    in_scale: float
    in_style_scale: float


def key_adherence(pitches: Iterable[int], key: str, accidentals: Iterable[int] = ()) -> KeyAdherence:
    """Shares of ``pitches`` in ``key``'s scale, and in the scale plus ``accidentals`` (degrees above the tonic)."""
    tonic, mode = parse_key(key)
    degrees = [(int(p) - tonic) % 12 for p in pitches]
    if not degrees:
        return KeyAdherence(0, 1.0, 1.0)
    scale = SCALES[mode]
    wider = scale | {int(a) % 12 for a in accidentals}
    return KeyAdherence(
        len(degrees),
        sum(d in scale for d in degrees) / len(degrees),
        sum(d in wider for d in degrees) / len(degrees),
    )


def meters_of(midi: bytes) -> list[tuple[int, int]]:
    """The distinct ``(numerator, denominator)`` metres a MIDI file states, in order of appearance."""
    from accord.model.tokenizer import parse_midi

    out: list[tuple[int, int]] = []
    for ts in parse_midi(midi).time_signatures:
        pair = (int(ts.numerator), int(ts.denominator))
        if pair not in out:
            out.append(pair)
    return out


def expected_seconds(bars: int, meter: tuple[int, int], tempo_bpm: float) -> float:
    """How long ``bars`` bars of ``meter`` last at ``tempo_bpm`` quarter notes per minute."""
    numerator, denominator = meter
    return bars * numerator * 4 / denominator * 60.0 / tempo_bpm
