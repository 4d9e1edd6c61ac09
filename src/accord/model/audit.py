"""The memorisation audit: can a model be made to regurgitate the works it was trained on?

For each training work (a seeded sample, or every one) the model is prompted with the work's
opening ``prompt_bars`` bars and samples ``continue_bars`` more at each of several
temperatures. Only the continuation (the prompt's bars cut off) goes to the replication guard
(:meth:`accord.attribution.guard.Guard.verdict`, its own scorer and threshold), and the audit
reads what the guard found against the **source** work: the bars of the source it reproduces,
and whether that reaches the guard's threshold (an *extraction*). The same is done for works
the model never saw (its held-out validation pieces, topped up from catalog recordings outside
the manifest): the **control**. A prompt's style, key and first bars make some overlap with
its source likely for any model; the control measures that, so

    memorisation = extraction rate on training works − extraction rate on the control

means memorisation rather than style. A model whose memorisation exceeds the policy limit
(:data:`EXTRACTION_LIMIT`, recorded with each audit) fails: it cannot be approved or serve
(:mod:`accord.model.audit_gate`), and the refusal names the works it reproduced.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accord.errors import ValidationError

Progress = Callable[[str, int, int], None]
FORMAT = "accord-memorisation-audit/1"
EXTRACTION_LIMIT = 0.05
"""Policy: training works may be extracted at most 5 percentage points more often than unseen works
(a larger excess fails the audit when it is not chance: see :func:`summarise`)."""
Z_95 = 1.645  # one-sided 95%
PROMPT_BARS = 2
CONTINUE_BARS = 6
TEMPERATURES = (0.8, 1.0)
WORKS = 64
"""Training works prompted by default (a seeded sample; ``None``: every one); see docs/model.md for the time."""
CONTROL = 32
WORST = 10  # works listed in a report
TOKENS_PER_BAR = 128
"""Most tokens sampled per bar asked for (a four-part chorale bar takes ~60): a model that never closes a bar stops."""


@dataclass(frozen=True)
class Source:
    """A work the model is prompted with.

    Attributes:
        isrc: the recording.
        title: its title.
        style: its genre (the style condition of the prompt).
        midi: its MIDI file.
        group: ``"train"`` (the model trained on it) or ``"control"`` (it never saw it).
    """

    isrc: str
    title: str
    style: str
    midi: bytes
    group: str


@dataclass(frozen=True)
class Probe:
    """One continuation and what the guard found in it against its source.

    Attributes:
        isrc: the source work.
        group: ``"train"`` or ``"control"``.
        temperature: the sampling temperature.
        bars: bars of the continuation spanned by its closest passage with the source (0: none found).
        score: the guard's score for the source (its own units; 0.0 when the source was not among the closest).
        extracted: the guard's score for the source reaches its threshold.
        others: other catalog works the continuation reaches the threshold on.
    """

    isrc: str
    group: str
    temperature: float
    bars: int
    score: float
    extracted: bool
    others: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "isrc": self.isrc,
            "group": self.group,
            "temperature": self.temperature,
            "bars": self.bars,
            "score": round(self.score, 4),
            "extracted": self.extracted,
            "others": list(self.others),
        }


def rate(probes: Sequence[Probe]) -> float:
    """Share of continuations that extract their source (0.0 for none)."""
    return sum(p.extracted for p in probes) / len(probes) if probes else 0.0


def summarise(
    probes: Sequence[Probe],
    *,
    titles: Mapping[str, str],
    limit: float,
    settings: Mapping[str, Any],
    threshold: float,
    policy_version: str,
    seconds: float,
) -> dict[str, Any]:
    """The audit's record (as the card and the audit log keep it): rates, distribution, worst works, verdict.

    The model fails when its memorisation (training rate − control rate) exceeds ``limit`` *and*
    the excess is not chance: the lower end of a one-sided 95% interval for it is above zero
    (with a handful of works, one extraction more than the control is not evidence)."""
    train = [p for p in probes if p.group == "train"]
    control = [p for p in probes if p.group == "control"]
    train_rate, control_rate = rate(train), rate(control)
    memorisation = max(0.0, train_rate - control_rate)
    worst: dict[str, Probe] = {}
    for p in train:
        if p.isrc not in worst or (p.extracted, p.bars, p.score) > (
            worst[p.isrc].extracted,
            worst[p.isrc].bars,
            worst[p.isrc].score,
        ):
            worst[p.isrc] = p
    # most reproduced first; ISRC breaks ties so the report is stable
    ranked = sorted(worst.values(), key=lambda p: (-p.extracted, -p.bars, -p.score, p.isrc))
    extracted_works = sorted({p.isrc for p in train if p.extracted})

    def histogram(group: Sequence[Probe]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for p in group:
            counts[str(p.bars)] = counts.get(str(p.bars), 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: int(kv[0])))

    # Not chance: the excess must also hold at the lower end of a one-sided 95% interval (normal
    # approximation, counting works, not continuations: one work's continuations are not independent).
    n_train, n_control = len({p.isrc for p in train}), len({p.isrc for p in control})
    spread = math.sqrt(
        train_rate * (1 - train_rate) / max(n_train, 1) + control_rate * (1 - control_rate) / max(n_control, 1)
    )
    lower = (train_rate - control_rate) - Z_95 * spread
    passed = not (memorisation > limit and lower > 0)
    return {
        "format": FORMAT,
        "passed": passed,
        "limit": limit,
        "memorisation": round(memorisation, 4),
        "memorisation_lower_bound": round(lower, 4),
        "extraction_rate": round(train_rate, 4),
        "control_extraction_rate": round(control_rate, 4),
        "train_works": len({p.isrc for p in train}),
        "control_works": len({p.isrc for p in control}),
        "continuations": {"train": len(train), "control": len(control)},
        "bars_reproduced": {"train": histogram(train), "control": histogram(control)},
        "mean_bars": {
            "train": round(sum(p.bars for p in train) / len(train), 3) if train else 0.0,
            "control": round(sum(p.bars for p in control) / len(control), 3) if control else 0.0,
        },
        "extracted_works": [{"isrc": i, "title": titles.get(i, "")} for i in extracted_works],
        "worst": [p.to_dict() | {"title": titles.get(p.isrc, "")} for p in ranked[:WORST]],
        "guard": {"threshold": threshold, "policy_version": policy_version},
        "settings": dict(settings),
        "seconds": round(seconds, 3),
        "probes": [p.to_dict() for p in probes],
    }


def continuation(midi: bytes, after_bars: int) -> bytes:
    """The piece from bar ``after_bars + 1`` on, moved to start at 0 (``b""`` when it has no bars past that)."""
    from symusic import Score

    score: Any = Score.from_midi(midi)  # symusic's stubs type a Score without its methods
    downbeats = [int(t) for t in score.get_downbeats()]
    if len(downbeats) <= after_bars:
        return b""
    start = downbeats[after_bars]
    end = max(int(score.end()), start + 1)
    cut = score.clip(start, end + 1).shift_time(-start)
    if not any(len(track.notes) for track in cut.tracks):
        return b""
    # clip drops the tempo and meter in force at the cut: carry the latest of each over to time 0
    for events, kept in ((score.tempos, cut.tempos), (score.time_signatures, cut.time_signatures)):
        before = [e for e in events if int(e.time) <= start]
        if before and not any(int(e.time) == 0 for e in kept):
            first = before[-1].copy()
            first.time = 0
            kept.insert(0, first)
    return bytes(cut.dumps_midi())


def probe_seed(seed: int, isrc: str, temperature: float) -> int:
    """The sampling seed of one continuation: fixed by the audit's seed, the work and the temperature."""
    return int.from_bytes(hashlib.sha256(f"accord-audit:{seed}:{isrc}:{temperature}".encode()).digest()[:4], "big") >> 1


