"""The studio: training on a manifest, and generating a piece that may be released.

Orchestration only (named stages); the model, rendering, credentials and policy live in
their own modules. Generation refuses, with a clear message, a model the taint audit or a
licensor's per-version approval blocks, and a remix of a recording whose ``remix`` licence
does not hold for the creator's territory.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accord import __version__
from accord.datasets import repository, service
from accord.datasets.loader import ManifestLoader
from accord.datasets.repository import ModelRecord
from accord.errors import NotFound, NotLicensed, ReplicationBlocked, ValidationError
from accord.licensing import LicensingPolicy
from accord.outputs.store import Creator, Output, get_creator, record_event, save_output
from accord.registry.store import Store
from accord.settings import Settings
from accord.signing import ensure_operator_key
from accord.timeutil import iso

Progress = Callable[[str, int, int], None]


GENERATION_MODULES = (
    "accord.model.sample",  # torch and the network
    "accord.model.contracts",
    "accord.media.render",
    "accord.media.pianoroll",  # Pillow
    "accord.attribution.guard",
    "scipy.signal",  # the guard's audio fingerprint (resampling, STFT): ~0.5 s, imported by its first check
    "scipy.ndimage",  # the fingerprint's peak picking
    "accord.attribution.service",
    "accord.provenance.certificates",
    "accord.provenance.credential",
)
"""What a generation imports beyond this module: ~2-3 s in a fresh process on a shared 2-core machine."""


def import_generation_stack() -> float:
    """Import :data:`GENERATION_MODULES` (nothing to do when done before); the seconds it took.

    A long-lived worker calls it before it looks for work; :func:`generate_output` calls it first,
    so that its ``imports`` stage says what a cold process pays before any work.
    """
    t0 = time.perf_counter()
    for name in GENERATION_MODULES:
        importlib.import_module(name)
    return time.perf_counter() - t0


def model_dir(settings: Settings, model_id: str) -> Path:
    return settings.models_dir / model_id


def train_on_manifest(
    store: Store,
    settings: Settings,
    manifest_ref: str,
    *,
    preset: str = "demo",
    minutes: float | None = None,
    steps: int | None = None,
    seed: int = 0,
    model_id: str | None = None,
    actor: str = "operator",
    progress: Callable[[dict[str, Any]], None] | None = None,
    threads: int | None = None,
    transpose: float = 0.0,
) -> tuple[ModelRecord, Any]:
    """Train a model reading only the manifest's files (hash-checked), then register it with its card.

    ``threads`` (default: this process's PyTorch threads) and ``transpose`` are
    :class:`~accord.model.train.Hyperparameters`' (both recorded in the card)."""
    from accord.model.train import train

    manifest, _ = repository.load_manifest(store, manifest_ref)
    model_id = model_id or f"accord-{preset}-{manifest.root[:12]}-s{seed}"
    out = model_dir(settings, model_id)
    existing = repository.find_model(store, model_id)
    if existing is not None and (out / "model_card.json").is_file() and not (out / "ckpt.pt").is_file():
        msg = f"model {model_id!r}: registered but its files are missing from {out}"
        raise NotFound(msg)
    loader = ManifestLoader(manifest, store.media)
    catalog = store.snapshot(manifest.header.as_of)
    result = train(
        manifest,
        loader,
        catalog,
        out,
        preset=preset,
        minutes=minutes,
        steps=steps,
        seed=seed,
        progress=progress,
        threads=threads,
        transpose=transpose,
    )
    card = dict(result.card)
    card["model_id"] = model_id
    (out / "model_card.json").write_text(json.dumps(card, indent=2, sort_keys=True, default=str))
    record, _ = repository.register_model(
        store, model_id, manifest.root, card=json.loads(json.dumps(card, default=str)), actor=actor
    )
    return record, result


@dataclass(frozen=True)
class Prompt:
    """What a creator asks for.

    Attributes:
        style: style / genre (a condition the model was trained with).
        key: e.g. ``"D major"`` (``None``: the model chooses).
        tempo_bpm: beats per minute (``None``: the model chooses).
        bars: length in bars.
        from_isrc: continue or remix this catalog recording (needs its ``remix`` licence).
        prime_bars: bars of it to continue from.
        temperature: sampling temperature (0.85: measured best against the baselines, see docs).
        meter: every bar's metre, e.g. ``"6/8"`` (``None``: the style's most common one in training).
    """

    style: str
    key: str | None = None
    tempo_bpm: int | None = None
    bars: int = 16
    from_isrc: str | None = None
    prime_bars: int = 4
    temperature: float = 0.85
    meter: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "style": self.style,
            "key": self.key,
            "tempo_bpm": self.tempo_bpm,
            "bars": self.bars,
            "from": self.from_isrc,
            "prime_bars": self.prime_bars if self.from_isrc else None,
            "temperature": self.temperature,
            "meter": self.meter,
        }


