"""Where manifests, models and model approvals are kept.

A manifest's file is canonical JSON stored in the content-addressed store (named by its
sha256); its row, keyed by Merkle root, records the signature over its statement. A
manifest is written once and never changes: building the same training set again finds
the existing one. Models name the manifest they were trained on; approvals are
appended, the latest per licensor counts.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from accord.datasets.manifest import Manifest
from accord.errors import Conflict, NotFound, ValidationError
from accord.registry import counters
from accord.registry.schema import Base
from accord.registry.store import Store
from accord.signing import OperatorKey, canonical_json
from accord.timeutil import iso

T = Base.metadata.tables
APPROVED, REFUSED = "approved", "refused"


@dataclass(frozen=True)
class ManifestRecord:
    """A stored manifest's row.

    Attributes:
        root: the Merkle root (hex): the manifest id.
        use, territory, as_of: what it was built for.
        tree_size: items in it.
        excluded: recordings left out.
        file_sha256: the manifest file in the content-addressed store.
        signature: ``{algorithm, public_key, value}`` over :meth:`Manifest.statement`.
        built_at, built_by: when and by whom.
    """

    root: str
    use: str
    territory: str
    as_of: datetime
    tree_size: int
    excluded: int
    file_sha256: str
    signature: dict[str, str]
    built_at: datetime
    built_by: str


@dataclass(frozen=True)
class ModelRecord:
    """A model version and the manifest it was trained on.

    Attributes:
        model_id: its id (one id per trained version).
        manifest_root: the manifest it was trained on.
        created_at: when it was registered.
        registered_by: who registered it.
        card: its model card (hyperparameters, counts, losses ...).
    """

    model_id: str
    manifest_root: str
    created_at: datetime
    registered_by: str
    card: dict[str, Any]


@dataclass(frozen=True)
class Approval:
    """A licensor's decision on one model version.

    Attributes:
        model_id: the model version.
        licensor: who decided.
        decision: ``approved`` or ``refused``.
        at: when.
        by: who recorded it.
        note: why, in words.
    """

    model_id: str
    licensor: str
    decision: str
    at: datetime
    by: str
    note: str


def _manifest_record(r: Any) -> ManifestRecord:
    return ManifestRecord(
        r["root"],
        r["use"],
        r["territory"],
        r["as_of"],
        r["tree_size"],
        r["excluded"],
        r["file_sha256"],
        r["signature"],
        r["built_at"],
        r["built_by"],
    )


def save_manifest(store: Store, manifest: Manifest, key: OperatorKey, *, actor: str) -> tuple[ManifestRecord, bool]:
    """Store and sign a manifest; ``(record, True)`` if new, the existing one if the same set exists."""
    existing = find_manifest(store, manifest.root)
    if existing is not None:
        return existing, False
    file_sha = store.media.put_bytes(manifest.to_bytes())
    row = {
        "root": manifest.root,
        "use": manifest.header.use.value,
        "territory": manifest.header.territory,
        "as_of": manifest.header.as_of,
        "tree_size": len(manifest.items),
        "excluded": len(manifest.excluded),
        "file_sha256": file_sha,
        "signature": key.signature_block(manifest.statement()),
        "built_at": store.clock(),
        "built_by": actor,
    }
    with store.engine.begin() as conn:
        conn.execute(insert(T["manifests"]).values(**row))
        conn.execute(
            insert(T["audit_events"]).values(
                at=row["built_at"],
                actor=actor,
                action="manifest.built",
                subject=manifest.root,
                detail={"use": row["use"], "as_of": iso(row["as_of"]), "items": row["tree_size"]},
            )
        )
        counters.bump(conn, "models")
    return _manifest_record(row), True


def find_manifest(store: Store, root: str) -> ManifestRecord | None:
    with store.engine.connect() as conn:
        r = conn.execute(select(T["manifests"]).where(T["manifests"].c.root == root)).mappings().first()
    return _manifest_record(r) if r else None


def resolve_root(store: Store, ref: str) -> ManifestRecord:
    """A manifest by its full root or an unambiguous prefix of at least 8 hex digits."""
    ref = ref.strip().lower()
    if len(ref) < 8:
        msg = f"manifest: {ref!r} is too short; give the root or at least its first 8 hex digits"
        raise ValidationError(msg, field="manifest", value=ref)
    if len(ref) > 64 or ref.strip(string.hexdigits):  # never a NUL or a LIKE wildcard in the query
        msg = f"manifest: {ref!r} is not a root; expected up to 64 hex digits"
        raise ValidationError(msg, field="manifest", value=ref)
    with store.engine.connect() as conn:
        rows = conn.execute(select(T["manifests"]).where(T["manifests"].c.root.startswith(ref))).mappings().all()
    if not rows:
        msg = f"manifest {ref!r}: no manifest with this root"
        raise NotFound(msg)
    if len(rows) > 1:
        msg = f"manifest {ref!r}: {len(rows)} manifests start so; give more of the root"
        raise Conflict(msg)
    return _manifest_record(rows[0])


def load_manifest(store: Store, ref: str) -> tuple[Manifest, ManifestRecord]:
    """Read a stored manifest (its file is checked against its hash and its root recomputed)."""
    record = resolve_root(store, ref)
    data = json.loads(store.media.read_verified(record.file_sha256))
    manifest = Manifest.from_dict(data)
    if manifest.tree().root.hex() != record.root:
        msg = f"manifest {record.root}: its items no longer hash to its root; the file was tampered with"
        raise Conflict(msg)
    return manifest, record


def list_manifests(store: Store) -> list[ManifestRecord]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(T["manifests"]).order_by(T["manifests"].c.built_at)).mappings().all()
    return [_manifest_record(r) for r in rows]


def register_model(
    store: Store, model_id: str, manifest_root: str, *, card: dict[str, Any], actor: str
) -> tuple[ModelRecord, bool]:
    """Record a trained model version; registering the same one again changes nothing."""
    record = resolve_root(store, manifest_root)
    existing = find_model(store, model_id)
    if existing is not None:
        if existing.manifest_root != record.root:
            msg = f"model {model_id!r}: already registered on manifest {existing.manifest_root[:12]}"
            raise Conflict(msg)
        return existing, False
    now = store.clock()
    canonical_json(card)  # a card must be JSON: fail before writing anything
    with store.engine.begin() as conn:
        conn.execute(
            insert(T["models"]).values(
                model_id=model_id, manifest_root=record.root, created_at=now, registered_by=actor, card=card
            )
        )
        conn.execute(
            insert(T["audit_events"]).values(
                at=now, actor=actor, action="model.registered", subject=model_id, detail={"manifest": record.root}
            )
        )
        counters.bump(conn, "models")  # the stored taint state is stale from this commit on
    return ModelRecord(model_id, record.root, now, actor, card), True


def find_model(store: Store, model_id: str) -> ModelRecord | None:
    with store.engine.connect() as conn:
        r = conn.execute(select(T["models"]).where(T["models"].c.model_id == model_id)).mappings().first()
    return ModelRecord(r["model_id"], r["manifest_root"], r["created_at"], r["registered_by"], r["card"]) if r else None


def get_model(store: Store, model_id: str) -> ModelRecord:
    model = find_model(store, model_id)
    if model is None:
        msg = f"model {model_id!r}: not registered"
        raise NotFound(msg)
    return model


def list_models(store: Store) -> list[ModelRecord]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(T["models"]).order_by(T["models"].c.created_at, T["models"].c.model_id)).mappings()
        return [
            ModelRecord(r["model_id"], r["manifest_root"], r["created_at"], r["registered_by"], r["card"]) for r in rows
        ]


def record_approval(
    store: Store, model_id: str, licensor: str, *, approve: bool, by: str, note: str = ""
) -> tuple[Approval, bool]:
    """Record a licensor's approval or refusal; the same decision twice in a row is recorded once.

    An approval of a model whose latest memorisation audit failed is refused (:mod:`accord.model.audit`)."""
    get_model(store, model_id)
    if approve:
        from accord.model.audit import check_may_approve

        check_may_approve(store, model_id)
    if licensor not in store.snapshot().parties:
        msg = f"licensor: {licensor!r} is not a party in the registry"
        raise NotFound(msg)
    decision = APPROVED if approve else REFUSED
    latest = latest_approvals(store, model_id).get(licensor)
    if latest is not None and latest.decision == decision and latest.note == note:
        return latest, False
    now = store.clock()
    with store.engine.begin() as conn:
        conn.execute(
            insert(T["model_approvals"]).values(
                model_id=model_id, licensor=licensor, decision=decision, at=now, by=by, note=note
            )
        )
        conn.execute(
            insert(T["audit_events"]).values(
                at=now,
                actor=by,
                action=f"model.{decision}",
                subject=model_id,
                detail={"licensor": licensor, "note": note},
            )
        )
        counters.bump(conn, "models")
    return Approval(model_id, licensor, decision, now, by, note), True


def approvals(store: Store, model_id: str | None = None) -> list[Approval]:
    t = T["model_approvals"]
    q = select(t).order_by(t.c.pk)
    if model_id is not None:
        q = q.where(t.c.model_id == model_id)
    with store.engine.connect() as conn:
        return [
            Approval(r["model_id"], r["licensor"], r["decision"], r["at"], r["by"], r["note"])
            for r in conn.execute(q).mappings()
        ]


def latest_approvals(store: Store, model_id: str) -> dict[str, Approval]:
    """The latest decision per licensor for one model."""
    out: dict[str, Approval] = {}
    for a in approvals(store, model_id):
        out[a.licensor] = a
    return out
