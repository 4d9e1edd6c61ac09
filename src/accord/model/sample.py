"""Sampling pieces from a trained model: conditions in, MIDI out, deterministic under a seed.

Each new token costs one cached forward step (:meth:`GPT.forward_step`). Program tokens
outside the allowed set are masked: by default one instrumentation that training pieces of
the style had (drawn by the seed, as often as it occurred), or the prime's, so a piece keeps
its style's instrumentation; ``EOS`` is masked until the piece has its bars. A piece longer
than the model's context continues from a window that restarts on a bar line after the
conditions, as in training.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from symusic.core import ScoreTick, TextMetaTick

from accord.errors import ValidationError
from accord.model.checkpoint import load_checkpoint, model_from_checkpoint, tokenizer_from_checkpoint
from accord.model.conditions import N_CONDITIONS, estimate_key, parse_key, score_tempo, style_slug
from accord.model.contracts import KeyKeeper, MeterKeeper, check_request, only_token
from accord.model.gpt import GPT, KVCache
from accord.model.tokenizer import MusicTokenizer, parse_midi

TOP_P = 0.95
"""Default nucleus: the least likely 5% of the probability mass is never sampled (one wild token,
such as a note two octaves off, derails everything after it)."""


@dataclass(frozen=True)
class LoadedModel:
    """A trained model ready to sample from.

    Attributes:
        model: the network as trained (fp32), in eval mode: it reads prompts (many tokens at once).
        tokenizer: its tokenizer (with the style → programs map from training).
        card: its model card (``{}`` when the folder has none).
        directory: the folder it was loaded from.
        step_model: the same weights in :func:`step_dtype`: it adds one token at a time.
    """

    model: GPT
    tokenizer: MusicTokenizer
    card: Mapping[str, Any]
    directory: Path
    step_model: GPT | None = None

    @property
    def stepper(self) -> GPT:
        return self.step_model or self.model


def step_dtype(device: torch.device) -> torch.dtype:
    """Weights for one-token steps: fp16 on a CPU, whose fp16 matrix-vector kernel runs ~2× the fp32
    one (attention stays fp32, see :meth:`GPT.new_cache`; fp16 *matrix-matrix* products are slow
    there, so prompts go through the fp32 model); bf16 on CUDA; fp32 elsewhere."""
    if device.type == "cpu":
        return torch.float16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


@dataclass(frozen=True)
class GeneratedPiece:
    """One generated piece.

    Attributes:
        midi: the MIDI file's bytes.
        token_ids: every id of the piece: conditions, prime (if any) and generated body.
        n_tokens: tokens sampled (the conditions and prime not counted).
        seconds: sampling time (decoding to MIDI not counted).
        tokens_per_second: ``n_tokens / seconds``.
        music_seconds: the piece's length when played.
        bars: bars in the piece.
        conditions: the condition tokens it was sampled under.
        programs: the programs it could play (``()``: any).
        key: the key it kept (``None``: any).
        meter: the metre of its first bar (``"6/8"``), every bar's unless changes were asked for.
    """

    midi: bytes
    token_ids: tuple[int, ...]
    n_tokens: int
    seconds: float
    tokens_per_second: float
    music_seconds: float
    bars: int
    conditions: tuple[str, ...]
    programs: tuple[int, ...] = ()
    key: str | None = None
    meter: str = ""


def load_model(model_dir: Path, *, device: torch.device | None = None, dtype: torch.dtype | None = None) -> LoadedModel:
    """The model saved in ``model_dir`` (``ckpt.pt``, and ``model_card.json`` when present), ready to sample.

    ``device`` defaults to the CPU; ``dtype`` is the one-token step's (default :func:`step_dtype`;
    ``torch.float32`` samples with the weights exactly as trained).
    """
    ckpt = load_checkpoint(model_dir, map_location="cpu")
    device = device or torch.device("cpu")
    model = model_from_checkpoint(ckpt, device=device).eval()
    dtype = dtype or step_dtype(device)
    stepper = copy.deepcopy(model).to(dtype) if dtype != torch.float32 else None
    card_path = model_dir / "model_card.json"
    card = json.loads(card_path.read_text()) if card_path.is_file() else {}
    return LoadedModel(model, tokenizer_from_checkpoint(ckpt), card, model_dir, stepper)


def _prime(tok: MusicTokenizer, prime_midi: bytes, prime_bars: int) -> tuple[list[int], str, float, set[int]]:
    """The prime's first ``prime_bars`` bars as body ids, with its key, tempo and programs."""
    score = parse_midi(prime_midi)
    body = tok.body_ids(score)
    bar_at = [i for i, t in enumerate(body) if t == tok.bar_id]
    if len(bar_at) > prime_bars:
        body = body[: bar_at[prime_bars]]
    programs = {p for t in body if (p := tok.program_of(t)) is not None}
    return body, estimate_key(score), score_tempo(score), programs


