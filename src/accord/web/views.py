"""What the portal's pages show, assembled from the domain functions (no SQL, no rules here).

Each function answers one question a page asks, already narrowed to what the signed-in
party may see: a rights holder's recordings are those it has standing on (owner of any
share, artist, writer or publisher of an embodied work, as the licensing policy counts
them); its models are those whose manifest holds one of its items; its outputs are those
whose content credential attributes weight to one of its recordings or works.
"""

from __future__ import annotations

import functools
import io
import json
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from accord.api import services
from accord.api.auth import Principal, Role
from accord.datasets import repository, service
from accord.datasets.manifest import Manifest
from accord.datasets.proofs import party_recordings, write_proofs
from accord.datasets.repository import ModelRecord
from accord.datasets.taint import Flag, ModelStatus
from accord.errors import NotFound
from accord.licensing import Decision, LicensingPolicy
from accord.outputs.store import Output
from accord.registry.entities import GRANTABLE_USES, Catalog, Recording
from accord.registry.store import Store

USES = tuple(sorted(GRANTABLE_USES, key=lambda u: ("train", "generate", "remix").index(u.value)))
"""The uses a page shows, in the order a licence is usually read: train, generate, remix."""

DEFAULT_TERRITORY = "US"


def default_territory(store: Store) -> str:
    """The territory the latest training set was built for (what the models serve), else US."""
    manifests = repository.list_manifests(store)
    return manifests[-1].territory if manifests else DEFAULT_TERRITORY


def my_recordings(catalog: Catalog, principal: Principal) -> list[Recording]:
    """The recordings the principal may see (:func:`accord.api.services.visible_recordings`), by ISRC."""
    return sorted(services.visible_recordings(catalog, principal), key=lambda r: r.isrc)


def roles_of(catalog: Catalog, rec: Recording, party_id: str) -> list[str]:
    """How a party stands on a recording, in words (``master 50%``, ``artist``, ``publisher of W-1 60%``)."""
    out = [f"master {s.ppm / 10_000:g}%" for s in rec.shares if s.party_id == party_id]
    if party_id in rec.artists:
        out.append("artist")
    for work_id in rec.works:
        work = catalog.works.get(work_id)
        if work is None:
            continue
        out += [f"publishing {s.ppm / 10_000:g}% of {work.title}" for s in work.shares if s.party_id == party_id]
        if party_id in work.writers:
            out.append(f"writer of {work.title}")
    return out


@dataclass(frozen=True)
class EligibilityRow:
    """One recording and the policy's decision for each use.

    Attributes:
        recording: the recording.
        decisions: use → decision (train, generate, remix).
        roles: how the viewer stands on it.
        artists: artist names.
    """

    recording: Recording
    decisions: dict[str, Decision]
    roles: tuple[str, ...]
    artists: tuple[str, ...]


def eligibility(
    catalog: Catalog, recordings: Iterable[Recording], at: datetime, territory: str, party_id: str
) -> list[EligibilityRow]:
    policy = LicensingPolicy(catalog)
    rows = []
    for rec in recordings:
        decisions = {u.value: policy.decide(rec.isrc, u, at, territory) for u in USES}
        artists = tuple(catalog.parties[a].name if a in catalog.parties else a for a in rec.artists)
        rows.append(EligibilityRow(rec, decisions, tuple(roles_of(catalog, rec, party_id)), artists))
    return rows


# ---------------------------------------------------------------- models, taint, proofs


@functools.lru_cache(maxsize=16)
def manifest_of(store: Store, root: str) -> Manifest:
    """A stored manifest (immutable once written, so read once per process and store)."""
    return repository.load_manifest(store, root)[0]


@dataclass(frozen=True)
class ModelView:
    """A model as one party sees it.

    Attributes:
        model: its record.
        status: whether it may serve now, and why not.
        mine: the viewer's items in its manifest (all items for the operator).
        flags: flags of the audit on those items.
        manifest_items: items in its manifest.
    """

    model: ModelRecord
    status: ModelStatus
    mine: tuple[str, ...]
    flags: tuple[Flag, ...]
    manifest_items: int

    @property
    def flagged(self) -> bool:
        return bool(self.flags) or bool(self.status.blocked_uses)