def sample_sources(sources: Sequence[Source], n: int | None, seed: int) -> list[Source]:
    """``n`` of ``sources`` (all for ``None``), chosen by a seeded hash of each ISRC: the same every run."""
    ranked = sorted(sources, key=lambda s: hashlib.sha256(f"{seed}:{s.isrc}".encode()).hexdigest())
    return ranked if n is None else ranked[:n]


def probe(
    loaded: Any,
    guard: Any,
    source: Source,
    temperature: float,
    *,
    prompt_bars: int,
    continue_bars: int,
    seed: int,
) -> Probe:
    """Prompt the model with ``source``'s opening bars, sample a continuation, and ask the guard about it."""
    from accord.model.sample import generate

    piece = generate(
        loaded,
        style=source.style,
        bars=prompt_bars + continue_bars,
        seed=probe_seed(seed, source.isrc, temperature),
        temperature=temperature,
        prime_midi=source.midi,
        prime_bars=prompt_bars,
        max_tokens=TOKENS_PER_BAR * continue_bars,
    )
    tail = continuation(piece.midi, prompt_bars)
    if not tail:
        return Probe(source.isrc, source.group, temperature, 0, 0.0, False)
    verdict = guard.verdict(midi=tail)
    symbolic = [e for e in verdict.closest if e.check == "symbolic"]
    mine = next((e for e in symbolic if e.isrc == source.isrc), None)
    others = tuple(sorted({e.isrc for e in symbolic if e.over and e.isrc != source.isrc}))
    if mine is None:
        return Probe(source.isrc, source.group, temperature, 0, 0.0, False, others)
    return Probe(source.isrc, source.group, temperature, int(mine.shared_bars), float(mine.score), mine.over, others)