def generate(
    loaded: LoadedModel,
    *,
    style: str,
    key: str | None = None,
    tempo_bpm: float | None = None,
    bars: int = 16,
    seed: int = 0,
    temperature: float = 1.0,
    top_k: int | None = 32,
    top_p: float | None = TOP_P,
    prime_midi: bytes | None = None,
    prime_bars: int = 4,
    allowed_programs: set[int] | None = None,
    max_tokens: int = 4096,
    keep_pitch_range: bool = True,
    meter: str | None = None,
    meter_changes: bool = False,
    keep_key: bool = True,
) -> GeneratedPiece:
    """Sample a piece of ``bars`` bars (the prime's bars included) in ``style``.

    ``key`` and ``tempo_bpm`` left out are "any" (or the prime's). ``allowed_programs`` left out
    are the prime's programs, or one instrumentation of ``style`` from training drawn by the seed
    (``set(loaded.tokenizer.style_programs[style])`` allows every program the style had). The
    same model, arguments and seed give the same bytes.

    Each step draws from the ``top_k`` most likely tokens, then from the smallest set of them
    holding ``top_p`` of the probability (nucleus sampling; ``None`` or 1.0: no cut). With
    ``keep_pitch_range`` every note stays inside the pitch range training saw for its program in
    ``style`` (:attr:`MusicTokenizer.style_pitch_ranges`, widened to the prime's notes): a
    ``Pitch`` token outside it is masked after each ``Program`` token, and no more notes start at
    one instant than training pieces of the style ever struck at once
    (:attr:`MusicTokenizer.style_max_chord`). Time only moves forward inside a bar
    (:class:`_PositionMask`), as in every tokenized piece.

    The musical contracts (:mod:`accord.model.contracts`): a request the model cannot honour is
    refused (:func:`~accord.model.contracts.check_request`); with ``keep_key`` the notes keep to
    the key (the requested one, or the prime's) and the accidentals its style uses; every bar is
    in one metre (``meter``, or the style's most common one in training; ``meter_changes`` lets
    the model change it); and the piece has exactly ``bars`` bars and lasts exactly that long.
    """
    tok, model, stepper = loaded.tokenizer, loaded.model, loaded.stepper
    device = model.lm_head.weight.device
    request = check_request(tok, style=style, key=key, tempo_bpm=tempo_bpm, bars=bars, meter=meter)
    key, tempo_bpm = request.key, request.tempo_bpm
    if top_p is not None and not 0.0 < top_p <= 1.0:
        msg = f"top_p: {top_p}; expected a probability mass in (0, 1]"
        raise ValidationError(msg, field="top_p", value=top_p)
    body: list[int] = []
    prime_programs: set[int] = set()
    if prime_midi is not None:
        body, prime_key, prime_tempo, prime_programs = _prime(tok, prime_midi, min(prime_bars, bars))
        key = key or prime_key
        tempo_bpm = tempo_bpm or prime_tempo
    conditions = tok.condition_ids(style, key, tempo_bpm, bars)
    gen = torch.Generator(device=device).manual_seed(seed)
    if allowed_programs is None:
        allowed_programs = prime_programs or _instrumentation(tok, style, gen)
    eos, bar = tok.eos_id, tok.bar_id
    may_end = _logit_bias(tok, model.config.vocab_size, allowed_programs).to(device)
    may_not_end = may_end.clone()
    may_not_end[eos] = float("-inf")  # no ending before the last bar
    pitch_bias = (
        _pitch_biases(tok, model.config.vocab_size, style, allowed_programs, tok.note_pitches(body))
        if keep_pitch_range
        else {}
    )
    no_pitch = torch.zeros(model.config.vocab_size)
    program: int | None = None  # the program of the note being written: its Pitch comes next
    time_moves_on = _PositionMask(tok, model.config.vocab_size, device)
    position = time_moves_on.position_after(body)
    chord_cap = tok.style_max_chord.get(style_slug(style)) if keep_pitch_range else None
    no_more_notes = torch.zeros(model.config.vocab_size, device=device)
    no_more_notes[sorted(tok.program_token_ids())] = float("-inf")
    chord = 0  # notes struck at the current position
    vocab = model.config.vocab_size
    meters = MeterKeeper(
        tok,
        vocab,
        meter=meter,
        # the style's most common metre: N bars of a style at one tempo always last as long (a reel
        # notated in 2/4 has bars half as long as one in 2/2); another metre is a request (``meter``)
        choices=[m for m, _ in tok.style_meters.get(style_slug(style), ())][:1],
        changes=meter_changes,
    )
    meters.start(body, tok)
    in_key = (
        KeyKeeper(
            tok,
            vocab,
            key,
            style,
            extra_degrees=_prime_degrees(tok, body, key),
            # a prime's last instrument carries on into the continuation
            program=next((p for p in map(tok.program_of, reversed(body)) if p is not None), None),
        )
        if key and keep_key
        else None
    )
    pitch_ids = torch.tensor(sorted(tok.pitch_token_ids(0, 127)), device=device)
    first_bar = only_token(vocab, bar).to(device)  # a body starts on a bar line, as every training piece does
    block = model.config.block_size
    bars_seen = body.count(bar)
    n_new = 0
    start = time.perf_counter()
    with torch.inference_mode():
        cache = model.new_cache(1)
        logits = _prefill(model, cache, conditions, body, block, bar)
        while n_new < max_tokens:
            bias = (may_end if bars_seen >= bars else may_not_end) + pitch_bias.get(program, no_pitch).to(device)
            bias = bias + time_moves_on.bias(position)
            if chord_cap is not None and chord >= chord_cap:
                bias = bias + no_more_notes
            bias = bias + (meters.bias(body[-1]).to(device) if body else first_bar)
            if in_key is not None:
                keyed = bias + in_key.bias().to(device)
                # a program whose range holds no note of the key (a narrow range) keeps its range instead
                bias = keyed if program is None or not torch.isinf(keyed[pitch_ids]).all() else bias
            token = _sample(logits[0], bias, temperature, top_k, top_p, gen)
            if token == eos or (token == bar and bars_seen >= bars):
                break
            program = tok.program_of(token)
            moved = time_moves_on.next_position(position, token)
            chord = 0 if moved != position or token == bar else chord + (program is not None)
            position = moved
            bars_seen += token == bar
            meters.update(token)
            if in_key is not None:
                in_key.update(token)
            body.append(token)
            n_new += 1
            if cache.length < block:
                logits = stepper.forward_step(torch.tensor([[token]], device=device), cache)
            else:  # context full: restart from a recent bar line, behind the conditions
                logits = _prefill(model, cache, conditions, body, block, bar)
    seconds = time.perf_counter() - start
    # the token budget ran out first: the piece still gets its bars (empty ones), in its metre
    the_meter = meters.meter or meters.first_choices[0]
    if body and body[-1] == bar:  # it ran out just after a bar line: the bar still gets its metre
        body.append(tok.token_id(f"TimeSig_{the_meter}"))
    while bars_seen < bars:
        body += [bar, tok.token_id(f"TimeSig_{the_meter}")]
        bars_seen += 1
    ids = (*conditions, *body)
    fallback_tempo = tempo_bpm or tok.style_tempo_bpm.get(style_slug(style))
    score = tok.decode_score(ids, tempo_bpm=fallback_tempo)
    end_at_last_bar(score, body.count(tok.bar_id))
    return GeneratedPiece(
        midi=bytes(score.dumps_midi()),
        token_ids=ids,
        n_tokens=n_new,
        seconds=seconds,
        tokens_per_second=n_new / seconds if seconds > 0 else 0.0,
        music_seconds=float(cast(Any, score.to("second")).end()),
        bars=body.count(tok.bar_id),
        conditions=tuple(tok.token_name(i) for i in conditions),
        programs=tuple(sorted(allowed_programs or ())),
        key=key,
        meter=the_meter,
    )


