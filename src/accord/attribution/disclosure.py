"""The public form of an output's attribution: parties that asked not to be named are not named.

An output's content credential is public (a signed sidecar, a C2PA manifest in the audio), so
what it says of the attribution follows DESIGN.md's "What a view may reveal": a party with
``disclose`` false is never named in it, and neither is anything that would point to it. Each
such entry of the attribution contract (:mod:`accord.attribution.contract`) is replaced by a
**commitment** with the same weight::

    {"commitment": "<64 hex digits>", "weight_ppm": w}

* an item whose recording has a hidden party on it (owner, artist, writer or publisher of an
  embodied work, :attr:`accord.datasets.disclosure.Undisclosed.recordings`), or whose ISRC or
  title names one;
* a work with a hidden writer or publishing owner, embodied by such a recording, or whose id or
  title names a hidden party;
* a master or publishing holder that is a hidden party.

Hidden items are left out of ``top`` (the display list), and hidden works out of the ``works``
shown with a visible top item. Weights are untouched, so ``sum(items) + unattributed_ppm ==
1_000_000`` still holds exactly and the royalty figures a reader can check stay checkable. The
replication guard's evidence in the credential gets the same treatment (a hidden recording's
evidence keeps its check, score and threshold; its ISRC becomes a commitment, its title and
source go).

A commitment is the proofs' blinded value commitment (:mod:`accord.datasets.merkle`)::

    blind      = HMAC-SHA256(secret, "accord-credential" || 0x00 || output_id || 0x00 || kind || 0x00 || value)
    commitment = SHA-256("accord-value" || 0x00 || blind || value)

where ``secret`` is derived from the operator's signing key (:func:`commitment_secret`), and
``kind`` is the list the entry is in (``items``, ``works``, ``master``, ``publishing``,
``guard``, or ``prompt`` for the recording a remix was made from). Without the secret nobody
can test a guessed ISRC or party id against a commitment (the ISRCs of the catalog are public,
so a plain hash could be inverted by trying them all), and the kind and output make the same
party's commitments in two lists or two outputs unlinkable.
The operator keeps each entry's **opening** (kind, value, blind) in the output's private record;
a hidden party is given the openings of its own entries, and checks them with
:func:`opens`.

Everything here is pure (no SQL, no files).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from hashlib import sha256
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from accord.attribution.contract import COMMITMENT, COMPUTED, SIDES
from accord.datasets.disclosure import Undisclosed
from accord.datasets.merkle import value_commitment
from accord.registry.entities import Catalog
from accord.signing import OperatorKey

PRIVATE_FORMAT = "accord-attribution-private/1"
"""The format of an output's private attribution record (the ``outputs.attribution`` column)."""

KINDS = ("items", "works", "master", "publishing", "guard", "prompt")
"""What a commitment is to: one list of the contract, or the guard's evidence."""
KEYS = {"items": "isrc", "works": "work_id", "master": "party_id", "publishing": "party_id", "guard": "isrc"}
"""The field a committed entry's value was in, by kind."""

_GUARD_KEPT = ("check", "score", "threshold", "over_threshold")
"""What a hidden recording's guard evidence keeps (its ISRC becomes a commitment; title, bars and source go)."""


def commitment_secret(key: OperatorKey) -> bytes:
    """The key commitments are made under: ``HMAC-SHA256(Ed25519 private key bytes, "accord-credential-commitments")``.

    Derived from the operator's signing key, so it needs no second secret to keep, and it is never
    the signing key itself.
    """
    raw = key.private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return hmac.new(raw, b"accord-credential-commitments", sha256).digest()


def operator_commitment_secret(home: Path) -> bytes:
    """:func:`commitment_secret` of the operator key kept in ``home`` (created there if missing)."""
    from accord.signing import ensure_operator_key

    return commitment_secret(ensure_operator_key(home)[0])


def entry_blind(secret: bytes, output_id: str, kind: str, value: str) -> bytes:
    """The blinding value of one entry, domain-separated by output and kind."""
    message = b"\x00".join((b"accord-credential", output_id.encode(), kind.encode(), value.encode()))
    return hmac.new(secret, message, sha256).digest()


