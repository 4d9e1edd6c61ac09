"""What the portal's pages show, assembled from the domain functions (no SQL, no rules here).

Each function answers one question a page asks, already narrowed to what the signed-in
party may see: a rights holder's recordings are those it has standing on (owner of any
share, artist, writer or publisher of an embodied work, as the licensing policy counts
them); its models are those whose manifest holds one of its items; its outputs are those
attributed to it. Every such rule is :mod:`accord.visibility`'s, the same the API and the CLI apply.
"""

from __future__ import annotations

import functools
import io
import json
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from accord import visibility
from accord.api import services
from accord.api.auth import Principal
from accord.datasets import repository, service
from accord.datasets.disclosure import Undisclosed
from accord.datasets.manifest import Manifest
from accord.datasets.proofs import party_recordings, write_proofs
from accord.datasets.repository import ModelRecord
from accord.datasets.taint import Flag, ModelStatus
from accord.errors import NotFound
from accord.licensing import Decision, LicensingPolicy
from accord.outputs.store import Output
from accord.registry.entities import GRANTABLE_USES, Catalog, Recording
from accord.registry.store import Store
from accord.signing import OperatorKey

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
        artists: artist names (an undisclosed one, not the viewer, as "undisclosed party").
    """

    recording: Recording
    decisions: dict[str, Decision]
    roles: tuple[str, ...]
    artists: tuple[str, ...]


def eligibility(
    catalog: Catalog, recordings: Iterable[Recording], at: datetime, territory: str, party_id: str
) -> list[EligibilityRow]:
    policy = LicensingPolicy(catalog)
    viewer = visibility.Party(party_id)
    rows = []
    for rec in recordings:
        decisions = {
            u.value: visibility.redacted_decision(catalog, viewer, policy.decide(rec.isrc, u, at, territory))
            for u in USES
        }
        artists = tuple(visibility.shown_name(catalog, viewer, a) for a in rec.artists)
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
    """The models the principal may see (:func:`accord.api.services.model_shown`, the API's rule), with
    their status and the flags on its own items, from one audit."""
    manifests: dict[str, Manifest] = {}  # each read once, for the rule and for the view

    def read(root: str) -> Manifest:
        if root not in manifests:
            manifests[root] = manifest_of(store, root)
        return manifests[root]

    shown = services.model_shown(store, principal, read)
    report = service.audit(store, at)
    statuses = {s.model_id: s for s in report.models}
    audits = {a.root: a for a in report.manifests}
    out = []
    for model in repository.list_models(store):
        if model.model_id not in statuses or not shown(model):
            continue
        manifest = read(model.manifest_root)
        mine = tuple(i.isrc for i in manifest.items if principal.is_operator or principal.party_id in i.standing)
        audit = audits.get(model.manifest_root)
        flags = tuple(f for f in (audit.flags if audit else ()) if f.isrc in set(mine))
        out.append(ModelView(model, statuses[model.model_id], mine, flags, len(manifest.items)))
    return out


def model_for(store: Store, principal: Principal, model_id: str, at: datetime) -> ModelView:
    found = next((m for m in models_for(store, principal, at) if m.model.model_id == model_id), None)
    if found is None:
        msg = f"model {model_id!r}: not found"
        raise NotFound(msg)
    return found


def proofs_zip(store: Store, model: ModelRecord, party_id: str, key: OperatorKey) -> bytes:
    # the caller has checked (model_for) that the party may see this model
    """A zip of the party's inclusion and non-inclusion proofs for a model's manifest, with index.json."""
    manifest, _ = repository.load_manifest(store, model.manifest_root)
    catalog = store.snapshot()
    isrcs = party_recordings(catalog, manifest, party_id)
    buf = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        write_proofs(manifest, key, isrcs, Path(tmp), undisclosed=Undisclosed.to_viewer(catalog, party_id))
        for path in sorted(Path(tmp).iterdir()):
            zf.write(path, f"{party_id}-{manifest.root[:12]}/{path.name}")
    return buf.getvalue()


# ---------------------------------------------------------------- outputs and attribution


def _pct(ppm: Any) -> float:
    return round(ppm / 10_000, 1) if isinstance(ppm, int) else 0.0


@dataclass(frozen=True)
class AttributionCard:
    """An output's attribution (the credential's contract, :mod:`accord.attribution.contract`), for display.

    Attributes:
        status: ``computed``, or why not (``pending``, ``not_computed``).
        note: the credential's note when not computed.
        method: the attribution method and its version.
        reliable: whether the evidence is strong enough to pay by.
        unattributed: percent no item is credited with.
        top: the most influential items: ``{"isrc", "title", "percent", "works"}``.
        holders: ``(side, party_id, percent)`` rights holders credited.
    """

    status: str
    note: str = ""
    method: str = ""
    reliable: bool = False
    unattributed: float = 100.0
    top: tuple[dict[str, Any], ...] = ()
    holders: tuple[tuple[str, str, float], ...] = ()

    @property
    def computed(self) -> bool:
        return self.status == "computed"

    @property
    def total(self) -> float:
        """Percent credited to the holders listed (one side's share of the items they own)."""
        return round(sum(p for _, _, p in self.holders), 1)


def attribution_card(credential: Mapping[str, Any], *, party_id: str | None = None) -> AttributionCard:
    """The card for an output; with ``party_id``, only that party's holder lines and items."""
    att = credential.get("attribution") or {}
    if not isinstance(att, Mapping) or att.get("status") != "computed":
        status = str(att.get("status", "absent")) if isinstance(att, Mapping) else "absent"
        return AttributionCard(status, str(att.get("note", "")) if isinstance(att, Mapping) else "")
    holders = tuple(  # a committed holder (a party that asked not to be named) is shown unnamed
        (side, str(h.get("party_id") or visibility.UNDISCLOSED), _pct(h.get("weight_ppm")))
        for side in ("master", "publishing")
        for h in (att.get("holders") or {}).get(side, [])
        if isinstance(h, Mapping) and (party_id is None or h.get("party_id") == party_id)
    )
    top = tuple(
        {
            "isrc": str(t.get("isrc", "")),
            "title": str(t.get("title", "")),
            "percent": _pct(t.get("weight_ppm")),
            "works": ", ".join(str(w.get("title") or w.get("work_id")) for w in t.get("works", [])),
        }
        for t in att.get("top", [])
        if isinstance(t, Mapping)
    )
    return AttributionCard(
        "computed",
        method=f"{att.get('method', '')} {att.get('method_version', '')}".strip(),
        reliable=bool(att.get("reliable")),
        unattributed=_pct(att.get("unattributed_ppm")),
        top=top,
        holders=holders,
    )


def narrowed_card(output: Output, catalog: Catalog, principal: Principal) -> AttributionCard:
    """The output's card as a rights holder sees it: its attribution as it may see it
    (:func:`accord.visibility.attribution_for`), its own holder lines, and of the most
    influential items only the recordings it has standing on (no other party's figures)."""
    shown = {"attribution": visibility.attribution_for(principal, output, catalog)}
    card = attribution_card(shown, party_id=principal.party_id)
    mine = visibility.standing_of(catalog, principal.party_id).recordings
    return replace(card, top=tuple(t for t in card.top if t["isrc"] in mine))


def outputs_attributed(store: Store, principal: Principal) -> list[tuple[Output, AttributionCard]]:
    """The outputs a rights holder may see (:func:`accord.visibility.may_see_output`, through
    :func:`accord.api.services.visible_outputs`, as the API lists them), newest first, with narrowed cards."""
    catalog = services.current_catalog(store)
    return [(o, narrowed_card(o, catalog, principal)) for o in reversed(services.visible_outputs(store, principal))]


def output_attributed(store: Store, principal: Principal, output_id: str) -> tuple[Output, AttributionCard]:
    """One output the rights holder may see (:func:`accord.api.services.output_for`, as the API answers);
    any other (or none) is a 404 worded the same."""
    output = services.output_for(store, principal, output_id)
    return output, narrowed_card(output, services.current_catalog(store), principal)


def guard_of(credential: Mapping[str, Any]) -> dict[str, Any]:
    guard = credential.get("guard") or {}
    return dict(guard) if isinstance(guard, Mapping) else {"status": str(guard)}


def pretty(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str)