@dataclass(frozen=True)
class Generated:
    """A released output and where its files are.

    Attributes:
        output: the stored output.
        folder: where its files were written.
        paths: kind → path (midi, audio, pianoroll, credential).
        render: the rendering report (synthesizer, timings).
        seconds: wall time per stage.
    """

    output: Output
    folder: Path
    paths: dict[str, Path]
    render: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)


_LOADED: dict[tuple[Path, int], Any] = {}


def _load(path: Path) -> Any:
    """The model in ``path``, loaded once per checkpoint (a long-lived worker keeps it between jobs;
    a checkpoint retrained in the same folder is loaded again, by its modification time)."""
    from accord.model.sample import load_model

    if not path.is_dir():
        msg = f"model files: {path} not found (train the model first: accord train)"
        raise NotFound(msg)
    ckpt = path / "ckpt.pt"
    key = (path, ckpt.stat().st_mtime_ns if ckpt.is_file() else 0)
    if key not in _LOADED:
        for stale in [k for k in _LOADED if k[0] == path]:
            del _LOADED[stale]
        _LOADED[key] = load_model(path)
    return _LOADED[key]


def check_may_generate(store: Store, model_id: str, creator: Creator, prompt: Prompt) -> bytes | None:
    """Refuse a blocked model or an unlicensed remix; the prime MIDI bytes for a remix."""
    now = store.clock()
    status = service.status_of_model(store, model_id, now)
    use = "remix" if prompt.from_isrc else "generate"
    if not status.can_serve(use):
        msg = f"model {model_id} may not serve {use} now: " + "; ".join(status.reasons)
        raise NotLicensed(msg)
    if prompt.from_isrc is None:
        return None
    catalog = store.snapshot(now, isrcs=[prompt.from_isrc])
    decision = LicensingPolicy(catalog).decide(prompt.from_isrc, "remix", now, creator.territory)
    if not decision.eligible:
        why = " ".join(r.message for r in decision.reasons)
        msg = f"remix of {prompt.from_isrc} refused in {creator.territory}: no remix licence holds. {why}"
        raise NotLicensed(msg)
    rec = catalog.recordings[prompt.from_isrc]
    midi = rec.midi
    if midi is None:
        msg = f"from: {prompt.from_isrc} has no MIDI file to continue from"
        raise ValidationError(msg, field="from", value=prompt.from_isrc)
    return store.media.read_verified(midi.sha256)


def guard_seed(seed: int, attempt: int) -> int:
    """The seed of the ``attempt``-th candidate (0: the requested seed; then derived from it, deterministically)."""
    if attempt == 0:
        return seed
    return int.from_bytes(hashlib.sha256(f"accord-guard-retry:{seed}:{attempt}".encode()).digest()[:4], "big") >> 1


