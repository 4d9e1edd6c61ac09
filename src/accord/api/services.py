"""What each principal may see and do, over the domain functions: the API's (and portal's) rules.

The rule everywhere: a rights holder sees what it has standing on (recordings it owns, performs,
wrote or publishes; agreements it granted; its opt-outs, proofs and statements), a creator sees
its own outputs and usage, an operator sees everything. Another party's object is
:class:`NotFound`, worded exactly like a missing one, so that its existence does not leak.
Operations a role may never do are :class:`Forbidden` (403) before any object is looked up.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from accord import visibility
from accord.api.auth import Principal, Role
from accord.api.pagination import decode_cursor, encode_cursor
from accord.datasets import repository, service, taint
from accord.datasets.disclosure import Undisclosed
from accord.datasets.manifest import Manifest
from accord.datasets.proofs import make_proof, party_recordings
from accord.datasets.repository import ManifestRecord, ModelRecord
from accord.datasets.taint import ModelStatus
from accord.errors import Forbidden, NotFound, ValidationError
from accord.licensing import Decision, LicensingPolicy
from accord.outputs import store as outputs
from accord.registry import consent, decisions, reads
from accord.registry.entities import GRANTABLE_USES, Agreement, Catalog, OptOut, Recording, Use
from accord.registry.schema import Base
from accord.registry.store import Store
from accord.signing import OperatorKey

USES = sorted(GRANTABLE_USES)


def require(principal: Principal, *roles: Role) -> None:
    """403 unless the principal has one of ``roles``."""
    if principal.role not in roles:
        need = " or ".join(r.value for r in roles)
        msg = f"role: {principal.role.value} may not do this; needs {need}"
        raise Forbidden(msg)


def actor(principal: Principal) -> str:
    """How the registry's own history names an API caller."""
    return f"api:{principal.role.value}:{principal.party_id}"[:64]


def _missing(kind: str, key: str) -> NotFound:
    return NotFound(f"{kind} {key!r}: not found")


# ---------------------------------------------------------------- catalog

_CURRENT: weakref.WeakKeyDictionary[Store, tuple[int, Catalog]] = weakref.WeakKeyDictionary()
"""The registry as it stands now, per store, with the registry audit log's last event id when read."""


def _registry_stamp(store: Store) -> int:
    """The id of the registry's last audit event: every change to the registry writes one (store.apply)."""
    t = Base.metadata.tables["audit_events"]
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.max(t.c.pk))).scalar() or 0)


def current_catalog(store: Store) -> Catalog:
    """The whole registry now, read again only when it has changed since the last read.

    A full snapshot of 1,000 recordings takes ~100 ms; the stamp query well under 1 ms. What is
    current only changes by a write, and every write records an audit event in its transaction,
    so the last event id identifies what is current.
    """
    stamp = _registry_stamp(store)
    cached = _CURRENT.get(store)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    catalog = store.snapshot()
    if _registry_stamp(store) == stamp:  # nothing was written while it was read
        _CURRENT[store] = (stamp, catalog)
    return catalog


_PARTIES: weakref.WeakKeyDictionary[Store, tuple[int, Catalog]] = weakref.WeakKeyDictionary()
"""Per store: the registry's parties, agreements and opt-outs (no recording), with the registry counter."""


def registry_parties(store: Store, stamp: int) -> Catalog:
    """The registry now without its recordings and works: its parties, agreements and opt-outs, what
    :mod:`accord.visibility` needs to name (or not name) parties in a view. Read again only when the
    registry counter (``stamp``, read by the caller before) moves."""
    cached = _PARTIES.get(store)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    catalog = store.snapshot(isrcs=())
    if cached is None or cached[0] < stamp:
        _PARTIES[store] = (stamp, catalog)
    return catalog


def visible_recordings(catalog: Catalog, principal: Principal) -> list[Recording]:
    require(principal, Role.RIGHTS_HOLDER, Role.OPERATOR)
    recs = catalog.recordings.values()
    return [r for r in recs if visibility.may_see_recording(principal, catalog, r)]


def recording_for(catalog: Catalog, principal: Principal, isrc: str) -> Recording:
    require(principal, Role.RIGHTS_HOLDER, Role.OPERATOR)
    rec = catalog.recordings.get(isrc.upper().replace("-", ""))
    if rec is None or not visibility.may_see_recording(principal, catalog, rec):
        raise _missing("recording", isrc)
    return rec


def eligibility(catalog: Catalog, isrcs: Iterable[str], at: datetime, territory: str) -> dict[str, dict[Use, Decision]]:
    """Each recording's decision for every grantable use (one policy index for them all)."""
    policy = LicensingPolicy(catalog)
    return {isrc: {use: policy.decide(isrc, use, at, territory) for use in USES} for isrc in isrcs}


