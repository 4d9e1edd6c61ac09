"""Who may see what: one rule per kind of object, for the API, the portal and the CLI alike.

A viewer is anything with a ``role`` (``operator``, ``rights_holder`` or ``creator``) and a
``party_id`` (:class:`accord.api.auth.Principal` is one). The rules, object by object:

* **recording**: a rights holder with standing on it (master owner of any share, artist,
  writer or publishing owner of an embodied work, as the licensing policy counts them,
  :func:`accord.licensing.parties_on`);
* **agreement**: its licensor; **opt-out**: the party in whose name it is; **delivery**: its sender;
* **manifest** (and its proofs): a rights holder with standing on one of its items (as recorded
  in the manifest, as of its instant);
* **model**: creators see every model (they choose one to generate with); a rights holder sees a
  model whose manifest it may see;
* **output**: its creator; a rights holder the output is attributed to: credited as a holder by
  the output's computed attribution (its full, private record; standing as of the model's
  manifest), or holding standing now on a recording or work the attribution names, or on the
  recording it remixes (and that recording's works);
* **an output's attribution** (:func:`attribution_for`): the operator sees the full record; a party
  that asked not to be named sees the public form with its own entries named (and opened); everyone
  else the public form its credential carries;
* **statement**: the party it pays; **usage event**: the creator that made it;
  **audit event**: the operator only;
* the operator sees everything.

Everywhere, an object a viewer may not see is answered exactly like a missing one (404 in the
API and the portal), so that its existence does not leak. This module is domain code: it
imports no face (no CLI, API or portal).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from accord.licensing import opt_out_standing, parties_on

if TYPE_CHECKING:
    from accord.attribution.disclosure import Opening
    from accord.datasets.manifest import Manifest
    from accord.licensing import Decision
    from accord.outputs.store import Output
    from accord.registry.entities import Agreement, Catalog, OptOut, Recording

OPERATOR = "operator"
RIGHTS_HOLDER = "rights_holder"
CREATOR = "creator"


class Viewer(Protocol):
    """Who is looking (an API principal, a portal session, a party named on the command line)."""

    @property
    def role(self) -> str: ...

    @property
    def party_id(self) -> str: ...


@dataclass(frozen=True)
class Party:
    """A viewer named outside any session (the CLI's ``--party``, a test).

    Attributes:
        party_id: the party (or creator, or operator) looking.
        role: ``operator``, ``rights_holder`` or ``creator``.
    """

    party_id: str
    role: str = RIGHTS_HOLDER


def is_operator(viewer: Viewer) -> bool:
    return str(viewer.role) == OPERATOR


@dataclass(frozen=True)
class Standing:
    """What one party has standing on now.

    Attributes:
        party_id: the party.
        recordings: ISRCs of recordings it has standing on (:func:`accord.licensing.parties_on`).
        works: ids of works it writes or holds a publishing share of.
    """

    party_id: str
    recordings: frozenset[str] = frozenset()
    works: frozenset[str] = frozenset()


def standing_of(catalog: Catalog, party_id: str) -> Standing:
    """The recordings and works a party has standing on in ``catalog``."""
    recordings = frozenset(isrc for isrc, rec in catalog.recordings.items() if party_id in parties_on(catalog, rec))
    works = frozenset(w for w in catalog.works if opt_out_standing(catalog, party_id, "work", w))
    return Standing(party_id, recordings, works)


# ---------------------------------------------------------------- registry objects


def may_see_recording(viewer: Viewer, catalog: Catalog, recording: Recording) -> bool:
    return is_operator(viewer) or (
        str(viewer.role) == RIGHTS_HOLDER and viewer.party_id in parties_on(catalog, recording)
    )


def may_see_agreement(viewer: Viewer, agreement: Agreement) -> bool:
    return is_operator(viewer) or (str(viewer.role) == RIGHTS_HOLDER and agreement.licensor == viewer.party_id)


def may_see_optout(viewer: Viewer, optout: OptOut) -> bool:
    return is_operator(viewer) or (str(viewer.role) == RIGHTS_HOLDER and optout.party_id == viewer.party_id)


def may_see_delivery(viewer: Viewer, sender: str) -> bool:
    return is_operator(viewer) or (str(viewer.role) == RIGHTS_HOLDER and sender == viewer.party_id)


# ---------------------------------------------------------------- training sets and models


def manifest_parties(manifest: Manifest) -> frozenset[str]:
    """Every party with standing on an item of the manifest, as of its instant."""
    return frozenset(p for item in manifest.items for p in item.standing)


def may_see_manifest(viewer: Viewer, manifest: Manifest) -> bool:
    """A manifest and the proofs made from it."""
    return is_operator(viewer) or (str(viewer.role) == RIGHTS_HOLDER and viewer.party_id in manifest_parties(manifest))


def may_see_model(viewer: Viewer, manifest: Manifest | Callable[[], Manifest]) -> bool:
    """A model, by the manifest it was trained on: the operator and creators see every model, a rights
    holder those whose manifest it may see. ``manifest`` may be a function that reads it: it is called
    only when the answer depends on it (the API, the portal and the CLI list models by this rule)."""
    if is_operator(viewer) or str(viewer.role) == CREATOR:
        return True
    return may_see_manifest(viewer, manifest() if callable(manifest) else manifest)


# ---------------------------------------------------------------- outputs


def _private(output: Output) -> Mapping[str, Any]:
    record = output.attribution
    return record if isinstance(record, Mapping) and isinstance(record.get("attribution"), Mapping) else {}


def full_attribution(output: Output) -> Mapping[str, Any]:
    """The output's attribution as computed: its private record's (the credential carries the public
    form), or for an output stored before there was a private record, its credential's."""
    private = _private(output)
    if private:
        return private["attribution"]
    attr = output.credential.get("attribution") if isinstance(output.credential, Mapping) else None
    return attr if isinstance(attr, Mapping) else {}


def _computed_attribution(output: Output) -> Mapping[str, Any]:
    attr = full_attribution(output)
    return attr if attr.get("status") == "computed" else {}


def _ids(entries: Any, key: str) -> frozenset[str]:
    if not isinstance(entries, list):
        return frozenset()
    return frozenset(e[key] for e in entries if isinstance(e, Mapping) and isinstance(e.get(key), str))


def credited_parties(output: Output) -> frozenset[str]:
    """Rights holders the output's computed attribution credits, on either side (``holders``)."""
    holders = _computed_attribution(output).get("holders")
    if not isinstance(holders, Mapping):
        return frozenset()
    return _ids(holders.get("master"), "party_id") | _ids(holders.get("publishing"), "party_id")


def attributed_recordings(output: Output) -> frozenset[str]:
    """Recordings the output is attributed to: its attribution's items and the recording it remixes."""
    attr = _computed_attribution(output)
    found = _ids(attr.get("items"), "isrc") | _ids(attr.get("top"), "isrc")
    source = output.prompt.get("from") if isinstance(output.prompt, Mapping) else None
    return found | {source} if isinstance(source, str) and source else found


def attributed_works(output: Output, catalog: Catalog) -> frozenset[str]:
    """Works the output is attributed to: its attribution's works, and the works of the recording it remixes."""
    attr = _computed_attribution(output)
    found = set(_ids(attr.get("works"), "work_id"))
    for item in attr.get("top") or ():
        if isinstance(item, Mapping):
            found |= _ids(item.get("works"), "work_id")
    source = output.prompt.get("from") if isinstance(output.prompt, Mapping) else None
    if isinstance(source, str) and source in catalog.recordings:
        found |= set(catalog.recordings[source].works)
    return frozenset(found)


def may_see_output(viewer: Viewer, output: Output, catalog: Catalog, standing: Standing | None = None) -> bool:
    """Its creator; a rights holder it is attributed to (credited, or with standing now on an
    attributed recording or work, the remixed one included); the operator.

    ``standing`` (the viewer's, from :func:`standing_of`) saves recomputing it for each output of a list.
    """
    if is_operator(viewer):
        return True
    if str(viewer.role) == CREATOR:
        return output.creator_id == viewer.party_id
    if str(viewer.role) != RIGHTS_HOLDER:
        return False
    if viewer.party_id in credited_parties(output):
        return True
    mine = standing if standing is not None and standing.party_id == viewer.party_id else None
    mine = mine or standing_of(catalog, viewer.party_id)
    return bool(attributed_recordings(output) & mine.recordings) or bool(attributed_works(output, catalog) & mine.works)


def visible_outputs(viewer: Viewer, outputs: Iterable[Output], catalog: Catalog) -> list[Output]:
    """The outputs of ``outputs`` the viewer may see, in the order given."""
    standing = standing_of(catalog, viewer.party_id) if str(viewer.role) == RIGHTS_HOLDER else None
    return [o for o in outputs if may_see_output(viewer, o, catalog, standing)]


# ---------------------------------------------------------------- what an output's attribution shows


def own_openings(viewer: Viewer, openings: Iterable[Opening], catalog: Catalog) -> list[Opening]:
    """The openings a viewer is given: a rights holder gets those of its own entries (its own holder lines,
    and the recordings and works it has standing on, even where another party on them asked not to be
    named: a party sees its own objects); anyone else none. Another hidden party's holder line stays a
    commitment to everyone but that party and the operator."""
    party = catalog.parties.get(viewer.party_id)
    if str(viewer.role) != RIGHTS_HOLDER or party is None:
        return []
    mine = standing_of(catalog, viewer.party_id)
    own = {"items": mine.recordings, "works": mine.works, "master": {party.party_id}, "publishing": {party.party_id}}
    return [o for o in openings if o.value in own.get(o.kind, ())]


def shown_attribution(
    viewer: Viewer,
    full: Mapping[str, Any],
    public: Mapping[str, Any],
    openings: Iterable[Opening],
    catalog: Catalog,
) -> dict[str, Any]:
    """An attribution as ``viewer`` may see it (one rule for outputs and uploads alike): the operator the
    full record; a rights holder the public form with its own entries named again (its holder line,
    the recordings and works it has standing on), each with the opening of its commitment
    (:func:`accord.attribution.disclosure.opens`), other hidden entries as commitments; everyone else
    the public form."""
    from accord.attribution.disclosure import opened_view

    if is_operator(viewer):
        return dict(full)
    own = own_openings(viewer, openings, catalog)
    return opened_view(public, full, own) if own else dict(public)


def upload_attribution(
    viewer: Viewer, contract: Mapping[str, Any], catalog: Catalog, *, secret: bytes, sha256: str
) -> dict[str, Any]:
    """The attribution of an uploaded file (``accord attribute``, ``POST /v1/attributions``) as ``viewer``
    may see it (:func:`shown_attribution`); its commitments are keyed to the file's SHA-256 (``secret``:
    :func:`accord.attribution.disclosure.commitment_secret` of the operator's key)."""
    from accord.attribution.disclosure import Hidden, named_isrcs, publish

    if is_operator(viewer):
        return dict(contract)
    hidden = Hidden.of(catalog, named_isrcs(contract, {}))  # only the recordings it names: fast on a large catalog
    published = publish(contract, {}, hidden, secret=secret, output_id=f"upload:{sha256}")
    return shown_attribution(viewer, contract, published.attribution, published.openings, catalog)


def upload_guard(
    viewer: Viewer, guard: Mapping[str, Any], catalog: Catalog, *, secret: bytes, sha256: str
) -> dict[str, Any]:
    """The guard's verdict on an uploaded file as ``viewer`` may see it: in full for the operator; for
    anyone else, a match on a recording of a party that asked not to be named keeps its check, score and
    threshold, its ISRC a commitment keyed to the file's SHA-256 and its title left out (as in a credential)."""
    from accord.attribution.disclosure import Hidden, named_isrcs, publish

    if is_operator(viewer):
        return dict(guard)
    hidden = Hidden.of(catalog, named_isrcs({}, guard))  # only the recordings it names: fast on a large catalog
    return publish({"status": "not_computed"}, guard, hidden, secret=secret, output_id=f"upload:{sha256}").guard


def attribution_for(viewer: Viewer, output: Output, catalog: Catalog) -> dict[str, Any]:
    """An output's attribution as ``viewer`` may see it (:func:`shown_attribution`). The public form is
    the credential's, exactly as signed; an output stored before there was a private record shows its
    credential's attribution to everyone, as it always has."""
    from accord.attribution.disclosure import Opening

    public = output.credential.get("attribution") if isinstance(output.credential, Mapping) else None
    public = public if isinstance(public, Mapping) else {}
    private = _private(output)
    if not private:
        return dict(public)
    openings = [Opening.from_dict(o) for o in private.get("openings") or () if isinstance(o, Mapping)]
    return shown_attribution(viewer, private["attribution"], public, openings, catalog)


def credential_for(viewer: Viewer, output: Output, catalog: Catalog) -> dict[str, Any]:
    """An output's credential as ``viewer`` may see it: the signed public credential, with its attribution
    as :func:`attribution_for` shows it and, for the operator, the guard record in full."""
    shown = dict(output.credential) if isinstance(output.credential, Mapping) else {}
    shown["attribution"] = attribution_for(viewer, output, catalog)
    private = _private(output)
    if is_operator(viewer) and isinstance(private.get("guard"), Mapping):
        shown["guard"] = dict(private["guard"])
    return shown


# ---------------------------------------------------------------- money, usage, logs


def may_see_statement(viewer: Viewer, party_id: str) -> bool:
    """A royalty statement, by the party it pays."""
    return is_operator(viewer) or (str(viewer.role) == RIGHTS_HOLDER and party_id == viewer.party_id)


def may_see_usage(viewer: Viewer, event: Mapping[str, Any]) -> bool:
    """A usage event (generation, play, download), by the creator that made it."""
    return is_operator(viewer) or (str(viewer.role) == CREATOR and event.get("creator_id") == viewer.party_id)


# ---------------------------------------------------------------- naming other parties


UNDISCLOSED = "undisclosed party"


def shown_name(catalog: Catalog, viewer: Viewer, party_id: str) -> str:
    """How a view names a party to a viewer: by its name (its id when the registry has no record of it),
    unless it is another party that asked not to be named (``disclose: false``): then
    :data:`UNDISCLOSED`, without its id. The operator sees every name; a party always sees its own."""
    party = catalog.parties.get(party_id)
    if party is None:
        return party_id
    if not party.disclose and party_id != viewer.party_id and not is_operator(viewer):
        return UNDISCLOSED
    return party.name or party_id


def hidden_parties(catalog: Catalog, viewer: Viewer) -> frozenset[str]:
    """Parties the viewer may not see named: others that asked not to be (none for the operator)."""
    if is_operator(viewer):
        return frozenset()
    return frozenset(p.party_id for p in catalog.parties.values() if not p.disclose and p.party_id != viewer.party_id)


def redacted(catalog: Catalog, viewer: Viewer, text: str) -> str:
    """``text`` with every hidden party's id, name and agreement ids replaced (a decision's reasons,
    a note): what the sentence says stays, who it names does not."""
    hidden = hidden_parties(catalog, viewer)
    if not hidden:
        return text
    words = {a.agreement_id: "an agreement" for a in catalog.agreements.values() if a.licensor in hidden}
    for pid in hidden:
        words[pid] = UNDISCLOSED
        name = catalog.parties[pid].name
        if name:
            words[name] = UNDISCLOSED
    for word in sorted(words, key=len, reverse=True):  # longest first: an id that contains another
        text = text.replace(word, words[word])
    return text


def redacted_decision(catalog: Catalog, viewer: Viewer, decision: Decision) -> Decision:
    """A licensing decision as the viewer may see it: hidden parties unnamed in its reasons and the
    agreements relied on (those of hidden licensors are left out)."""
    hidden = hidden_parties(catalog, viewer)
    if not hidden:
        return decision
    own = {a.agreement_id for a in catalog.agreements.values() if a.licensor in hidden}
    reasons = tuple(
        replace(
            r,
            party_id="" if r.party_id in hidden else r.party_id,
            agreement_id="" if r.agreement_id in own else r.agreement_id,
            message=redacted(catalog, viewer, r.message),
        )
        for r in decision.reasons
    )
    return replace(decision, reasons=reasons, relied_on=tuple(a for a in decision.relied_on if a not in own))
