"""``accord model retrain``: one step from a model to its successor on the licences as they stand now.

manifest → diff → train → audit → register → ask for approval, as one orchestrator:

1. build (sign, store) the manifest for the same use, territory and filters as the model's, as of now;
2. diff it against the model's manifest: what left and why, what came in;
3. train with the model's own hyperparameters (step count, seed, threads, preset) on the new manifest;
4. run the memorisation audit (:mod:`accord.model.audit`) and write it into the new card;
5. register the new version with its card, record the audit;
6. ask each licensor whose agreement needs per-version approval (an audit event per licensor;
   their pending approvals show in ``accord model list``, the API and the portal).

Nothing is trained when the manifest has not changed (unless forced).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

from accord.errors import Conflict, ValidationError
from accord.registry.store import Store
from accord.settings import Settings
from accord.signing import OperatorKey

Progress = Callable[[str, int, int], None]
APPROVAL_REQUESTED = "model.approval_requested"


@dataclass(frozen=True)
class Retraining:
    """What one retraining did.

    Attributes:
        model_id: the model retrained.
        new_model_id: the new version (``None``: nothing changed, nothing trained).
        old_root: the model's manifest.
        new_root: the manifest built now.
        diff: the manifests' diff (:meth:`accord.datasets.diff.ManifestDiff.to_dict`).
        audit: the new version's memorisation audit summary (``None`` when nothing was trained).
        status: the new version's status after registering (``None`` likewise).
        approvals_requested: licensors asked to approve the new version.
        seconds: wall time per stage.
    """

    model_id: str
    new_model_id: str | None
    old_root: str
    new_root: str
    diff: dict[str, Any]
    audit: dict[str, Any] | None
    status: dict[str, Any] | None
    approvals_requested: tuple[str, ...]
    seconds: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        audit = None if self.audit is None else {k: v for k, v in self.audit.items() if k != "probes"}
        return {
            "model_id": self.model_id,
            "new_model_id": self.new_model_id,
            "old_root": self.old_root,
            "new_root": self.new_root,
            "diff": self.diff,
            "audit": audit,
            "status": self.status,
            "approvals_requested": list(self.approvals_requested),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


def successor_id(model_id: str, preset: str, old_root: str, new_root: str) -> str:
    """The new version's id: the default id's manifest part replaced, else ``<id>.<8 hex of the new root>``."""
    default = f"accord-{preset}-{old_root[:12]}"
    if model_id.startswith(default):
        return f"accord-{preset}-{new_root[:12]}{model_id[len(default) :]}"
    return f"{model_id.rsplit('.', 1)[0] if '.' in model_id else model_id}.{new_root[:8]}"


def retrain_model(
    store: Store,
    settings: Settings,
    key: OperatorKey,
    model_id: str,
    *,
    new_model_id: str | None = None,
    actor: str = "operator",
    force: bool = False,
    audit_options: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> Retraining:
    """Retrain ``model_id`` on the manifest the licences allow now (see the module's stages)."""
    from accord.datasets import repository, service
    from accord.datasets.diff import diff_manifests
    from accord.datasets.disclosure import Undisclosed
    from accord.datasets.loader import ManifestLoader
    from accord.model.audit import audit_files, record_audit
    from accord.model.card import add_to_card
    from accord.model.train import Hyperparameters, train

    emit = progress or (lambda stage, done, total: None)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    record = repository.get_model(store, model_id)
    old, _ = repository.load_manifest(store, record.manifest_root)
    card = record.card
    saved = dict(card.get("hyperparameters") or {})
    if not saved or "training" not in card:
        msg = f"model {model_id!r}: its card records no training (registered without one); train it with accord train"
        raise ValidationError(msg, field="model", value=model_id)
    known = {f.name for f in fields(Hyperparameters)}
    hp = replace(
        Hyperparameters(**{k: v for k, v in saved.items() if k in known}),
        minutes=None,
        steps=int(card["training"]["steps"]),
    )
    if not hp.threads:
        hp = replace(hp, threads=int(card.get("hardware", {}).get("torch_threads") or 1))

    # 1-2. the manifest as of now, and what changed
    h = old.header
    emit("manifest", 0, 1)
    new, _, _ = service.build(
        store, key, use=h.use, as_of=store.clock(), territory=h.territory, filters=h.filters, actor=actor
    )
    diff = diff_manifests(old, new, undisclosed=Undisclosed.of(store.snapshot())).to_dict()
    emit("manifest", 1, 1)
    seconds["manifest"] = time.perf_counter() - t0
    if new.root == old.root and not force:
        return Retraining(model_id, None, old.root, new.root, diff, None, None, (), seconds)
    if not new.items:
        msg = f"model {model_id!r}: the training set as of now is empty (every item left); nothing to train on"
        raise ValidationError(msg, field="manifest", value=new.root)
    new_id = new_model_id or successor_id(model_id, hp.preset, old.root, new.root)
    earlier = repository.find_model(store, new_id)
    if earlier is not None and earlier.manifest_root != new.root:
        msg = f"model {new_id!r}: already registered on manifest {earlier.manifest_root[:12]}; give another id (--id)"
        raise Conflict(msg)
    if earlier is not None:  # an earlier run (a retried job) got this far: answer with what it registered
        from accord.model.audit import latest_audits

        status = service.status_of_model(store, new_id, store.clock())
        summary = latest_audits(store, [new_id]).get(new_id)
        return Retraining(
            model_id, new_id, old.root, new.root, diff, summary, status.to_dict(), status.pending_approvals, seconds
        )
    folder = settings.models_dir / new_id

    # 3. train with the same hyperparameters and seed
    t0 = time.perf_counter()

    def on_train(event: dict[str, Any]) -> None:
        if "fraction" in event:
            emit("training", int(1000 * float(event["fraction"])), 1000)

    train(
        new,
        ManifestLoader(new, store.media),
        store.snapshot(new.header.as_of),
        folder,
        hyperparameters=hp,
        resume=False,
        progress=on_train,
    )
    seconds["train"] = time.perf_counter() - t0

    # 4. the memorisation audit, into the card
    t0 = time.perf_counter()
    summary = audit_files(store, settings, new.root, folder, progress=emit, **(audit_options or {}))
    add_to_card(folder, "memorisation", summary)
    full = add_to_card(
        folder,
        "retrained_from",
        {
            "model": model_id,
            "manifest": old.root,
            "added": len(diff["added"]),
            "removed": len(diff["removed"]),
            "changed": len(diff["changed"]),
        },
    )
    full["model_id"] = new_id
    seconds["audit"] = time.perf_counter() - t0

    # 5-6. register, record the audit, ask the licensors who approve each version
    t0 = time.perf_counter()
    repository.register_model(store, new_id, new.root, card=json.loads(json.dumps(full, default=str)), actor=actor)
    record_audit(store, new_id, summary, actor=actor)
    status = service.status_of_model(store, new_id, store.clock())
    asked = tuple(status.pending_approvals)
    if asked:
        from sqlalchemy import insert

        from accord.registry.schema import Base

        with store.engine.begin() as conn:
            for licensor in asked:
                conn.execute(
                    insert(Base.metadata.tables["audit_events"]).values(
                        at=store.clock(),
                        actor=actor,
                        action=APPROVAL_REQUESTED,
                        subject=new_id,
                        detail={"licensor": licensor, "replaces": model_id},
                    )
                )
    seconds["register"] = time.perf_counter() - t0
    return Retraining(model_id, new_id, old.root, new.root, diff, summary, status.to_dict(), asked, seconds)
