"""Attribution as the rest of Accord calls it: for a model in the registry, an output or any MIDI file.

Stages: context (the model's manifest and the registry as of the manifest's ``as_of``) → index
(built on first use, then read from ``<model_dir>/attribution/``) → scores → weights → works and
holders. Contexts are cached per model folder and checkpoint, so a second output of the same
model costs only its own query.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from accord.attribution.contract import Attribution, not_computed
from accord.attribution.methods import AttributionContext, Progress, Query, Scored, get_method
from accord.attribution.weights import build_attribution, weigh
from accord.datasets import repository
from accord.datasets.manifest import Manifest
from accord.errors import NotFound
from accord.registry.entities import Catalog
from accord.registry.media import MediaStore
from accord.registry.store import Store
from accord.settings import Settings

_CONTEXTS: dict[tuple[str, str, int, int, int], AttributionContext] = {}


def context_for(
    model_dir: Path,
    manifest: Manifest,
    catalog: Catalog,
    media: MediaStore,
    *,
    k: int = 2048,
    max_members: int = 3,
    device: str | None = None,
) -> AttributionContext:
    """The (cached) context for a model folder trained on ``manifest``."""
    ckpt = model_dir / "ckpt.pt"
    if not ckpt.is_file():
        msg = f"model files: no checkpoint at {ckpt} (train the model first: accord train)"
        raise NotFound(msg)
    key = (str(model_dir.resolve()), manifest.root, ckpt.stat().st_mtime_ns, k, max_members)
    if key not in _CONTEXTS:
        _CONTEXTS[key] = AttributionContext(
            model_dir, manifest, catalog, media, k=k, max_members=max_members, device=device
        )
    return _CONTEXTS[key]


def context_for_model(store: Store, settings: Settings, model_id: str) -> AttributionContext:
    """The context of a registered model: its manifest, and the registry as of the manifest's ``as_of``."""
    record = repository.get_model(store, model_id)
    manifest, _ = repository.load_manifest(store, record.manifest_root)
    model_dir = settings.models_dir / model_id
    probe = (str(model_dir.resolve()), manifest.root)
    for key, ctx in _CONTEXTS.items():  # skip the snapshot when this model's context is already cached
        if key[:2] == probe and key[3:] == (settings.attribution_dims, settings.attribution_members):
            ckpt = model_dir / "ckpt.pt"
            if ckpt.is_file() and ckpt.stat().st_mtime_ns == key[2]:
                return ctx
    catalog = store.snapshot(manifest.header.as_of)
    return context_for(
        model_dir,
        manifest,
        catalog,
        store.media,
        k=settings.attribution_dims,
        max_members=settings.attribution_members,
    )


def attribute(
    ctx: AttributionContext, query: Query, method: str = "trak", progress: Progress | None = None
) -> Attribution:
    """Attribute ``query`` to the items of ``ctx``'s manifest with ``method`` (index built on first use;
    ``progress`` follows that build)."""
    m = get_method(method)
    t0 = time.perf_counter()
    m.index(ctx, progress)
    t1 = time.perf_counter()
    raw = m.scores(ctx, query)
    t2 = time.perf_counter()
    if isinstance(raw, Scored):
        scores = ctx.credit_only_trained(raw.scores)
        weighting = weigh(
            scores, ctx.isrcs, floor=m.floor, causal=m.causal, sample=raw.sample, excess_total=raw.excess_total
        )
    else:
        scores = ctx.credit_only_trained(raw)
        weighting = weigh(scores, ctx.isrcs, floor=m.floor, causal=m.causal)
    return build_attribution(
        method=m.name,
        method_version=m.version,
        scores=scores,
        weighting=weighting,
        manifest=ctx.manifest,
        catalog=ctx.catalog,
        details={"index_seconds": round(t1 - t0, 4), "query_seconds": round(t2 - t1, 4), "items": len(ctx.isrcs)},
    )