def models_for(store: Store, principal: Principal, at: datetime) -> list[ModelView]:
    """The models the principal may see (:func:`accord.api.services.visible_models`), with the
    flags of the audit on its own items (every item for the operator)."""
    visible = services.visible_models(store, principal, at)
    report = service.audit(store, at, roots=sorted({v.record.manifest_root for v in visible})) if visible else None
    audits = {a.root: a for a in report.manifests} if report else {}
    out = []
    for view in visible:
        manifest = manifest_of(store, view.record.manifest_root)
        mine = tuple(i.isrc for i in manifest.items if principal.is_operator or principal.party_id in i.standing)
        audit = audits.get(view.record.manifest_root)
        flags = tuple(f for f in (audit.flags if audit else ()) if f.isrc in set(mine))
        out.append(ModelView(view.record, view.status, mine, flags, len(manifest.items)))
    return out


def model_for(store: Store, principal: Principal, model_id: str, at: datetime) -> ModelView:
    found = next((m for m in models_for(store, principal, at) if m.model.model_id == model_id), None)
    if found is None:
        msg = f"model {model_id!r}: not found"
        raise NotFound(msg)
    return found


def proofs_zip(store: Store, model: ModelRecord, party_id: str) -> bytes:
    # the caller has checked (model_for) that the party may see this model
    """A zip of the party's inclusion and non-inclusion proofs for a model's manifest, with index.json."""
    manifest, record = repository.load_manifest(store, model.manifest_root)
    isrcs = party_recordings(store.snapshot(), manifest, party_id)
    buf = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        write_proofs(manifest, record.signature, isrcs, Path(tmp))
        for path in sorted(Path(tmp).iterdir()):
            zf.write(path, f"{party_id}-{manifest.root[:12]}/{path.name}")
    return buf.getvalue()


# ---------------------------------------------------------------- outputs and attribution


@dataclass(frozen=True)
class Credit:
    """One attribution entry of an output's credential.

    Attributes:
        isrc: the recording credited, or ``""``.
        work_id: the work credited, or ``""``.
        party_id: the rights holder credited, or ``""``.
        side: master or publishing, or ``""``.
        weight: its weight (0..1).
        title: what to call it.
    """

    isrc: str
    work_id: str
    party_id: str
    side: str
    weight: float
    title: str


def _weight(entry: Mapping[str, Any]) -> float:
    for key in ("weight", "share", "score"):
        if isinstance(entry.get(key), int | float):
            return float(entry[key])
    if isinstance(entry.get("share_ppm"), int):
        return entry["share_ppm"] / 1_000_000
    return 0.0


def credits_of(credential: Mapping[str, Any]) -> list[Credit]:
    """Every entry of a credential's attribution that names a recording, a work or a party."""
    found: list[Credit] = []

    def walk(node: Any, side: str) -> None:
        if isinstance(node, Mapping):
            side = str(node.get("side", side)) if node.get("side") in ("master", "publishing") else side
            isrc, work, party = node.get("isrc"), node.get("work_id") or node.get("work"), node.get("party_id")
            if any(isinstance(v, str) and v for v in (isrc, work, party)):
                found.append(
                    Credit(
                        str(isrc or ""),
                        str(work or ""),
                        str(party or node.get("party") or ""),
                        side,
                        _weight(node),
                        str(node.get("title", "")),
                    )
                )
            for key, value in node.items():
                walk(value, key if key in ("master", "publishing") else side)
        elif isinstance(node, list | tuple):
            for value in node:
                walk(value, side)

    walk(credential.get("attribution", {}), "")
    return found


def attribution_status(credential: Mapping[str, Any]) -> str:
    att = credential.get("attribution") or {}
    return str(att.get("status", "computed" if att else "absent")) if isinstance(att, Mapping) else "computed"


def outputs_for(store: Store, catalog: Catalog, principal: Principal) -> list[tuple[Output, list[Credit]]]:
    """Outputs the principal may see (:func:`accord.api.services.visible_outputs`) with the credits
    of its own recordings, works or itself (every credit for the operator and the creator)."""
    found = services.visible_outputs(store, principal)
    return [(o, own_credits(catalog, principal, o)) for o in found]


def own_credits(catalog: Catalog, principal: Principal, output: Output) -> list[Credit]:
    credits = credits_of(output.credential)
    if principal.role is not Role.RIGHTS_HOLDER:
        return credits
    isrcs = {r.isrc for r in my_recordings(catalog, principal)}
    works = {w for isrc in isrcs for w in catalog.recordings[isrc].works}
    return [c for c in credits if c.isrc in isrcs or c.work_id in works or c.party_id == principal.party_id]


def guard_of(credential: Mapping[str, Any]) -> dict[str, Any]:
    guard = credential.get("guard") or {}
    return dict(guard) if isinstance(guard, Mapping) else {"status": str(guard)}


def pretty(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str)