def end_at_last_bar(score: ScoreTick, bars: int) -> None:
    """Cut every note that rings past the end of bar ``bars`` at that bar line, and mark the file's
    end there (in place): a piece of 8 bars lasts 8 bars, whatever durations the model gave its
    last notes and however many rests end it."""
    if bars < 1:
        return
    ts = score.time_signatures
    numerator, denominator = (int(ts[-1].numerator), int(ts[-1].denominator)) if len(ts) else (4, 4)
    bar_ticks = score.ticks_per_quarter * 4 * numerator // denominator
    downbeats = [int(t) for t in score.get_downbeats()] or [0]
    end = downbeats[bars] if len(downbeats) > bars else downbeats[-1] + (bars - len(downbeats) + 1) * bar_ticks
    for track in score.tracks:
        for note in track.notes:
            if note.time + note.duration > end:
                note.duration = max(1, end - note.time)
        track.notes.filter(lambda n: n.time < end, inplace=True)
    score.markers.filter(lambda m: m.time <= end, inplace=True)
    score.markers.append(TextMetaTick(end, "end"))  # the file lasts to the bar line, even after a last rest


def _prime_degrees(tok: MusicTokenizer, body: list[int], key: str | None) -> set[int]:
    """The degrees above ``key``'s tonic that the prime's notes use: a continuation may use them too."""
    if not key or not body:
        return set()
    tonic, _ = parse_key(key)
    return {(pitch - tonic) % 12 for _, pitch in tok.note_pitches(body)}