def recordings_page(
    store: Store, principal: Principal, cursor: str | None, limit: int
) -> tuple[list[Recording], str | None]:
    """One keyset page (by ISRC, after ``cursor``) of the recordings now that the principal may see,
    and the next page's cursor: reads those recordings and their works only (:mod:`accord.registry.reads`)."""
    require(principal, Role.RIGHTS_HOLDER, Role.OPERATOR)
    after = decode_cursor(cursor) if cursor else None
    batch = limit + 1 if principal.is_operator else max(limit + 1, 500)  # a rights holder's are sparser
    page: list[Recording] = []
    while len(page) <= limit:
        catalog = reads.recordings_after(store, after, batch)
        recs = sorted(catalog.recordings.values(), key=lambda r: r.isrc)  # keyset order: by ISRC
        page += [r for r in recs if visibility.may_see_recording(principal, catalog, r)]
        if len(recs) < batch:
            break
        after = recs[-1].isrc
    more = len(page) > limit
    page = page[:limit]
    return page, (encode_cursor(page[-1].isrc) if more and page else None)


def recording_now(store: Store, principal: Principal, isrc: str) -> Recording:
    """One recording now that the principal may see (reading it and its works only); else :class:`NotFound`."""
    require(principal, Role.RIGHTS_HOLDER, Role.OPERATOR)
    catalog = reads.recording(store, isrc.upper().replace("-", ""))
    return recording_for(catalog, principal, isrc)


def eligibility_now(store: Store, isrcs: list[str], at: datetime, territory: str) -> dict[str, dict[Use, Decision]]:
    """Each recording's decision for every grantable use over the registry now, from the materialised
    decisions (:mod:`accord.registry.decisions`; equal to :func:`eligibility` over a fresh snapshot)."""
    return decisions.decisions_for(store, isrcs, at, territory)


def eligibility_with_spans(
    store: Store, isrcs: list[str], at: datetime, territory: str, stamp: int
) -> tuple[dict[str, dict[Use, Decision]], dict[str, decisions.Span]]:
    """:func:`eligibility_now`, with the span of instants around ``at`` over which each stays the same."""
    return decisions.decisions_with_spans(store, isrcs, at, territory, stamp=stamp)


def catalog_summary(catalog: Catalog, principal: Principal) -> dict[str, Any]:
    """What the registry holds that the principal may see: counts, by master owner and by genre."""
    recs = visible_recordings(catalog, principal)
    owners: dict[str, int] = {}
    genres: dict[str, int] = {}
    for rec in recs:
        genres[rec.genre or "-"] = genres.get(rec.genre or "-", 0) + 1
        for share in rec.shares:
            if share.ppm and principal.owns(share.party_id):
                owners[share.party_id] = owners.get(share.party_id, 0) + 1
    return {
        "recordings": len(recs),
        "agreements": len(visible_agreements(catalog, principal)),
        "optouts": len(visible_optouts(catalog, principal)),
        "recordings_by_master_owner": dict(sorted(owners.items())),
        "recordings_by_genre": dict(sorted(genres.items())),
    }


def decide(catalog: Catalog, isrc: str, use: Use | str, at: datetime, territory: str) -> Decision:
    """The recording's decision for one use."""
    return LicensingPolicy(catalog).decide(isrc, use, at, territory)


def visible_deliveries(store: Store, principal: Principal) -> list[dict[str, Any]]:
    require(principal, Role.RIGHTS_HOLDER, Role.OPERATOR)
    return [d for d in store.deliveries() if visibility.may_see_delivery(principal, d["sender"])]


def as_party(principal: Principal) -> str | None:
    """Whose standing a principal's writes need (:mod:`accord.registry.standing`): its own party,
    or ``None`` for the operator's full power."""
    return None if principal.is_operator else principal.party_id


# ---------------------------------------------------------------- agreements and opt-outs


def visible_agreements(catalog: Catalog, principal: Principal) -> list[Agreement]:
    require(principal, Role.RIGHTS_HOLDER, Role.OPERATOR)
    return [a for a in catalog.agreements.values() if visibility.may_see_agreement(principal, a)]


def agreement_for(catalog: Catalog, principal: Principal, agreement_id: str) -> Agreement:
    require(principal, Role.RIGHTS_HOLDER, Role.OPERATOR)
    a = catalog.agreements.get(agreement_id)
    if a is None or not visibility.may_see_agreement(principal, a):
        raise _missing("agreement", agreement_id)
    return a