@dataclass(frozen=True)
class Opening:
    """What a commitment hides, and the blind that proves it.

    Attributes:
        commitment: the commitment (hex), as in the public credential.
        kind: the list it is in (:data:`KINDS`).
        value: the ISRC, work id or party id it commits to.
        blind: the blinding value (hex).
    """

    commitment: str
    kind: str
    value: str
    blind: str

    def to_dict(self) -> dict[str, str]:
        return {"commitment": self.commitment, "kind": self.kind, "value": self.value, "blind": self.blind}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Opening:
        return cls(str(data["commitment"]), str(data["kind"]), str(data["value"]), str(data["blind"]))


def opens(opening: Opening | Mapping[str, Any]) -> bool:
    """Whether an opening opens its commitment: ``SHA-256("accord-value" || 0x00 || blind || value)``."""
    o = opening if isinstance(opening, Opening) else Opening.from_dict(opening)
    try:
        blind = bytes.fromhex(o.blind)
    except ValueError:
        return False
    return len(blind) == 32 and hmac.compare_digest(value_commitment(blind, o.value).hex(), o.commitment)


@dataclass(frozen=True)
class Hidden:
    """What the public form of an attribution must not name, from one catalog.

    Attributes:
        recordings: ISRCs of recordings a hidden party is on, or whose ISRC or title names one.
        works: ids of works with a hidden writer or publisher, embodied by a hidden recording,
            or whose id or title names a hidden party.
        parties: the hidden party ids.
        undisclosed: the secret texts (names, ids, titles) of :class:`Undisclosed`.
    """

    recordings: frozenset[str]
    works: frozenset[str]
    parties: frozenset[str]
    undisclosed: Undisclosed | None = None

    @classmethod
    def of(cls, catalog: Catalog, isrcs: Iterable[str] | None = None) -> Hidden:
        """The hidden recordings, works and parties of ``catalog`` (parties with ``disclose`` false).

        ``isrcs``: only these recordings and their works are looked at (the ones an attribution names,
        :func:`named_isrcs`), as ``Store.snapshot(isrcs=...)`` reads them: ~0.2 ms for ten recordings
        where the whole of a 1,000-recording catalog takes a large part of a second.
        """
        if isrcs is not None:
            recs = {i: catalog.recordings[i] for i in sorted(set(isrcs)) if i in catalog.recordings}
            embodied = {w for r in recs.values() for w in r.works if w in catalog.works}
            catalog = replace(catalog, recordings=recs, works={w: catalog.works[w] for w in sorted(embodied)})
        und = Undisclosed.of(catalog)
        recordings = set(und.recordings)
        recordings |= {i for i, r in catalog.recordings.items() if und.leaks(i) or und.leaks(r.title)}
        works = {w for i in recordings if i in catalog.recordings for w in catalog.recordings[i].works}
        for work in catalog.works.values():
            # a work's parties: its writers and publishing owners (as accord.licensing counts them)
            on = set(work.writers) | {s.party_id for s in work.shares}
            if on & und.parties or und.leaks(work.work_id) or und.leaks(work.title):
                works.add(work.work_id)
        return cls(frozenset(recordings), frozenset(works), und.parties, und)

    def hides(self, kind: str, value: str) -> bool:
        """Whether the entry ``value`` of list ``kind`` is committed to rather than named."""
        if kind in ("items", "guard"):
            return value in self.recordings or self.leaks(value)
        if kind == "works":
            return value in self.works or self.leaks(value)
        return value in self.parties or self.leaks(value)

    def leaks(self, text: str) -> bool:
        """Whether a text names a hidden party, its agreements, or a recording it is on."""
        return self.undisclosed is not None and self.undisclosed.leaks(text)

    def text(self, value: str) -> str:
        """A free text (a guard note) with every secret in it blanked out."""
        return self.undisclosed.redact(value) if self.undisclosed is not None else value


@dataclass(frozen=True)
class Published:
    """An output's attribution and guard record split into what is public and what stays private.

    Attributes:
        attribution: the public form of the attribution (what the credential carries).
        guard: the public form of the guard record.
        openings: the opening of every commitment made, by commitment order.
        full_attribution: the attribution as computed (private: the operator, the royalty engine).
        full_guard: the guard record as computed (private).
        prompt: the prompt as the credential shows it (a remix of a hidden recording names it by
            commitment; the output's stored prompt keeps it).
    """

    attribution: dict[str, Any]
    guard: dict[str, Any]
    openings: tuple[Opening, ...]
    full_attribution: dict[str, Any]
    full_guard: dict[str, Any]
    prompt: dict[str, Any] = field(default_factory=dict)

    def private_record(self) -> dict[str, Any]:
        """The output's private record (``outputs.attribution``): the full attribution and guard, and the openings."""
        return {
            "format": PRIVATE_FORMAT,
            "attribution": self.full_attribution,
            "guard": self.full_guard,
            "openings": [o.to_dict() for o in self.openings],
        }


