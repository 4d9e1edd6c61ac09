"""Taint tracking: which manifests and models hold items that are no longer eligible, and why.

An item can only stop being eligible because something changed after its manifest was
built: a registry record got a new version (an agreement ended or was narrowed, an
opt-out arrived, ownership changed), or time passed an agreement's end or an opt-out's
effective date. So the audit does not re-decide every item of every manifest: it
collects what changed since each manifest's ``as_of``, finds the items those changes
touch through a party → items index, and asks the policy again about those alone.

A model is flagged through its manifest. Flags for ``train`` mean the model holds
training on an item whose training licence no longer holds: it must be retrained and
serves nothing until then. Flags for ``generate`` stop generation (and remix). A model
whose manifest relies on an agreement that requires per-version approval serves only
once every such licensor has approved that version; a refusal blocks it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError

from accord.datasets.manifest import Manifest
from accord.licensing import LicensingPolicy
from accord.registry import counters
from accord.registry.entities import Catalog, ModelScope, Use
from accord.registry.schema import Base
from accord.registry.store import Store
from accord.timeutil import iso

AUDITED_USES = (Use.TRAIN, Use.GENERATE)
SERVING_USES = frozenset({Use.GENERATE, Use.REMIX})


@dataclass(frozen=True)
class Flag:
    """One item of a manifest that is no longer eligible for one use.

    Attributes:
        isrc: the item.
        use: the use it lost.
        since: when it stopped being eligible (``None`` when it cannot be told).
        reasons: the policy's reasons, as dicts.
    """

    isrc: str
    use: Use
    since: datetime | None
    reasons: tuple[Mapping[str, str], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "isrc": self.isrc,
            "use": self.use.value,
            "since": iso(self.since),
            "reasons": [dict(r) for r in self.reasons],
        }


@dataclass(frozen=True)
class ManifestAudit:
    """The audit of one manifest.

    Attributes:
        root: the manifest.
        as_of: when it was built.
        flags: items no longer eligible, per use, sorted by (ISRC, use).
        rechecked: how many items the changes touched (and were asked about again).
        models: models trained on it.
    """

    root: str
    as_of: datetime
    flags: tuple[Flag, ...]
    rechecked: int
    models: tuple[str, ...] = ()

    @property
    def flagged_uses(self) -> frozenset[Use]:
        return frozenset(f.use for f in self.flags)

    def to_dict(self) -> dict[str, Any]:
        return {
            "manifest": self.root,
            "as_of": iso(self.as_of),
            "rechecked": self.rechecked,
            "models": list(self.models),
            "flags": [f.to_dict() for f in self.flags],
        }


@dataclass(frozen=True)
class ModelStatus:
    """Whether a model may serve, and if not, why.

    Attributes:
        model_id: the model.
        manifest_root: its manifest.
        blocked_uses: uses it must not serve now.
        reasons: why, in words.
        pending_approvals: licensors whose approval of this version is still missing.
        refused_by: licensors who refused this version.
    """

    model_id: str
    manifest_root: str
    blocked_uses: frozenset[Use] = frozenset()
    reasons: tuple[str, ...] = ()
    pending_approvals: tuple[str, ...] = ()
    refused_by: tuple[str, ...] = ()

    def can_serve(self, use: Use | str) -> bool:
        return Use(use) not in self.blocked_uses

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_id,
            "manifest": self.manifest_root,
            "blocked_uses": sorted(u.value for u in self.blocked_uses),
            "reasons": list(self.reasons),
            "pending_approvals": list(self.pending_approvals),
            "refused_by": list(self.refused_by),
        }


@dataclass(frozen=True)
class Changes:
    """What changed in the registry after an instant.

    Attributes:
        keys: keys per kind (``recordings``, ``works``, ``agreements``, ``optouts`` ...) with a
            version recorded after the instant.
        recorded_at: when the current version of each changed key was recorded, per kind.
    """

    keys: Mapping[str, set[str]] = field(default_factory=dict)
    recorded_at: Mapping[str, Mapping[str, datetime]] = field(default_factory=dict)


def touched_items(manifest: Manifest, catalog: Catalog, changes: Changes, at: datetime) -> list[int]:
    """Indices of the manifest's items that a change since its ``as_of`` may have affected.

    Reads only the catalog's agreements and opt-outs: each item names every party with
    standing on it, so no recording needs loading to know whom a change concerns.
    """
    since = manifest.header.as_of
    parties: set[str] = set()
    works: set[str] = set(changes.keys.get("works", ()))
    isrcs: set[str] = set(changes.keys.get("recordings", ()))
    for aid, a in catalog.agreements.items():
        if aid in changes.keys.get("agreements", ()) or (a.end is not None and since < a.end <= at):
            parties.add(a.licensor)
    for oid, o in catalog.optouts.items():
        if oid in changes.keys.get("optouts", ()) or since < o.effective <= at:
            parties.add(o.party_id)
    if not (parties or works or isrcs):
        return []
    return [
        i
        for i, item in enumerate(manifest.items)
        if item.isrc in isrcs or works.intersection(item.works) or parties.intersection(item.standing)
    ]


def _since(
    reason: Mapping[str, str], catalog: Catalog, changes: Changes, isrc: str, use: Use, at: datetime
) -> datetime | None:
    code, aid = reason.get("code", ""), reason.get("agreement_id", "")
    if code == "opted_out":
        found = [
            o.effective
            for o in catalog.optouts.values()
            if o.party_id == reason.get("party_id") and use in o.uses and o.effective <= at
        ]
        return min(found) if found else None
    if code == "agreement_expired" and aid in catalog.agreements:
        return catalog.agreements[aid].end
    if aid:
        return changes.recorded_at.get("agreements", {}).get(aid)
    subject = reason.get("subject", "")
    for kind in ("recordings", "works"):
        when = changes.recorded_at.get(kind, {}).get(subject)
        if when is not None:
            return when
    return changes.recorded_at.get("recordings", {}).get(isrc)


def audit_manifest(
    manifest: Manifest,
    rights: Catalog,
    changes: Changes,
    at: datetime,
    *,
    now: Callable[[list[str]], Catalog],
    then: Callable[[list[str]], Catalog],
    models: Iterable[str] = (),
) -> ManifestAudit:
    """Flags for one manifest: items touched by changes, asked about again at ``at``.

    ``rights`` needs only agreements and opt-outs (to find the touched items); ``now(isrcs)``
    and ``then(isrcs)`` give the registry for those recordings at ``at`` and as of the
    manifest's ``as_of`` (``then`` only if needed: a use other than the manifest's own is
    flagged only if the item *was* eligible for it then).
    """
    touched = touched_items(manifest, rights, changes, at)
    if not touched:
        return ManifestAudit(manifest.root, manifest.header.as_of, (), 0, tuple(models))
    isrcs = [manifest.items[i].isrc for i in touched]
    catalog = now(isrcs)
    policy = LicensingPolicy(catalog)
    then_policy: LicensingPolicy | None = None
    territory = manifest.header.territory
    flags: list[Flag] = []
    for i in touched:
        item = manifest.items[i]
        for use in AUDITED_USES:
            now = policy.decide(item.isrc, use, at, territory)
            if now.eligible:
                continue
            if use is not manifest.header.use:
                then_policy = then_policy or LicensingPolicy(then(isrcs))
                if not then_policy.decide(item.isrc, use, manifest.header.as_of, territory).eligible:
                    continue  # it never had this use: not a change, not a flag
            reasons = tuple(r.to_dict() for r in now.reasons)
            whens = [w for w in (_since(r, catalog, changes, item.isrc, use, at) for r in reasons) if w is not None]
            flags.append(Flag(item.isrc, use, min(whens) if whens else None, reasons))
    return ManifestAudit(manifest.root, manifest.header.as_of, tuple(flags), len(touched), tuple(models))


def model_status(
    model_id: str,
    manifest: Manifest,
    audit: ManifestAudit,
    catalog: Catalog,
    decisions: Mapping[str, str],
) -> ModelStatus:
    """Whether a model may serve: no taint, and every required per-version approval given.

    ``decisions`` maps licensor → latest decision on this model (``approved`` / ``refused``).
    """
    blocked: set[Use] = set()
    reasons: list[str] = []
    uses = audit.flagged_uses
    if Use.TRAIN in uses:
        n = sum(1 for f in audit.flags if f.use is Use.TRAIN)
        blocked |= {Use.TRAIN} | SERVING_USES
        reasons.append(f"{n} item(s) of its manifest are no longer licensed for training: retrain without them")
    if Use.GENERATE in uses:
        n = sum(1 for f in audit.flags if f.use is Use.GENERATE)
        blocked |= SERVING_USES
        reasons.append(f"{n} item(s) of its manifest are no longer licensed for generation")
    needs: dict[str, set[str]] = defaultdict(set)
    for item in manifest.items:
        for aid in item.agreements:
            agreement = catalog.agreements.get(aid)
            if agreement is not None and agreement.model_scope is ModelScope.APPROVED_VERSIONS:
                needs[agreement.licensor].add(aid)
    pending = sorted(p for p in needs if decisions.get(p) is None)
    refused = sorted(p for p in needs if decisions.get(p) == "refused")
    if pending:
        blocked |= {Use.TRAIN} | SERVING_USES
        reasons.append("awaiting per-version approval by " + ", ".join(pending))
    if refused:
        blocked |= {Use.TRAIN} | SERVING_USES
        reasons.append("this version was refused by " + ", ".join(refused))
    return ModelStatus(model_id, manifest.root, frozenset(blocked), tuple(reasons), tuple(pending), tuple(refused))


# ---------------------------------------------------------------- the stored taint state

STATE_NAME = "models"


def status_of_dict(data: Mapping[str, Any]) -> ModelStatus:
    """A :class:`ModelStatus` back from its :meth:`ModelStatus.to_dict`."""
    return ModelStatus(
        model_id=data["model"],
        manifest_root=data["manifest"],
        blocked_uses=frozenset(Use(u) for u in data["blocked_uses"]),
        reasons=tuple(data["reasons"]),
        pending_approvals=tuple(data["pending_approvals"]),
        refused_by=tuple(data["refused_by"]),
    )


def _until(rights: Catalog, at: datetime) -> datetime | None:
    """The next instant after ``at`` at which any agreement starts or ends or any opt-out takes effect."""
    times = [a.start for a in rights.agreements.values()]
    times += [a.end for a in rights.agreements.values() if a.end is not None]
    times += [o.effective for o in rights.optouts.values()]
    later = [t for t in times if t > at]
    return min(later) if later else None


def current_statuses(store: Store, at: datetime, audit: Callable[[], Iterable[ModelStatus]]) -> list[ModelStatus]:
    """Every model's status at ``at``: the stored state when it still holds, else ``audit()`` run and stored.

    The state is keyed by the registry and models counters (:mod:`accord.registry.counters`: any
    registry change, new manifest, model or approval makes it stale) and holds from the instant it
    was audited at until the next instant an agreement starts or ends or an opt-out takes effect;
    an instant earlier than the one audited is audited afresh.
    """
    table = Base.metadata.tables["taint_states"]
    with store.engine.connect() as conn:
        seen = counters.read(conn)  # before what is derived from it
        row = conn.execute(select(table).where(table.c.name == STATE_NAME)).mappings().first()
    stamp = f"{seen['registry']}:{seen['models']}"
    if (
        row is not None
        and row["stamp"] == stamp
        and (row["valid_from"] is None or row["valid_from"] <= at)
        and (row["valid_until"] is None or at < row["valid_until"])
    ):
        return [status_of_dict(s) for s in row["state"]["models"]]
    statuses = list(audit())
    until = _until(store.snapshot(at, isrcs=()), at)
    values = {
        "name": STATE_NAME,
        "stamp": stamp,
        "valid_from": at,
        "valid_until": until,
        "state": {"models": [s.to_dict() for s in statuses]},
    }
    try:
        with store.engine.begin() as conn:
            conn.execute(delete(table).where(table.c.name == STATE_NAME))
            conn.execute(insert(table).values(**values))
    except (IntegrityError, OperationalError):  # a unique clash or a busy SQLite: storing is only a saving
        pass  # another process stored it meanwhile
    return statuses
