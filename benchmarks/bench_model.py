"""Model benchmarks: training and sampling speed, and the time to make 30 s of music.

    python -m benchmarks.bench_model [--preset demo] [--seconds 20] [--model MODEL_DIR]

Everything is timed on the paths the product uses, each against a baseline measured in the
same run:

- training tokens/s: the training step as ``accord train`` runs it (bf16 autocast where the
  CPU supports it) against the same model and batches in plain fp32;
- sampling tokens/s: :func:`accord.model.sample.generate` (KV cache, one-token steps with fp16
  weights on a CPU, top-k + nucleus, program and pitch masks) against the same
  ``generate`` with the weights in fp32, and against sampling without a KV cache (the whole
  context recomputed for every token);
- seconds to generate + render 30 s of music, and the real-time factor (seconds of music per
  second of work): ``generate`` then :func:`accord.media.render.render` (FluidSynth, or the
  fallback synthesizer), against the same with fp32 weights.

With ``--model`` the sampling rows use that trained model and generate real 30-second pieces
(15 bars at 120 bpm in 4/4, style ``--style``); without it, an untrained model of ``--preset``
samples 1,200 tokens (about 30 s of music on the demo catalog, ~40 tokens per second of music)
and a 30-second MIDI file is rendered. Run it on a quiet machine: every number is wall time.
"""

from __future__ import annotations

import argparse
import copy
import io
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import mido
import torch
from rich.console import Console
from rich.table import Table

from accord.media.render import render
from accord.model.gpt import GPT, PRESETS, padded_vocab
from accord.model.sample import LoadedModel, generate, load_model, step_dtype
from accord.model.tokenizer import MusicTokenizer
from accord.model.train import autocast_dtype

TOKENS_FOR_30S = 1200
BARS_FOR_30S = 15  # at 120 bpm in 4/4


def _train_rate(model: GPT, *, dtype: torch.dtype, seconds: float, batch: int) -> float:
    """Training tokens per second over about ``seconds`` of steps (after two warm-up steps)."""
    block = model.config.block_size
    opt = model.configure_optimizer(lr=1e-3, weight_decay=0.1)
    gen = torch.Generator().manual_seed(0)
    tokens, started, step = 0, 0.0, 0
    model.train()
    while True:
        x = torch.randint(0, model.config.vocab_size, (batch, block), generator=gen)
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            _, loss = model(x, x)
        assert loss is not None
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        if step == 2:
            started = time.perf_counter()
        elif step > 2:
            tokens += batch * block
            if time.perf_counter() - started > seconds:
                return tokens / (time.perf_counter() - started)


@torch.no_grad()
def _no_cache_rate(model: GPT, n: int) -> float:
    """Tokens/s sampling greedily with the whole context recomputed for every token (no KV cache)."""
    model.eval()
    block = model.config.block_size
    out = [0]
    started = time.perf_counter()
    for _ in range(n - 1):
        logits, _ = model(torch.tensor([out[-block:]]))
        out.append(int(torch.argmax(logits[0, -1])))
    return n / (time.perf_counter() - started)


def _thirty_seconds_of_midi() -> bytes:
    mid = mido.MidiFile(ticks_per_beat=480)
    for program, base in ((40, 67), (32, 43)):
        track = mido.MidiTrack()
        mid.tracks.append(track)
        track.append(mido.Message("program_change", program=program, time=0))
        for n in range(120):  # 120 eighth notes at 120 bpm: 30 s
            pitch = base + (0, 2, 4, 5, 7, 9, 11, 12)[n % 8]
            track.append(mido.Message("note_on", note=pitch, velocity=80, time=0))
            track.append(mido.Message("note_off", note=pitch, velocity=0, time=240))
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


@dataclass(frozen=True)
class Making:
    """One timed run of generate + render."""

    tokens: int
    sample_s: float
    render_s: float
    music_s: float
    synthesizer: str

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.sample_s

    @property
    def realtime(self) -> float:
        return self.music_s / (self.sample_s + self.render_s)


def _make(loaded: LoadedModel, *, style: str, trained: bool, seed: int, folder: Path) -> Making:
    """Generate ~30 s of music with ``generate`` and render it; timed end to end."""
    started = time.perf_counter()
    if trained:
        piece = generate(loaded, style=style, tempo_bpm=120.0, bars=BARS_FOR_30S, seed=seed, temperature=0.85)
        midi, music_s = piece.midi, piece.music_seconds
    else:  # random weights make random bars: sample a fixed token count, render a real 30 s file
        piece = generate(loaded, style=style, bars=10_000, seed=seed, max_tokens=TOKENS_FOR_30S)
        midi, music_s = _thirty_seconds_of_midi(), 30.0
    sample_s = time.perf_counter() - started
    rendered = render(midi, folder / f"piece-{seed}.wav")
    return Making(piece.n_tokens, sample_s, rendered.render_seconds, music_s, rendered.synthesizer)