def index_model(
    store: Store, settings: Settings, model_id: str, methods: Sequence[str], progress: Progress | None = None
) -> dict[str, dict[str, Any]]:
    """Build (or find) every named method's index for a model; what each holds."""
    ctx = context_for_model(store, settings, model_id)
    out = {}
    for name in methods:
        t0 = time.perf_counter()
        info = get_method(name).index(ctx, progress)
        out[name] = {**info, "seconds": round(time.perf_counter() - t0, 3)}
    return out


def query_from_midi(ctx: AttributionContext, midi: bytes, *, style: str | None = None, label: str = "") -> Query:
    """A query for any MIDI file: tokenized by the model's tokenizer, key estimated, style as given (or unknown)."""
    ids = ctx.tokenizer().encode(midi, style=style or "")
    return Query(tuple(ids), midi, label)


def attribute_midi(
    store: Store,
    settings: Settings,
    model_id: str,
    midi: bytes,
    *,
    method: str | None = None,
    style: str | None = None,
    label: str = "",
    progress: Progress | None = None,
) -> Attribution:
    """``accord attribute FILE``: any MIDI file against a registered model's manifest."""
    ctx = context_for_model(store, settings, model_id)
    query = query_from_midi(ctx, midi, style=style, label=label)
    return attribute(ctx, query, method or settings.attribution_method, progress)


def attribute_output(
    store: Store,
    settings: Settings,
    *,
    model_id: str,
    token_ids: Sequence[int],
    midi: bytes,
    label: str = "",
    method: str | None = None,
    progress: Progress | None = None,
) -> Attribution:
    """A released output's attribution (the model's index is built on first use and cached)."""
    ctx = context_for_model(store, settings, model_id)
    query = Query(tuple(int(t) for t in token_ids), midi, label)
    return attribute(ctx, query, method or settings.attribution_method, progress)


def attribute_remix(
    store: Store, settings: Settings, influence: Attribution, midi: bytes, remix_of: str, influence_catalog: Catalog
) -> Attribution:
    """``influence`` with the bars of ``midi`` that derive from recording ``remix_of`` credited to it
    directly (:mod:`accord.attribution.remix`): found by the guard's aligner under its policy's scores,
    and credited to the source's owners as the registry stands now (``influence_catalog``: the registry
    the influence items were credited by)."""
    from accord.attribution.guard.policy import load_policy
    from accord.attribution.remix import Derived, credit_remix, derived_bars, source_midi_sha256

    source_catalog = store.snapshot(store.clock(), isrcs=[remix_of])
    sha = source_midi_sha256(source_catalog, remix_of)
    if sha is None:  # nothing to align with: no bar can be shown to derive from it
        derived = Derived(remix_of, (), 0)
    else:
        derived = derived_bars(midi, store.media.read_verified(sha), remix_of, load_policy(settings).scoring)
    return credit_remix(influence, derived, influence_catalog=influence_catalog, source_catalog=source_catalog)


def credential_attribution(
    store: Store,
    settings: Settings,
    model_id: str,
    token_ids: Sequence[int],
    midi: bytes,
    label: str = "",
    progress: Progress | None = None,
    remix_of: str | None = None,
) -> dict[str, Any]:
    """The credential's ``attribution`` field for a released output (the contract in
    :mod:`accord.attribution.contract`); where it cannot be computed (e.g. the model's files are
    incomplete), ``{"status": "not_computed", "note": why}``, and royalties fall back to the training pool.

    ``remix_of``: the recording the output continues or remixes (``Prompt.from_isrc``): the bars taken
    from it are credited to it directly, and only the rest by influence (:func:`attribute_remix`)."""
    from accord.errors import AccordError

    try:
        result = attribute_output(
            store, settings, model_id=model_id, token_ids=token_ids, midi=midi, label=label, progress=progress
        )
        if remix_of:
            catalog = context_for_model(store, settings, model_id).catalog  # cached by attribute_output
            result = attribute_remix(store, settings, result, midi, remix_of, catalog)
    except AccordError as exc:
        return not_computed(f"attribution failed: {exc}")
    return result.to_credential()