def grant_agreement(store: Store, principal: Principal, data: dict[str, Any]) -> tuple[Agreement, bool]:
    """Record a licence (in the delivery format); a rights holder grants only as licensor itself."""
    require(principal, Role.RIGHTS_HOLDER, Role.OPERATOR)
    return consent.grant_agreement(store, data, actor=actor(principal), as_party=as_party(principal))


def end_agreement(store: Store, principal: Principal, agreement_id: str, at: datetime) -> Agreement:
    """End an agreement (a rights holder: one it granted; another's answers as a missing one)."""
    require(principal, Role.RIGHTS_HOLDER, Role.OPERATOR)
    return consent.end_agreement(store, agreement_id, at, actor=actor(principal), as_party=as_party(principal))


def visible_optouts(catalog: Catalog, principal: Principal) -> list[OptOut]:
    require(principal, Role.RIGHTS_HOLDER, Role.OPERATOR)
    return [o for o in catalog.optouts.values() if visibility.may_see_optout(principal, o)]


def optout_for(catalog: Catalog, principal: Principal, optout_id: str) -> OptOut:
    require(principal, Role.RIGHTS_HOLDER, Role.OPERATOR)
    o = catalog.optouts.get(optout_id)
    if o is None or not visibility.may_see_optout(principal, o):
        raise _missing("opt-out", optout_id)
    return o


def _stopped_models(store: Store, principal: Principal, at: datetime) -> list[ModelStatus]:
    """The flagged models that stop some use now, of those the principal may see (a rights holder:
    models whose manifest holds its items; never another party's)."""
    report = service.audit(store, at)
    flagged_roots = {m.root for m in report.manifests if m.flags}
    if not principal.is_operator:
        flagged_roots &= {r.root for r in visible_manifests(store, principal)}
    return [m for m in report.models if m.manifest_root in flagged_roots and m.blocked_uses]


def create_optout(
    store: Store, principal: Principal, data: dict[str, Any], optout_id: str | None
) -> tuple[OptOut, list[ModelStatus]]:
    """Record an opt-out (a rights holder only as itself); the models it may see that now stop, with why."""
    require(principal, Role.RIGHTS_HOLDER, Role.OPERATOR)
    optout = consent.record_optout(
        store, data, optout_id=optout_id, actor=actor(principal), as_party=as_party(principal)
    )
    return optout, _stopped_models(store, principal, max(store.clock(), optout.effective))


def opt_out_artist(
    store: Store, principal: Principal, party: str, artist: str, effective: datetime
) -> tuple[list[OptOut], list[ModelStatus]]:
    """Opt out everything of the party's catalog an artist performs, in one write (a rights holder
    only as itself); the models it may see that now stop."""
    require(principal, Role.RIGHTS_HOLDER, Role.OPERATOR)
    made = consent.opt_out_artist(store, party, artist, effective, actor=actor(principal), as_party=as_party(principal))
    return made, _stopped_models(store, principal, max(store.clock(), effective))


# ---------------------------------------------------------------- manifests, proofs, models


def visible_manifests(store: Store, principal: Principal) -> list[ManifestRecord]:
    """Operator: every manifest; rights holder: those holding an item it has standing on."""
    require(principal, Role.RIGHTS_HOLDER, Role.OPERATOR)
    records = repository.list_manifests(store)
    if principal.is_operator:
        return records
    return [r for r in records if visibility.may_see_manifest(principal, repository.load_manifest(store, r.root)[0])]


def manifest_for(store: Store, principal: Principal, root: str) -> tuple[Manifest, ManifestRecord]:
    require(principal, Role.RIGHTS_HOLDER, Role.OPERATOR)
    try:
        manifest, record = repository.load_manifest(store, root)
    except (NotFound, ValidationError):
        raise _missing("manifest", root) from None
    if not visibility.may_see_manifest(principal, manifest):
        raise _missing("manifest", root)
    return manifest, record


def proofs_for(
    store: Store, principal: Principal, root: str, party: str | None, key: OperatorKey
) -> list[dict[str, Any]]:
    """Inclusion or exclusion proofs for every recording a party has standing on (a rights holder: itself)."""
    manifest, _ = manifest_for(store, principal, root)
    who = party if principal.is_operator and party else principal.party_id
    if principal.is_operator and not party:
        raise ValidationError("party: required for an operator; name the rights holder", field="party")
    tree, catalog = manifest.tree(), store.snapshot()
    hide = Undisclosed.to_viewer(catalog, who)
    return [make_proof(manifest, tree, key, i, undisclosed=hide) for i in party_recordings(catalog, manifest, who)]