def _generate_past_the_guard(
    store: Store,
    settings: Settings,
    loaded: Any,
    prompt: Prompt,
    seed: int,
    prime: bytes | None,
    step: Callable[[str, int], None],
    progress: Progress | None = None,
) -> tuple[Any, Any, bytes, dict[str, Any]]:
    """Generate and render candidates until one passes the replication guard (up to ``guard_max_attempts``).

    Returns the piece, its render report, the WAV bytes and the credential's ``guard`` record.

    Raises:
        ReplicationBlocked: every candidate reproduces a catalog work beyond the threshold.
    """
    from accord.attribution.guard import Guard
    from accord.media.render import render
    from accord.model.sample import generate

    timings = {"render": 0.0, "guard": 0.0}
    t0 = time.perf_counter()
    guard = Guard.for_store(store, settings, progress=progress)  # its index is built on first use
    timings["guard"] += time.perf_counter() - t0
    attempts: list[dict[str, Any]] = []
    source = frozenset({prompt.from_isrc}) if prompt.from_isrc and prime is not None else frozenset()
    for attempt in range(settings.guard_max_attempts):
        candidate_seed = guard_seed(seed, attempt)
        piece = generate(
            loaded,
            style=prompt.style,
            key=prompt.key,
            tempo_bpm=prompt.tempo_bpm,
            bars=prompt.bars,
            seed=candidate_seed,
            prime_midi=prime,
            prime_bars=prompt.prime_bars,
            temperature=prompt.temperature,
            meter=prompt.meter,
        )
        step("generate", 1)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            wav_path = Path(tmp) / "candidate.wav"
            rendered = render(piece.midi, wav_path)
            wav = wav_path.read_bytes()
            timings["render"] += time.perf_counter() - t0
            step("render", 2)
            t0 = time.perf_counter()
            # A continuation or remix is licensed to take from its source (its remix licence was checked):
            # the source itself is passed over, every other catalog work is checked as usual.
            verdict = guard.verdict(
                midi=piece.midi,
                audio=wav_path if guard.audio is not None else None,
                exclude_isrcs=source,
            )
            timings["guard"] += time.perf_counter() - t0
        worst = verdict.worst
        attempts.append(
            {
                "seed": candidate_seed,
                "status": verdict.status,
                "closest": None if worst is None else {"isrc": worst.isrc, "check": worst.check, "score": worst.score},
            }
        )
        if not verdict.blocked:
            record = verdict.to_dict() | {"requested_seed": seed, "seed_used": candidate_seed, "attempts": attempts}
            if source:
                record["source_passed_over"] = sorted(source)  # licensed for remix: not a copy to block
            return piece, rendered, wav, record | {"timings": timings}
    evidence = worst.describe() if worst is not None else "a catalog work"
    msg = (
        f"output refused: the replication guard blocked all {len(attempts)} seeds tried "
        f"({', '.join(str(a['seed']) for a in attempts)}; requested seed {seed}, limit "
        f"ACCORD_GUARD_MAX_ATTEMPTS={settings.guard_max_attempts}); the last one copies {evidence}"
    )
    raise ReplicationBlocked(msg)