def _instrumentation(tok: MusicTokenizer, style: str, gen: torch.Generator) -> set[int] | None:
    """One training piece's programs for ``style``, drawn by how often each instrumentation occurs."""
    ensembles = tok.style_ensembles.get(style_slug(style))
    if not ensembles:
        return None  # a style training never saw: any program
    counts = torch.tensor([float(n) for _, n in ensembles])
    return set(ensembles[int(torch.multinomial(counts, 1, generator=gen))][0])


class _PositionMask:
    """REMI's clock only moves forward: inside a bar each ``Position`` token is later than the last.

    Real pieces always tokenize that way; a model that has not learnt it yet writes notes back in
    time, which turns one melodic line into chords and scrambles its order. The mask allows only
    positions after the current one, until the next ``Bar`` starts the count again.
    """

    def __init__(self, tok: MusicTokenizer, vocab_size: int, device: torch.device) -> None:
        self.bar_id = tok.bar_id
        self.positions = {
            i: int(name.removeprefix("Position_")) for name, i in tok.remi.vocab.items() if name.startswith("Position_")
        }
        self.vocab_size = vocab_size
        self.device = device
        self._biases: dict[int, torch.Tensor] = {}

    def next_position(self, position: int, token: int) -> int:
        """The position after ``token``: ``-1`` (none yet) after a ``Bar``."""
        if token == self.bar_id:
            return -1
        return self.positions.get(token, position)

    def position_after(self, body: list[int]) -> int:
        position = -1
        for token in body:
            position = self.next_position(position, token)
        return position

    def bias(self, position: int) -> torch.Tensor:
        """(V,) bias: ``-inf`` on every ``Position`` at or before ``position``."""
        if position not in self._biases:
            bias = torch.zeros(self.vocab_size)
            bias[[i for i, p in self.positions.items() if p <= position] or []] = float("-inf")
            self._biases[position] = bias.to(self.device)
        return self._biases[position]