def run_audit(
    loaded: Any,
    guard: Any,
    train_sources: Sequence[Source],
    control_sources: Sequence[Source],
    *,
    prompt_bars: int = PROMPT_BARS,
    continue_bars: int = CONTINUE_BARS,
    temperatures: Sequence[float] = TEMPERATURES,
    works: int | None = WORKS,
    control: int = CONTROL,
    seed: int = 0,
    limit: float = EXTRACTION_LIMIT,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Probe a sample of training and control works at each temperature; the summary (:func:`summarise`)."""
    if prompt_bars < 1 or continue_bars < 1:
        msg = f"bars: prompt {prompt_bars}, continuation {continue_bars}; expected at least 1 each"
        raise ValidationError(msg, field="bars", value=(prompt_bars, continue_bars))
    if not temperatures or any(not 0.0 < t <= 5.0 for t in temperatures):
        msg = f"temperatures: {list(temperatures)}; expected one or more in (0, 5]"
        raise ValidationError(msg, field="temperatures", value=list(temperatures))
    if works is not None and works < 1:
        msg = f"works: {works}; expected at least 1 (or every one)"
        raise ValidationError(msg, field="works", value=works)
    if control < 0 or not 0.0 <= limit <= 1.0:
        msg = f"control {control}, limit {limit}: expected control >= 0 and a limit in [0, 1]"
        raise ValidationError(msg, field="limit", value=limit)
    if not train_sources:
        msg = "audit: the model has no training work with a MIDI file to prompt it with"
        raise ValidationError(msg, field="works")
    started = time.perf_counter()
    chosen = [*sample_sources(train_sources, works, seed), *sample_sources(control_sources, control, seed)]
    jobs = [(s, t) for s in chosen for t in temperatures]
    emit = progress or (lambda stage, done, total: None)
    probes = []
    for n, (source, temperature) in enumerate(jobs):
        emit("memorisation audit", n, len(jobs))
        probes.append(
            probe(
                loaded,
                guard,
                source,
                temperature,
                prompt_bars=prompt_bars,
                continue_bars=continue_bars,
                seed=seed,
            )
        )
    emit("memorisation audit", len(jobs), len(jobs))
    return summarise(
        probes,
        titles={s.isrc: s.title for s in chosen},
        limit=limit,
        settings={
            "prompt_bars": prompt_bars,
            "continue_bars": continue_bars,
            "temperatures": list(temperatures),
            "works": works,
            "control": control,
            "seed": seed,
        },
        threshold=float(guard.policy.symbolic_threshold),
        policy_version=str(guard.policy.version),
        seconds=time.perf_counter() - started,
    )


def sources_for(
    store: Any, manifest: Any, card: Mapping[str, Any], styles: Sequence[str]
) -> tuple[list[Source], list[Source]]:
    """The training works (manifest items trained on) and the unseen ones (held out, then outside the manifest).

    Only works whose style the model knows are used; a manifest item is read through the
    manifest's hash-checked loader, a catalog recording outside it from the media store.
    """
    from accord.datasets.loader import ManifestLoader
    from accord.model.conditions import style_slug

    known = set(styles)
    held_out = set(card.get("data", {}).get("val_isrcs", ()))
    skipped = {s["isrc"] for s in card.get("data", {}).get("skipped", ())}
    catalog = store.snapshot()
    loader = ManifestLoader(manifest, store.media)
    train: list[Source] = []
    control: list[Source] = []
    for item in manifest.items:  # manifest order: sorted by ISRC
        if item.isrc in skipped or item.media_kind != "midi" or style_slug(item.genre or "") not in known:
            continue
        rec = catalog.recordings.get(item.isrc)
        title = rec.title if rec is not None else item.isrc
        group = "control" if item.isrc in held_out else "train"
        midi = loader.read(item.isrc).data
        (control if group == "control" else train).append(Source(item.isrc, title, item.genre, midi, group))
    in_manifest = {item.isrc for item in manifest.items}
    for isrc in sorted(catalog.recordings):  # by ISRC: the same order on every run
        rec = catalog.recordings[isrc]
        if isrc in in_manifest or style_slug(rec.genre or "") not in known:
            continue
        midi_file = rec.midi
        if midi_file is not None and store.media.has(midi_file.sha256):
            data = store.media.read_verified(midi_file.sha256)
            control.append(Source(isrc, rec.title, rec.genre, data, "control"))
    return train, control


def audit_model(
    store: Any,
    settings: Any,
    model_id: str,
    *,
    folder: Path | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Audit a registered model (its files in ``folder``, default its model folder); the summary."""
    from accord.datasets import repository

    record = repository.get_model(store, model_id)
    return audit_files(
        store, settings, record.manifest_root, folder or settings.models_dir / model_id, progress=progress, **options
    )


def audit_files(
    store: Any,
    settings: Any,
    manifest_root: str,
    folder: Path,
    *,
    progress: Progress | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Audit the model in ``folder``, trained on ``manifest_root`` (registered or not yet)."""
    import torch

    from accord.attribution.guard import Guard
    from accord.datasets import repository
    from accord.errors import NotFound
    from accord.model.sample import load_model

    if not (folder / "ckpt.pt").is_file():
        msg = f"model files: {folder.name} has no trained weights here (train it first: accord train)"
        raise NotFound(msg)
    manifest, _ = repository.load_manifest(store, manifest_root)
    loaded = load_model(folder, dtype=torch.float32)  # the weights exactly as trained
    train_sources, control_sources = sources_for(store, manifest, loaded.card, loaded.tokenizer.styles)
    guard = Guard.for_store(store, settings, audio=False, progress=progress)
    return run_audit(loaded, guard, train_sources, control_sources, progress=progress, **options)


# ---------------------------------------------------------------- the record, and the gate

ACTION = "model.memorisation_audit"
"""The audit-log action under which each audit's summary is kept (the latest one per model counts)."""


def _record_detail(summary: Mapping[str, Any]) -> dict[str, Any]:
    """What the audit log keeps of an audit: everything but the per-continuation probes (those stay in the card)."""
    return {k: v for k, v in summary.items() if k != "probes"}


def record_audit(store: Any, model_id: str, summary: Mapping[str, Any], *, actor: str) -> None:
    """Append an audit's summary to the audit log for ``model_id``; from now on it is the one the gate reads."""
    from sqlalchemy import insert

    from accord.registry import counters
    from accord.registry.schema import Base

    with store.engine.begin() as conn:
        conn.execute(
            insert(Base.metadata.tables["audit_events"]).values(
                at=store.clock(), actor=actor, action=ACTION, subject=model_id, detail=_record_detail(summary)
            )
        )
        counters.bump(conn, "models")  # a model's status depends on it: the stored taint state is stale


def latest_audits(store: Any, model_ids: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Each model's latest memorisation audit summary (models never audited are absent)."""
    from sqlalchemy import select

    from accord.registry.schema import Base

    table = Base.metadata.tables["audit_events"]
    query = select(table.c.subject, table.c.detail).where(table.c.action == ACTION).order_by(table.c.pk)
    if model_ids is not None:
        query = query.where(table.c.subject.in_(sorted(set(model_ids))))
    with store.engine.connect() as conn:
        return {subject: dict(detail) for subject, detail in conn.execute(query)}  # a later row wins


def refusal(model_id: str, summary: Mapping[str, Any] | None) -> str | None:
    """Why a model's latest audit forbids approving or serving it (``None``: it does not)."""
    if summary is None or summary.get("passed", True):
        return None
    works = summary.get("extracted_works", [])
    named = ", ".join(f"{w['isrc']} ({w['title']})" if w.get("title") else w["isrc"] for w in works[:10])
    more = f" and {len(works) - 10} more" if len(works) > 10 else ""
    return (
        f"model {model_id} failed its memorisation audit: its continuations reproduce training works at or over "
        f"the guard's threshold {summary['extraction_rate']:.0%} of the time against "
        f"{summary['control_extraction_rate']:.0%} for works it never saw (memorisation "
        f"{summary['memorisation']:.0%}, limit {summary['limit']:.0%}); works reproduced: {named or 'none'}{more}"
    )


def check_may_approve(store: Any, model_id: str) -> None:
    """Refuse an approval of a model whose latest memorisation audit failed (naming the works)."""
    from accord.errors import NotLicensed

    why = refusal(model_id, latest_audits(store, [model_id]).get(model_id))
    if why is not None:
        msg = f"approval refused: {why}; retrain it (accord model retrain) and audit it again"
        raise NotLicensed(msg)


def gate(status: Any, summary: Mapping[str, Any] | None) -> Any:
    """A model's :class:`~accord.datasets.taint.ModelStatus` with its memorisation audit applied."""
    from dataclasses import replace

    from accord.datasets.taint import SERVING_USES
    from accord.registry.entities import Use

    why = refusal(status.model_id, summary)
    if why is None:
        return status
    return replace(
        status,
        blocked_uses=frozenset(status.blocked_uses | SERVING_USES | {Use.TRAIN}),
        reasons=(*status.reasons, why),
    )