class _Committer:
    """Makes commitments for one output and remembers their openings."""

    def __init__(self, secret: bytes, output_id: str) -> None:
        self.secret, self.output_id = secret, output_id
        self.openings: dict[str, Opening] = {}

    def commit(self, kind: str, value: str) -> str:
        blind = entry_blind(self.secret, self.output_id, kind, value)
        commitment = value_commitment(blind, value).hex()
        self.openings[commitment] = Opening(commitment, kind, value, blind.hex())
        return commitment


def _sort_key(entry: Mapping[str, Any], key: str) -> tuple[int, str]:
    """The contract's order: weight descending, then the id (or the commitment, for a committed entry)."""
    return (-int(entry["weight_ppm"]), str(entry.get(key, entry.get(COMMITMENT, ""))))


def _public_list(
    entries: Sequence[Mapping[str, Any]], kind: str, hidden: Hidden, c: _Committer
) -> list[dict[str, Any]]:
    key = KEYS[kind]
    out = []
    for e in entries:
        value = e.get(key)
        if isinstance(value, str) and hidden.hides(kind, value):
            out.append({COMMITMENT: c.commit(kind, value), "weight_ppm": e["weight_ppm"]})
        else:
            out.append(dict(e))
    return sorted(out, key=lambda e: _sort_key(e, key))


def _public_top(top: Sequence[Mapping[str, Any]], hidden: Hidden) -> list[dict[str, Any]]:
    shown = []
    for t in top:
        if not isinstance(t.get("isrc"), str) or hidden.hides("items", t["isrc"]):
            continue
        works = [dict(w) for w in t.get("works") or () if not hidden.hides("works", str(w.get("work_id")))]
        shown.append({**t, "works": works})
    return shown


def _with_titles(top: Sequence[Mapping[str, Any]], hidden: Hidden) -> Hidden:
    """``hidden``, plus the items and works whose display title names a secret (one the catalog did not hold)."""
    isrcs = {str(t.get("isrc")) for t in top if hidden.leaks(str(t.get("title", "")))}
    works = {str(w.get("work_id")) for t in top for w in t.get("works") or () if hidden.leaks(str(w.get("title", "")))}
    if not isrcs and not works:
        return hidden
    return replace(hidden, recordings=hidden.recordings | isrcs, works=hidden.works | works)


def public_attribution(attribution: Mapping[str, Any], hidden: Hidden, c: _Committer) -> dict[str, Any]:
    """The public form of a contract (:mod:`accord.attribution.contract`); anything not computed as it is."""
    if attribution.get("status") != COMPUTED:
        return dict(attribution)
    holders = attribution["holders"]
    hidden = _with_titles(attribution["top"], hidden)
    items = _public_list(attribution["items"], "items", hidden, c)
    out = {
        **attribution,
        "items": items,
        "works": _public_list(attribution["works"], "works", hidden, c),
        "holders": {side: _public_list(holders[side], side, hidden, c) for side in SIDES},
        "top": _public_top(attribution["top"], hidden),
    }
    # the full top less its hidden items is a prefix of the named items, in order (what the contract checks)
    return out


def _public_evidence(entry: Mapping[str, Any], hidden: Hidden, c: _Committer) -> dict[str, Any]:
    isrc = entry.get("isrc")
    if not isinstance(isrc, str) or (not hidden.hides("guard", isrc) and not hidden.leaks(str(entry.get("title")))):
        return dict(entry)
    return {COMMITMENT: c.commit("guard", isrc), **{k: entry[k] for k in _GUARD_KEPT if k in entry}}


def public_guard(guard: Mapping[str, Any], hidden: Hidden, c: _Committer) -> dict[str, Any]:
    """The guard record with a hidden recording's evidence committed to and secrets blanked out of its notes."""
    out = dict(guard)
    if isinstance(guard.get("closest"), list):
        out["closest"] = [_public_evidence(e, hidden, c) if isinstance(e, Mapping) else e for e in guard["closest"]]
    if isinstance(guard.get("attempts"), list):
        attempts = []
        for a in guard["attempts"]:
            closest = a.get("closest") if isinstance(a, Mapping) else None
            if isinstance(closest, Mapping):
                a = {**a, "closest": _public_evidence(closest, hidden, c)}
            attempts.append(a)
        out["attempts"] = attempts
    if isinstance(guard.get("notes"), list):
        out["notes"] = [hidden.text(n) if isinstance(n, str) else n for n in guard["notes"]]
    if isinstance(guard.get("source_passed_over"), list):
        out["source_passed_over"] = [
            c.commit("guard", s) if isinstance(s, str) and hidden.hides("guard", s) else s
            for s in guard["source_passed_over"]
        ]
    return out