def generate_output(
    store: Store,
    settings: Settings,
    *,
    model_id: str,
    creator_id: str,
    prompt: Prompt,
    seed: int,
    out_dir: Path | None = None,
    progress: Progress | None = None,
    output_id: str | None = None,
) -> Generated:
    """Generate, render and credential one piece, store it, and record the generation event.

    ``output_id``: the id to store it under (a job passes one derived from its job id, so a re-run of
    the job after a crash makes the same output and the same usage event, never a second one);
    default: a hash of model, creator, prompt, seed and time."""
    from accord.media.pianoroll import piano_roll
    from accord.model.contracts import check_request  # a request the model cannot honour: refused, nothing written
    from accord.provenance.certificates import ensure_dev_chain
    from accord.provenance.credential import Credential, embed_c2pa, write_sidecar

    timings: dict[str, float] = {"imports": import_generation_stack()}
    t0 = time.perf_counter()
    creator = get_creator(store, creator_id)
    model = repository.get_model(store, model_id)
    prime = check_may_generate(store, model_id, creator, prompt)
    timings["checks"] = time.perf_counter() - t0

    def step(name: str, n: int) -> None:
        if progress:
            progress(name, n, 5)

    t0 = time.perf_counter()
    loaded = _load(model_dir(settings, model_id))  # the first time in a process: the checkpoint
    timings["load"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    check_request(
        loaded.tokenizer,
        style=prompt.style,
        key=prompt.key,
        tempo_bpm=prompt.tempo_bpm,
        bars=prompt.bars,
        meter=prompt.meter,
    )
    # the replication guard: candidates that copy a catalog work are never written out; another seed is tried
    piece, rendered, wav, guard_record = _generate_past_the_guard(
        store, settings, loaded, prompt, seed, prime, step, progress
    )
    timings.update(guard_record.pop("timings"))
    timings["generate"] = time.perf_counter() - t0 - timings["render"] - timings["guard"]
    seed = int(guard_record["seed_used"])  # the released candidate's seed: it reproduces the output
    created = store.clock()
    output_id = output_id or (
        "OUT-"
        + hashlib.sha256(json.dumps([model_id, creator_id, prompt.to_dict(), seed, iso(created)]).encode())
        .hexdigest()[:16]
        .upper()
    )
    folder = (out_dir or settings.outputs_dir) / output_id
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"midi": folder / f"{output_id}.mid", "audio": folder / f"{output_id}.wav"}
    paths["midi"].write_bytes(piece.midi)

    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "plain.wav"
        plain.write_bytes(wav)  # the render the guard checked
        t0 = time.perf_counter()
        paths["pianoroll"] = piano_roll(piece.midi, folder / f"{output_id}.png", title=f"{output_id} · {prompt.style}")
        timings["pianoroll"] = time.perf_counter() - t0
        step("piano roll", 3)

        # attribution of the released output to the model's manifest items (index built on first use, cached)
        t0 = time.perf_counter()
        from accord.attribution.service import credential_attribution

        attribution = credential_attribution(
            store,
            settings,
            model_id,
            piece.token_ids,
            piece.midi,
            output_id,
            progress=progress,
            remix_of=prompt.from_isrc,
        )
        # the public credential never names a party that asked not to be (disclose: false): their
        # entries become commitments; the full record is kept private, in the stored output
        from accord.attribution.disclosure import Hidden, commitment_secret, named_isrcs, publish

        key, _ = ensure_operator_key(settings.home)
        asked = prompt.to_dict()
        hidden = Hidden.of(store.snapshot(created, isrcs=named_isrcs(attribution, guard_record, asked)))
        secret = commitment_secret(key)
        published = publish(attribution, guard_record, hidden, secret=secret, output_id=output_id, prompt=asked)
        timings["attribution"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        credential = Credential(
            output_id=output_id,
            model_id=model_id,
            manifest_root=model.manifest_root,
            prompt=published.prompt,
            seed=seed,
            created=iso(created) or "",
            generator=f"Accord {__version__}",
            guard=published.guard,
            attribution=published.attribution,
            media_sha256={
                "midi": hashlib.sha256(piece.midi).hexdigest(),
                "audio": hashlib.sha256(plain.read_bytes()).hexdigest(),
            },
        )
        paths["credential"] = write_sidecar(credential, folder / f"{output_id}.credential.json", key)
        try:
            embed_c2pa(credential, plain, paths["audio"], ensure_dev_chain(settings.home))
        except Exception:
            paths["audio"].unlink(missing_ok=True)
            raise
        timings["credential"] = time.perf_counter() - t0
        step("credential", 4)

    files = {
        kind: {"sha256": store.media.put_bytes(path.read_bytes()), "name": path.name} for kind, path in paths.items()
    }
    output = Output(
        output_id,
        model_id,
        creator_id,
        created,
        prompt.to_dict(),
        seed,
        files,
        credential.to_dict(),
        published.private_record(),
    )
    save_output(store, output)
    record_event(store, "generation", output, creator, at=created, event_id=f"gen-{output_id}")
    step("stored", 5)
    render_info = {
        "synthesizer": rendered.synthesizer,
        "soundfont": rendered.soundfont,
        "seconds_of_audio": rendered.seconds_of_audio,
        "render_seconds": rendered.render_seconds,
        "tokens": piece.n_tokens,
        "tokens_per_second": piece.tokens_per_second,
    }
    return Generated(output, folder, paths, render_info, timings)


def copy_for_download(store: Store, output: Output, dest: Path) -> list[Path]:
    """Copy an output's files out of the content-addressed store (after the plan allowed it)."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for info in output.files.values():
        target = dest / info["name"]
        shutil.copyfile(store.media.open_path(info["sha256"]), target)
        out.append(target)
    return out
