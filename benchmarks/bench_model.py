"""Model benchmarks: training and sampling speed, and the time to make 30 s of music.

    python -m benchmarks.bench_model [--preset demo] [--seconds 20]

Baselines measured in the same run:

- training: the same model and batches in plain fp32 (the bf16-autocast path is what
  ``accord train`` uses on a CPU that supports it);
- sampling: the same model without the KV cache (the whole context recomputed per token).

"30 s of music" is ~1,200 tokens (REMI with programs, ~40 tokens per second of music, as
measured on the demo catalog); render time is FluidSynth (or the fallback synthesizer)
on a 30-second MIDI file. Real-time factor = seconds of music / seconds to make it.
"""

from __future__ import annotations

import argparse
import io
import platform
import tempfile
import time
from pathlib import Path

import mido
import torch
from rich.console import Console
from rich.table import Table

from accord.media.render import render
from accord.model.gpt import GPT, PRESETS
from accord.model.train import autocast_dtype

TOKENS_FOR_30S = 1200


def _train_rate(model: GPT, *, dtype: torch.dtype, seconds: float, batch: int) -> float:
    """Training tokens per second over about ``seconds`` of steps (after two warm-up steps)."""
    block = model.config.block_size
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    tokens, started, step = 0, 0.0, 0
    while True:
        x = torch.randint(0, model.config.vocab_size, (batch, block), generator=gen)
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            _, loss = model(x, x)
        assert loss is not None
        loss.backward()
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
def _sample_rate(model: GPT, n: int, *, cache: bool) -> float:
    model.eval()
    block = model.config.block_size
    idx = torch.zeros((1, 1), dtype=torch.long)
    out = [0]
    started = time.perf_counter()
    if cache:
        kv = model.new_cache()
        logits = model.forward_step(idx, kv)
        for _ in range(n - 1):
            if kv.length >= block:
                kv.reset()
            nxt = torch.argmax(logits, dim=-1, keepdim=True)
            logits = model.forward_step(nxt, kv)
    else:
        for _ in range(n - 1):
            ctx = torch.tensor([out[-block:]])
            logits, _ = model(ctx)
            out.append(int(torch.argmax(logits[0, -1])))
    model.train()
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="demo", choices=sorted(PRESETS))
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of training steps per dtype")
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args(argv)
    console = Console(width=160)
    torch.manual_seed(0)
    config = PRESETS[args.preset]
    model = GPT(config)
    fast = autocast_dtype(torch.device("cpu"))
    console.print(
        f"model benchmark: preset {args.preset}, {model.num_params():,} parameters, training dtype {fast} ..."
    )
    train_fast = _train_rate(model, dtype=fast, seconds=args.seconds, batch=args.batch)
    train_fp32 = _train_rate(GPT(config), dtype=torch.float32, seconds=args.seconds, batch=args.batch)
    n = min(TOKENS_FOR_30S, 4 * config.block_size)
    sample_cached = _sample_rate(model, n, cache=True)
    sample_plain = _sample_rate(model, min(n, 400), cache=False)
    midi = _thirty_seconds_of_midi()
    with tempfile.TemporaryDirectory() as tmp:
        rendered = render(midi, Path(tmp) / "thirty.wav")
    generate_s = TOKENS_FOR_30S / sample_cached
    make_s = generate_s + rendered.render_seconds

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
        f"fp32 (Accord: {str(fast).removeprefix('torch.')} autocast)",
    )
    table.add_row(
        "sampling tokens/s",
        f"{sample_cached:,.0f}",
        f"{sample_plain:,.0f}",
        f"{sample_cached / sample_plain:.1f}×",
        "no KV cache",
    )
    table.add_row("generate 30 s of music (s)", f"{generate_s:.2f}", "", "", f"{TOKENS_FOR_30S} tokens")
    table.add_row("render 30 s of music (s)", f"{rendered.render_seconds:.2f}", "", "", rendered.synthesizer)
    table.add_row("real-time factor", f"{30 / make_s:.1f}×", "", "", "music seconds per second of work")
    console.print(table)


if __name__ == "__main__":
    main()