def proof_for(store: Store, principal: Principal, root: str, isrc: str, key: OperatorKey) -> dict[str, Any]:
    """One recording's proof, signed by the operator ``key`` (a rights holder: one it has standing on)."""
    manifest, _ = manifest_for(store, principal, root)
    catalog = store.snapshot()
    code = isrc.upper().replace("-", "")
    if not principal.is_operator and code not in party_recordings(catalog, manifest, principal.party_id):
        raise _missing("recording", isrc)
    if code not in catalog.recordings and code not in {i.isrc for i in manifest.items}:
        raise _missing("recording", isrc)
    hide = None if principal.is_operator else Undisclosed.to_viewer(catalog, principal.party_id)
    return make_proof(manifest, manifest.tree(), key, code, undisclosed=hide)


@dataclass(frozen=True)
class ModelView:
    """A model with its status now.

    Attributes:
        record: the registered model.
        status: whether it may serve, and why not.
    """

    record: ModelRecord
    status: ModelStatus


def model_shown(
    store: Store, principal: Principal, read: Callable[[str], Manifest] | None = None
) -> Callable[[ModelRecord], bool]:
    """Whether ``principal`` may see a model, by :func:`accord.visibility.may_see_model` (the one rule
    the API, the portal and the CLI apply), each manifest read at most once and only when it decides;
    ``read`` (root → manifest) lets a caller that reads the manifests anyway share its reads."""
    decided: dict[str, bool] = {}
    load = read or (lambda root: repository.load_manifest(store, root)[0])

    def shown(model: ModelRecord) -> bool:
        root = model.manifest_root
        if root not in decided:
            decided[root] = visibility.may_see_model(principal, lambda: load(root))
        return decided[root]

    return shown


def visible_models(store: Store, principal: Principal, at: datetime) -> list[ModelView]:
    """The models ``principal`` may see (:func:`model_shown`), with their status now."""
    stored = taint.current_statuses(store, at, lambda: service.audit(store, at).models)
    statuses = {s.model_id: s for s in stored}
    shown = model_shown(store, principal)
    return [
        ModelView(m, statuses[m.model_id]) for m in repository.list_models(store) if m.model_id in statuses and shown(m)
    ]


def model_for(store: Store, principal: Principal, model_id: str, at: datetime) -> ModelView:
    found = next((v for v in visible_models(store, principal, at) if v.record.model_id == model_id), None)
    if found is None:
        raise _missing("model", model_id)
    return found


def approve_model(
    store: Store, principal: Principal, model_id: str, licensor: str | None, approve: bool, note: str
) -> repository.Approval:
    require(principal, Role.RIGHTS_HOLDER, Role.OPERATOR)
    model_for(store, principal, model_id, store.clock())
    who = licensor if principal.is_operator and licensor else principal.party_id
    approval, _ = repository.record_approval(store, model_id, who, approve=approve, by=actor(principal), note=note)
    return approval


# ---------------------------------------------------------------- outputs

_CREATORS: weakref.WeakKeyDictionary[Store, set[str]] = weakref.WeakKeyDictionary()
"""Per store: creators known to exist (a creator is never removed; a plan change keeps the id)."""


def known_creator(store: Store, creator_id: str) -> None:
    """:class:`NotFound` unless the creator is registered (looked up once per process, then remembered)."""
    known = _CREATORS.setdefault(store, set())
    if creator_id not in known:
        outputs.get_creator(store, creator_id)
        known.add(creator_id)


def visible_outputs(store: Store, principal: Principal) -> list[outputs.Output]:
    """A creator's own outputs; those attributed to a rights holder (:func:`accord.visibility.may_see_output`);
    every output (operator)."""
    if principal.role is Role.CREATOR:
        return outputs.list_outputs(store, creator_id=principal.party_id)
    return visibility.visible_outputs(principal, outputs.list_outputs(store), current_catalog(store))


def output_for(store: Store, principal: Principal, output_id: str) -> outputs.Output:
    """One output the principal may see; another party's answers exactly like a missing one."""
    try:
        output = outputs.get_output(store, output_id)
    except NotFound:
        raise _missing("output", output_id) from None
    if not visibility.may_see_output(principal, output, current_catalog(store)):
        raise _missing("output", output_id)
    return output


def visible_usage(store: Store, principal: Principal) -> list[dict[str, Any]]:
    require(principal, Role.CREATOR, Role.OPERATOR)
    return [e for e in outputs.events(store) if visibility.may_see_usage(principal, e)]


def registry_log(store: Store, principal: Principal, *, before: int | None, limit: int) -> list[dict[str, Any]]:
    """The registry's own log of changes to rights (``accord log``), newest first, before an event id (operator)."""
    require(principal, Role.OPERATOR)
    t = Base.metadata.tables["audit_events"]
    q = select(t).order_by(t.c.pk.desc()).limit(limit)
    if before is not None:
        q = q.where(t.c.pk < before)
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]