def _untrained(preset: str) -> LoadedModel:
    tok = MusicTokenizer.build(["reel", "air", "chorale"])
    config = PRESETS[preset]
    torch.manual_seed(0)
    model = GPT(type(config)(**{**config.to_dict(), "vocab_size": padded_vocab(tok.vocab_size)})).eval()
    step = copy.deepcopy(model).to(step_dtype(torch.device("cpu")))
    return LoadedModel(model, tok, {}, Path("."), step)


def _median_making(loaded: LoadedModel, *, style: str, trained: bool, runs: int, folder: Path) -> Making:
    made = [_make(loaded, style=style, trained=trained, seed=seed, folder=folder) for seed in range(runs)]
    return Making(
        int(statistics.median(m.tokens for m in made)),
        statistics.median(m.sample_s for m in made),
        statistics.median(m.render_s for m in made),
        statistics.median(m.music_s for m in made),
        made[0].synthesizer,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="demo", choices=sorted(PRESETS))
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of training steps per dtype")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--model", type=Path, default=None, help="a trained model folder to sample from")
    parser.add_argument("--style", default="reel", help="style of the sampled pieces (with --model)")
    parser.add_argument("--runs", type=int, default=3, help="pieces per sampling measure (the median is reported)")
    args = parser.parse_args(argv)
    console = Console(width=160)
    torch.manual_seed(0)
    if args.model is not None:
        fast_model = load_model(args.model)
        fp32_model = load_model(args.model, dtype=torch.float32)
        config = fast_model.model.config
    else:
        fast_model = _untrained(args.preset)
        fp32_model = LoadedModel(fast_model.model, fast_model.tokenizer, {}, Path("."), None)
        config = fast_model.model.config
    fast = autocast_dtype(torch.device("cpu"))
    what = f"model {args.model}" if args.model else f"untrained preset {args.preset}"
    shape = f"{config.n_layer} layers x {config.n_head} heads x {config.n_embd}, context {config.block_size}"
    console.print(f"model benchmark: {what} ({shape}), training dtype {fast}, {torch.get_num_threads()} threads ...")
    train_fast = _train_rate(GPT(config), dtype=fast, seconds=args.seconds, batch=args.batch)
    train_fp32 = _train_rate(GPT(config), dtype=torch.float32, seconds=args.seconds, batch=args.batch)
    trained = args.model is not None
    with tempfile.TemporaryDirectory() as tmp:
        _make(fast_model, style=args.style, trained=trained, seed=99, folder=Path(tmp))  # warm-up
        made = _median_making(fast_model, style=args.style, trained=trained, runs=args.runs, folder=Path(tmp))
        made_fp32 = _median_making(fp32_model, style=args.style, trained=trained, runs=args.runs, folder=Path(tmp))
    no_cache = _no_cache_rate(fast_model.model, 300)
    step = str(fast_model.stepper.lm_head.weight.dtype).removeprefix("torch.")

    table = Table(
        title=f"Model benchmark ({platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__})"
    )
    for col in ("measure", "Accord", "baseline", "ratio", "baseline is"):
        table.add_column(col, justify="right" if col != "baseline is" else "left")
    table.add_row(
        "training tokens/s",
        f"{train_fast:,.0f}",
        f"{train_fp32:,.0f}",
        f"{train_fast / train_fp32:.1f}×",
        f"fp32 (Accord: {str(fast).removeprefix('torch.')} autocast)"
        if fast != torch.float32
        else "fp32 (this CPU has no bf16: Accord trains in fp32 too)",
    )
    table.add_row(
        "sampling tokens/s (generate)",
        f"{made.tokens_per_second:,.0f}",
        f"{made_fp32.tokens_per_second:,.0f}",
        f"{made.tokens_per_second / made_fp32.tokens_per_second:.1f}×",
        f"generate with fp32 weights (Accord: {step} step)",
    )
    table.add_row(
        "sampling tokens/s (no KV cache)",
        f"{made.tokens_per_second:,.0f}",
        f"{no_cache:,.0f}",
        f"{made.tokens_per_second / no_cache:.1f}×",
        "whole context recomputed per token",
    )
    table.add_row(
        "generate + render 30 s of music (s)",
        f"{30 / made.realtime:.2f}",
        f"{30 / made_fp32.realtime:.2f}",
        f"{made.realtime / made_fp32.realtime:.1f}×",
        f"fp32 weights; pieces of {made.music_s:.0f} s ({made.tokens} tokens, render {made.render_s:.2f} s, "
        f"{made.synthesizer}) scaled to 30 s",
    )
    table.add_row(
        "real-time factor",
        f"{made.realtime:.1f}×",
        f"{made_fp32.realtime:.1f}×",
        f"{made.realtime / made_fp32.realtime:.1f}×",
        "music seconds per second of work",
    )
    console.print(table)


if __name__ == "__main__":
    main()
