"""What a worker does for each kind of job: the CLI's domain functions over the job's parameters.

Every kind is safe to run again after a crash (a worker killed mid-job, its job re-queued):

* ``generation`` stores its output under :func:`output_id_for` (derived from the job id), and the
  usage event under ``gen-<output id>``: a re-run finds the output already stored and makes
  neither a second output nor a second event; files are content-addressed (same bytes, same name).
* ``training`` registers the model under a deterministic id (``model_id`` or preset, manifest
  and seed); registering it again changes nothing.
* ``evaluation`` rewrites its report in the model's folder; ``attribution_index`` finds an index
  already built; ``retraining`` finds the new version already registered on the new manifest.

Heavy imports (the model, the guard, attribution) happen inside the functions: the API imports
this module to check a kind without loading PyTorch. A long-lived worker keeps what they load
(the model by its folder, the guard index by catalog hash, attribution contexts by model and
checkpoint) in their module caches between jobs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import IntegrityError

from accord.errors import NotFound
from accord.jobs.queue import Job
from accord.registry.store import Store
from accord.settings import Settings


def output_id_for(job_id: str) -> str:
    """The output a generation job makes, named by the job: the same on every attempt."""
    return "OUT-" + hashlib.sha256(f"accord-job-output:{job_id}".encode()).hexdigest()[:16].upper()


def _stored(store: Store, output_id: str) -> Any:
    from accord.outputs.store import get_output

    try:
        return get_output(store, output_id)
    except NotFound:
        return None


def _already_made(store: Store, output: Any) -> dict[str, Any]:
    """A generation an earlier attempt stored: make sure its usage event is recorded (once), and answer."""
    from accord.outputs.store import get_creator, record_event

    creator = get_creator(store, output.creator_id)
    record_event(store, "generation", output, creator, at=output.created_at, event_id=f"gen-{output.output_id}")
    return {"output_id": output.output_id, "files": sorted(output.files), "render": {}, "seconds": {}}


def run_generation(store: Store, settings: Settings, job: Job) -> dict[str, Any]:
    """A generation job: the CLI's ``generate`` over the job's parameters, its output named by the job."""
    from accord.outputs.studio import Prompt, generate_output

    params = job.params
    output_id = output_id_for(job.job_id)
    earlier = _stored(store, output_id)
    if earlier is not None:  # an earlier attempt stored it, then its worker died
        return _already_made(store, earlier)
    p = params["prompt"]
    prompt = Prompt(
        p["style"],
        p.get("key"),
        p.get("tempo_bpm"),
        p["bars"],
        p.get("from_isrc"),
        p["prime_bars"],
        p["temperature"],
        p.get("meter"),  # absent from jobs queued before a metre could be asked for
    )
    try:
        made = generate_output(
            store,
            settings,
            model_id=params["model_id"],
            creator_id=params["creator_id"],
            prompt=prompt,
            seed=params["seed"],
            output_id=output_id,
        )
    except IntegrityError:  # another attempt (its lease lost, still running) stored it first
        earlier = _stored(store, output_id)
        if earlier is None:
            raise
        return _already_made(store, earlier)
    return {
        "output_id": made.output.output_id,
        "files": sorted(made.output.files),
        "render": made.render,
        "seconds": {k: round(v, 3) for k, v in made.seconds.items()},
    }


def run_training(store: Store, settings: Settings, job: Job) -> dict[str, Any]:
    """A training job: the CLI's ``train`` (reads only the manifest's hash-checked files)."""
    from accord.outputs.studio import train_on_manifest

    params = job.params
    record, _ = train_on_manifest(
        store,
        settings,
        params["manifest"],
        preset=params["preset"],
        minutes=params.get("minutes"),
        steps=params.get("steps"),
        seed=params["seed"],
        model_id=params.get("model_id"),
        actor=params["actor"],
    )
    card: dict[str, Any] = json.loads(json.dumps(record.card, default=str))
    return {"model_id": record.model_id, "manifest_root": record.manifest_root, "card": card}


def run_evaluation(store: Store, settings: Settings, job: Job) -> dict[str, Any]:
    """An evaluation job: the CLI's ``model evaluate`` (baselines in the same run)."""
    from accord.datasets import repository
    from accord.datasets.loader import ManifestLoader
    from accord.model.evaluate import evaluate_model, write_report
    from accord.model.sample import load_model
    from accord.outputs.studio import model_dir

    params = job.params
    record = repository.get_model(store, params["model_id"])
    manifest, _ = repository.load_manifest(store, record.manifest_root)
    folder = model_dir(settings, record.model_id)
    if not folder.is_dir():
        msg = f"model files: {folder} not found (the model was registered, not trained here)"
        raise NotFound(msg)
    result = evaluate_model(
        load_model(folder),
        manifest,
        ManifestLoader(manifest, store.media),
        model_id=record.model_id,
        pieces=params["pieces"],
        seed=params["seed"],
        temperature=params["temperature"],
    )
    write_report(result, folder)
    out: dict[str, Any] = json.loads(json.dumps(result.to_dict(), default=str))
    return out


def run_attribution_index(store: Store, settings: Settings, job: Job) -> dict[str, Any]:
    """An attribution-index job: ``accord attribution index`` over the job's parameters."""
    from accord.attribution.service import index_model

    model_id = job.params["model_id"]
    try:
        info = index_model(store, settings, model_id, job.params["methods"])
    except NotFound:  # name the model, never a path on the server (where files live is the operator's business)
        msg = f"model {model_id!r}: its trained files are not available here (train it first: accord train)"
        raise NotFound(msg) from None
    return {"model_id": model_id, "methods": info}


def run_retraining(store: Store, settings: Settings, job: Job) -> dict[str, Any]:
    """A retraining job: ``accord model retrain`` (manifest as of now, diff, train, audit, register, ask).

    Safe to run again: the new version's id is derived from the model and the new manifest, and
    a retry that finds it registered on that manifest answers with it (nothing registered twice)."""
    from accord.model.retrain import retrain_model
    from accord.signing import load_operator_key

    params = job.params
    result = retrain_model(
        store,
        settings,
        load_operator_key(settings.home),
        params["model_id"],
        new_model_id=params.get("new_model_id"),
        actor=params["actor"],
        force=bool(params.get("force", False)),
        audit_options={"works": params.get("works", 64), "control": params.get("control", 32)},
    )
    out: dict[str, Any] = json.loads(json.dumps(result.to_dict(), default=str))
    return out


Work = Callable[[Store, Settings, Job], dict[str, Any]]
KINDS: dict[str, Work] = {
    "generation": run_generation,
    "training": run_training,
    "evaluation": run_evaluation,
    "attribution_index": run_attribution_index,
    "retraining": run_retraining,
}
"""Job kinds and the function a worker runs for each."""