def publish(
    attribution: Mapping[str, Any],
    guard: Mapping[str, Any],
    hidden: Hidden,
    *,
    secret: bytes,
    output_id: str,
    prompt: Mapping[str, Any] | None = None,
) -> Published:
    """Split an output's attribution and guard record (and prompt) into their public forms and the private record.

    Deterministic: the same inputs give the same commitments (so a re-run job makes the same credential).
    """
    c = _Committer(secret, output_id)
    public = public_attribution(attribution, hidden, c)
    public_g = public_guard(guard, hidden, c)
    shown_prompt = dict(prompt or {})
    source = shown_prompt.get("from")
    if isinstance(source, str) and hidden.hides("guard", source):  # a remix of a hidden recording
        shown_prompt["from"] = c.commit("prompt", source)
    openings = tuple(c.openings[k] for k in sorted(c.openings))
    return Published(public, public_g, openings, dict(attribution), dict(guard), shown_prompt)


def named_isrcs(
    attribution: Mapping[str, Any], guard: Mapping[str, Any], prompt: Mapping[str, Any] | None = None
) -> frozenset[str]:
    """The ISRCs an attribution, a guard record and a prompt name (what the catalog must hold to decide
    what to hide)."""
    found: set[str] = {prompt["from"]} if prompt and isinstance(prompt.get("from"), str) else set()
    for entry in _entries(attribution.get("items")):
        found.add(str(entry.get("isrc", "")))
    for entry in _entries(guard.get("closest")):
        found.add(str(entry.get("isrc", "")))
    for a in _entries(guard.get("attempts")):
        if isinstance(a.get("closest"), Mapping):
            found.add(str(a["closest"].get("isrc", "")))
    found |= {s for s in guard.get("source_passed_over") or () if isinstance(s, str)}
    return frozenset(found - {""})


def _entries(value: Any) -> Iterable[Mapping[str, Any]]:
    return [e for e in value if isinstance(e, Mapping)] if isinstance(value, list) else []


# ---------------------------------------------------------------- one party's view


def opened_view(public: Mapping[str, Any], full: Mapping[str, Any], own: Iterable[Opening]) -> dict[str, Any]:
    """The public form with the entries whose openings are in ``own`` (the viewer's own) named again.

    Each opened entry carries its ``commitment`` and ``blind`` beside its id, so the viewer can check
    (:func:`opens`) that the public credential commits to its credit. ``top`` gains the opened items
    the full form shows, each with the works the view names; every other commitment stays as it is.
    """
    if public.get("status") != COMPUTED:
        return dict(public)
    mine = {o.commitment: o for o in own}

    def opened(entries: Sequence[Mapping[str, Any]], kind: str) -> list[dict[str, Any]]:
        key = KEYS[kind]
        out = []
        for e in entries:
            o = mine.get(str(e.get(COMMITMENT, "")))
            if o is not None and o.kind == kind:
                out.append({key: o.value, "weight_ppm": e["weight_ppm"], COMMITMENT: o.commitment, "blind": o.blind})
            else:
                out.append(dict(e))
        return sorted(out, key=lambda e: _sort_key(e, key))

    items = opened(public["items"], "items")
    named_items = {e["isrc"] for e in items if "isrc" in e}
    shown_works = {e["work_id"] for e in public["works"] if "work_id" in e}
    shown_works |= {w.get("work_id") for t in public["top"] for w in t.get("works") or ()}
    shown_works |= {o.value for o in mine.values() if o.kind == "works"}
    top = [
        {**t, "works": [w for w in t.get("works") or () if w.get("work_id") in shown_works]}
        for t in full.get("top") or ()
        if isinstance(t, Mapping) and t.get("isrc") in named_items
    ]
    return {
        **public,
        "items": items,
        "works": opened(public["works"], "works"),
        "holders": {side: opened(public["holders"][side], side) for side in SIDES},
        "top": top,
    }