def _pitch_biases(
    tok: MusicTokenizer,
    vocab_size: int,
    style: str,
    programs: set[int] | None,
    prime_notes: list[tuple[int, int]],
) -> dict[int | None, torch.Tensor]:
    """Program → (V,) bias masking the ``Pitch`` tokens outside that program's range in ``style``.

    A program training never saw in the style gets the style's range over every program; the
    prime's notes widen the range of their program. ``None`` maps to the union of the ranges (the
    bias for a step that does not follow a ``Program`` token). Empty when training kept no range.
    """
    every = set(tok.style_pitch_ranges.get(style_slug(style), {})) | {p for p, _ in prime_notes}
    candidates = sorted(programs if programs is not None else every)
    style_range = tok.pitch_range(style)
    ranges: dict[int, tuple[int, int]] = {}
    for program in candidates:
        low_high = tok.pitch_range(style, [program]) or style_range
        for p, pitch in prime_notes:
            if p == program:
                low_high = (min(low_high[0], pitch), max(low_high[1], pitch)) if low_high else (pitch, pitch)
        if low_high is not None:
            ranges[program] = low_high
    if not ranges:
        return {}
    every_pitch = tok.pitch_token_ids(0, 127)
    biases: dict[int | None, torch.Tensor] = {}
    for program, (low, high) in ranges.items():
        bias = torch.zeros(vocab_size)
        bias[sorted(every_pitch - tok.pitch_token_ids(low, high))] = float("-inf")
        biases[program] = bias
    union = (min(r[0] for r in ranges.values()), max(r[1] for r in ranges.values()))
    biases[None] = torch.zeros(vocab_size)
    biases[None][sorted(every_pitch - tok.pitch_token_ids(*union))] = float("-inf")
    return biases


def _logit_bias(tok: MusicTokenizer, vocab_size: int, allowed_programs: set[int] | None) -> torch.Tensor:
    """(V,) additive bias: 0 for tokens a body may hold, -inf for the rest."""
    bias = torch.zeros(vocab_size)
    banned = set(tok.special_ids()) | set(range(tok.vocab_size, vocab_size))  # specials, conditions, padding rows
    if allowed_programs is not None:
        allowed = tok.program_token_ids(allowed_programs)
        if not allowed:
            msg = f"allowed_programs: none of {sorted(allowed_programs)} is a program the tokenizer knows"
            raise ValidationError(msg, field="allowed_programs", value=sorted(allowed_programs))
        banned |= tok.program_token_ids() - allowed
    bias[sorted(banned)] = float("-inf")
    return bias


def _prefill(
    model: GPT, cache: KVCache, conditions: list[int], body: list[int], block: int, bar_id: int
) -> torch.Tensor:
    """Reset the cache and run conditions + the body's tail (from a bar line, at most half the context)."""
    room = block // 2 - N_CONDITIONS
    tail = body
    if len(body) > room:
        bar_at = [i for i in range(len(body) - room, len(body)) if body[i] == bar_id]
        tail = body[bar_at[0] :] if bar_at else body[-room:]
    cache.reset()
    return model.forward_step(torch.tensor([conditions + tail], device=cache.k[0].device), cache)


def _sample(
    logits: torch.Tensor,
    bias: torch.Tensor,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    gen: torch.Generator,
) -> int:
    """One token: greedy at ``temperature <= 0``; else from the ``top_k`` most likely, cut to the ``top_p`` nucleus."""
    logits = logits.float() + bias  # (V,)
    if temperature <= 0:
        return int(torch.argmax(logits))
    if temperature != 1.0:
        logits = logits / temperature
    k = min(top_k or logits.numel(), logits.numel())
    values, indices = torch.topk(logits, k)  # sorted, most likely first
    probs = torch.softmax(values, dim=-1)
    if top_p is not None and top_p < 1.0:
        # keep a token while the mass before it is under top_p: the most likely one always stays
        keep = (torch.cumsum(probs, dim=-1) - probs) < top_p
        probs = torch.where(keep, probs, torch.zeros_like(probs))
        probs = probs / probs.sum()
    return int(indices[torch.multinomial(probs, 1, generator=gen)])
