"""The datasets' orchestration over the store: build and sign, audit, model status.

Thin: each function reads what it needs from the store and calls the pure functions of
:mod:`manifest`, :mod:`taint` and :mod:`repository`.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from hashlib import sha256
from typing import Any

from cryptography.hazmat.primitives import serialization

from accord.datasets import repository
from accord.datasets.manifest import Manifest, build_manifest
from accord.datasets.repository import ManifestRecord
from accord.datasets.taint import Changes, ManifestAudit, ModelStatus, audit_manifest, model_status
from accord.errors import ValidationError
from accord.model.audit import gate as memorisation_gate
from accord.model.audit import latest_audits
from accord.registry.entities import Use
from accord.registry.store import Store
from accord.signing import OperatorKey
from accord.timeutil import iso

ProgressCallback = Callable[[str, int, int], None]


def salt_secret(key: OperatorKey) -> bytes:
    """The operator's secret for manifest salts: ``HMAC-SHA256(Ed25519 seed, "accord-manifest-salt")``.

    Only the holder of the operator key can compute it, so only the operator can rebuild a
    manifest's salt (and with it the keyed hash of any ISRC); the same training set built
    again still gets the same salt and root.
    """
    seed = key.private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return hmac.new(seed, b"accord-manifest-salt", sha256).digest()


def build(
    store: Store,
    key: OperatorKey,
    *,
    use: Use | str,
    as_of: datetime,
    territory: str,
    filters: tuple[tuple[str, tuple[str, ...]], ...] = (),
    actor: str = "operator",
    progress: ProgressCallback | None = None,
) -> tuple[Manifest, ManifestRecord, bool]:
    """Build a manifest from the registry as it stood at ``as_of``, sign and store it.

    Raises:
        ValidationError: ``as_of`` is in the future (the registry cannot say what it will hold).
    """
    now = store.clock()
    if as_of > now:
        msg = f"as_of: {iso(as_of)} is in the future; a manifest reads the registry as it stood (now is {iso(now)})"
        raise ValidationError(msg, field="as_of", value=iso(as_of))
    catalog = store.snapshot(as_of)
    manifest = build_manifest(
        catalog,
        use=use,
        as_of=as_of,
        territory=territory,
        filters=filters,
        progress=progress,
        secret=salt_secret(key),
    )
    record, created = repository.save_manifest(store, manifest, key, actor=actor)
    return manifest, record, created


@dataclass(frozen=True)
class AuditReport:
    """Every manifest's flags and every model's status at one instant.

    Attributes:
        at: the instant audited.
        manifests: one audit per manifest.
        models: one status per model.
        seconds: how long the audit took.
    """

    at: datetime
    manifests: tuple[ManifestAudit, ...]
    models: tuple[ModelStatus, ...]
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pending_by_licensor(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for m in self.models:
            for licensor in m.pending_approvals:
                out.setdefault(licensor, []).append(m.model_id)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": iso(self.at),
            "manifests": [m.to_dict() for m in self.manifests],
            "models": [m.to_dict() for m in self.models],
            "pending_approvals_by_licensor": self.pending_by_licensor,
            "seconds": round(self.seconds, 3),
        }


def _changes_after(when: dict[str, dict[str, datetime]], t: datetime) -> Changes:
    """The changes after ``t``, out of those read once after an earlier instant.

    A key changed after ``t`` exactly when its latest version was recorded after ``t``.
    """
    recent = {kind: {k: w for k, w in latest.items() if w > t} for kind, latest in when.items()}
    return Changes({kind: set(latest) for kind, latest in recent.items()}, recent)


def audit(store: Store, at: datetime, *, roots: list[str] | None = None) -> AuditReport:
    """Audit every stored manifest (or those listed) and the models trained on them."""
    started = time.perf_counter()
    rights = store.snapshot(at, isrcs=())  # parties, agreements, opt-outs: no recordings needed yet
    models_by_root: dict[str, list[str]] = {}
    for model in repository.list_models(store):
        models_by_root.setdefault(model.manifest_root, []).append(model.model_id)
    records = [r for r in repository.list_manifests(store) if roots is None or r.root in roots]
    audits: list[ManifestAudit] = []
    statuses: list[ModelStatus] = []
    memorisation = latest_audits(store)  # a failed memorisation audit blocks a model too
    # The registry read at build time held what was recorded up to min(as_of, built_at);
    # the changes since the earliest such instant are read once, for every manifest.
    read_until = {r.root: min(r.as_of, r.built_at) for r in records}
    _, changed = store.changed_since(min(read_until.values())) if records else ({}, {})
    for record in records:
        manifest, _ = repository.load_manifest(store, record.root)
        as_of = manifest.header.as_of
        result = audit_manifest(
            manifest,
            rights,
            _changes_after(changed, read_until[record.root]),
            at,
            now=lambda isrcs: store.snapshot(at, isrcs=isrcs),
            then=lambda isrcs, t=as_of: store.snapshot(t, isrcs=isrcs),
            models=models_by_root.get(record.root, ()),
        )
        audits.append(result)
        for model_id in result.models:
            decisions = {p: a.decision for p, a in repository.latest_approvals(store, model_id).items()}
            status = model_status(model_id, manifest, result, rights, decisions)
            statuses.append(memorisation_gate(status, memorisation.get(model_id)))
    return AuditReport(at, tuple(audits), tuple(statuses), time.perf_counter() - started)


def status_of_model(store: Store, model_id: str, at: datetime) -> ModelStatus:
    """Whether one model may serve now (the generation path asks this before every job)."""
    model = repository.get_model(store, model_id)
    report = audit(store, at, roots=[model.manifest_root])
    return next(s for s in report.models if s.model_id == model_id)
