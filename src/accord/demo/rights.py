"""The demo's fictional rights picture: who owns, performs and licenses each piece.

Every party, share, agreement and opt-out here is invented; the music underneath is in
the public domain. The picture is built so that every situation the licensing policy
knows shows up in the demo, in realistic proportions, and so that most recordings
(about two thirds) are fully eligible for training worldwide:

==========================  =========================================================
``licensed``                Aurora master + Northstar (and a signed arranger) publishing,
                            all uses, worldwide
``approved_versions``       Kestrel master: all uses, but each model version needs
                            Kestrel's approval (``model_scope``), pro-rata pool
``publishing_unlicensed``   master licensed; a work (co-)published by Harbour Lane,
                            which has not signed
``generate_only``           Tidewater master grants ``generate`` only, not ``train``
``expired``                 Oldfield's master agreement ended on 2026-06-30
``territory_limited``       a work (co-)published by Greenhill: licensed in GB and IE only
``artist_optout``           Mara Quinlan's recordings: catalog opt-out of ``train``
                            from 2026-09-01
``co_owned_unsigned``       master owned Kestrel 60% / Fenwick 40%; Fenwick has not signed
==========================  =========================================================

A piece's situation, artist and split are fixed by stable hashes of its id, so every
build assigns them alike; :func:`assign_situations` then makes sure a small build
(a few pieces per collection) still shows every situation once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accord.demo.corpus import CHORALE, TUNE, stable_fraction

ACTIVE_FROM = "2026-01-01T00:00:00Z"
"""Active agreements start here and are open-ended, so the demo stays valid later on."""

# --------------------------------------------------------------------------- parties

OPERATOR = "P-ACCORD"


@dataclass(frozen=True)
class Artist:
    """A fictional performer.

    Attributes:
        party_id: its party id.
        name: display name.
        label: the label it records for.
        program: the General MIDI program (0-127) it plays on every recording.
        instrument: the instrument in words.
        repertoire: ``chorale`` or ``tune``.
    """

    party_id: str
    name: str
    label: str
    program: int
    instrument: str
    repertoire: str


ARTISTS: tuple[Artist, ...] = (
    Artist("P-ART-LEIPZIG", "The Leipzig Consort", "P-AURORA", 52, "choir", CHORALE),
    Artist("P-ART-REINHOLT", "Anna Reinholt", "P-AURORA", 19, "church organ", CHORALE),
    Artist("P-ART-HEALY", "Seán Healy", "P-AURORA", 40, "fiddle", TUNE),
    Artist("P-ART-DOYLE", "Niamh Doyle", "P-AURORA", 73, "flute", TUNE),
    Artist("P-ART-CLANCY", "The Clancy Street Band", "P-AURORA", 21, "accordion", TUNE),
    Artist("P-ART-QUINLAN", "Mara Quinlan", "P-AURORA", 40, "fiddle", TUNE),
    Artist("P-ART-GALLOWAY", "The Galloway Reelers", "P-KESTREL", 40, "fiddle", TUNE),
    Artist("P-ART-ROWAN", "Ciarán Rowan", "P-KESTREL", 78, "tin whistle", TUNE),
    Artist("P-ART-MUNRO", "Isla Munro", "P-FENWICK", 46, "harp", TUNE),
    Artist("P-ART-TIDEWATER", "Tidewater Cathedral Singers", "P-TIDEWATER", 52, "choir", CHORALE),
    Artist("P-ART-MCKENNA", "Rory McKenna", "P-TIDEWATER", 109, "pipes", TUNE),
    Artist("P-ART-OLDCHOIR", "Oldfield Chapel Choir", "P-OLDFIELD", 52, "choir", CHORALE),
    Artist("P-ART-OLDFIDDLE", "The Oldfield Fiddlers", "P-OLDFIELD", 40, "fiddle", TUNE),
)
"""Performers; Mara Quinlan appears only on her own (opted-out) recordings."""

QUINLAN = "P-ART-QUINLAN"

_PARTIES: tuple[tuple[str, str, str, str | None], ...] = (
    # (id, kind, name, home territory)
    (OPERATOR, "operator", "Accord (demo catalog)", None),
    ("P-AURORA", "label", "Aurora Records", "GB"),
    ("P-KESTREL", "label", "Kestrel Music Group", "IE"),
    ("P-TIDEWATER", "label", "Tidewater Sound", "US"),
    ("P-OLDFIELD", "label", "Oldfield Archive Recordings", "GB"),
    ("P-FENWICK", "label", "Fenwick Independent", "GB"),
    ("P-NORTHSTAR", "publisher", "Northstar Publishing", "US"),
    ("P-HARBOUR", "publisher", "Harbour Lane Music Publishing", "GB"),
    ("P-GREENHILL", "publisher", "Greenhill Songs", "IE"),
    ("P-WRITER-BACH", "writer", "Johann Sebastian Bach", "DE"),
    ("P-WRITER-TRAD", "writer", "Traditional", None),
    ("P-WRITER-ONEILL", "writer", "Francis O'Neill (collector)", "US"),
    ("P-WRITER-RYAN", "writer", "William Bradbury Ryan (collector)", "US"),
    ("P-WRITER-AIRD", "writer", "James Aird (collector)", "GB"),
    ("P-WRITER-MCARDLE", "writer", "Eilís McArdle (arranger)", "IE"),
)

ARRANGER = "P-WRITER-MCARDLE"
"""A living arranger who keeps an unpublished share of her arrangements and licenses it
herself: writers hold 0% on most works, up to 50% on hers."""

_COLLECTORS = {
    "oneills1850": "P-WRITER-ONEILL",
    "ryansMammoth": "P-WRITER-RYAN",
    "airdsAirs": "P-WRITER-AIRD",
}


def parties() -> list[dict[str, Any]]:
    """Every party of the demo as delivery objects, sorted by id."""
    rows = [
        {"id": pid, "kind": kind, "name": name} | ({"territory": t} if t else {}) for pid, kind, name, t in _PARTIES
    ]
    rows += [{"id": a.party_id, "kind": "artist", "name": a.name} for a in ARTISTS]
    return sorted(rows, key=lambda p: p["id"])


# --------------------------------------------------------------------------- agreements

ALL_USES = ["generate", "remix", "train"]
WORLDWIDE: dict[str, Any] = {"worldwide": True}


def _money(amount: str, currency: str) -> dict[str, str]:
    return {"amount": amount, "currency": currency}


def _agreement(
    agreement_id: str,
    licensor: str,
    side: str,
    *,
    uses: list[str] = ALL_USES,
    territory: dict[str, Any] = WORLDWIDE,
    start: str = ACTIVE_FROM,
    end: str | None = None,
    pool_share: str = "30",
    master_split: str = "50",
    method: str = "equal_per_work",
    minimum_guarantee: dict[str, str] | None = None,
    advance: dict[str, str] | None = None,
    model_scope: str = "any",
) -> dict[str, Any]:
    return {
        "id": agreement_id,
        "licensor": licensor,
        "side": side,
        "uses": sorted(uses),
        "territory": territory,
        "start": start,
        "end": end,
        "coverage": {"catalog": True},
        "terms": {
            "pool_share": pool_share,
            "master_split": master_split,
            "training_pool_method": method,
            "minimum_guarantee": minimum_guarantee,
            "advance": advance,
        },
        "model_scope": model_scope,
    }


def agreements() -> list[dict[str, Any]]:
    """The licences granted to the operator, sorted by id (Fenwick and Harbour: none)."""
    rows = [
        _agreement(
            "AGR-AURORA-MASTER-2026",
            "P-AURORA",
            "master",
            minimum_guarantee=_money("25000.00", "EUR"),
            advance=_money("10000.00", "EUR"),
        ),
        _agreement(
            "AGR-KESTREL-MASTER-2026",
            "P-KESTREL",
            "master",
            pool_share="25",
            master_split="60",
            method="pro_rata_duration",
            advance=_money("15000.00", "USD"),
            model_scope="approved_versions",
        ),
        _agreement("AGR-TIDEWATER-MASTER-2026", "P-TIDEWATER", "master", uses=["generate"], pool_share="20"),
        _agreement(
            "AGR-OLDFIELD-MASTER-2025",
            "P-OLDFIELD",
            "master",
            start="2025-01-01T00:00:00Z",
            end="2026-06-30T00:00:00Z",
            pool_share="35",
        ),
        _agreement(
            "AGR-NORTHSTAR-PUBLISHING-2026",
            "P-NORTHSTAR",
            "publishing",
            minimum_guarantee=_money("20000.00", "USD"),
        ),
        _agreement(
            "AGR-GREENHILL-PUBLISHING-2026",
            "P-GREENHILL",
            "publishing",
            territory={"include": ["GB", "IE"]},
            pool_share="25",
        ),
        _agreement("AGR-MCARDLE-PUBLISHING-2026", ARRANGER, "publishing", pool_share="30"),
    ]
    return sorted(rows, key=lambda a: a["id"])


def optouts() -> list[dict[str, Any]]:
    """Opt-outs, sorted by id: Mara Quinlan withdraws her whole catalog from training."""
    return [
        {
            "id": "OPT-QUINLAN-TRAIN-2026",
            "party": QUINLAN,
            "scope": "catalog",
            "uses": ["train"],
            "effective": "2026-09-01T00:00:00Z",
        }
    ]


# --------------------------------------------------------------------------- situations


@dataclass(frozen=True)
class Situation:
    """One policy situation and how often it occurs.

    Attributes:
        name: its name (the report and the tests use it).
        label: the master owner (majority owner where co-owned).
        registrant: the ISRC registrant code of its recordings.
        weights: per-mille share of chorales and of tunes put in this situation.
    """

    name: str
    label: str
    registrant: str
    weights: dict[str, int]


SITUATIONS: tuple[Situation, ...] = (
    Situation("licensed", "P-AURORA", "AUR", {CHORALE: 700, TUNE: 600}),
    Situation("approved_versions", "P-KESTREL", "KES", {CHORALE: 0, TUNE: 60}),
    Situation("publishing_unlicensed", "P-AURORA", "AUR", {CHORALE: 70, TUNE: 60}),
    Situation("generate_only", "P-TIDEWATER", "TDW", {CHORALE: 70, TUNE: 60}),
    Situation("expired", "P-OLDFIELD", "OLD", {CHORALE: 80, TUNE: 50}),
    Situation("territory_limited", "P-AURORA", "AUR", {CHORALE: 80, TUNE: 50}),
    Situation("artist_optout", "P-AURORA", "AUR", {CHORALE: 0, TUNE: 60}),
    Situation("co_owned_unsigned", "P-KESTREL", "FEN", {CHORALE: 0, TUNE: 60}),
)
"""Every situation, most common first. Co-owned recordings are Fenwick releases (FEN)
in which Kestrel holds the majority share."""

SITUATION_BY_NAME = {s.name: s for s in SITUATIONS}


def _base_situation(piece_id: str, kind: str) -> str:
    point = stable_fraction(piece_id, "situation") * 1000
    for situation in SITUATIONS:
        point -= situation.weights[kind]
        if point < 0:
            return situation.name
    return SITUATIONS[0].name


def assign_situations(pieces: list[tuple[str, str]]) -> dict[str, str]:
    """Situation per piece id, for ``(piece id, chorale|tune)`` pairs.

    Each piece's situation comes from a stable hash of its id; then every situation
    missing from a small build takes the licensed piece that fits it with the lowest
    hash, as long as a licensed piece remains.
    """
    kinds = dict(pieces)
    chosen = {pid: _base_situation(pid, kind) for pid, kind in sorted(pieces)}
    order = sorted(kinds, key=lambda pid: (stable_fraction(pid, "fill"), pid))
    for situation in SITUATIONS[1:]:
        if situation.name in chosen.values():
            continue
        licensed = [p for p in order if chosen[p] == "licensed"]
        fits = [p for p in licensed if situation.weights[kinds[p]] > 0]
        if fits and len(licensed) > 1:
            chosen[fits[0]] = situation.name
    return chosen


def _pick(options: list[Any], piece_id: str, salt: str) -> Any:
    return options[int(stable_fraction(piece_id, salt) * len(options))]


def artist_for(piece_id: str, kind: str, situation: str) -> Artist:
    """The performer of a piece, from its situation's label (Quinlan only for her own)."""
    if situation == "artist_optout":
        return next(a for a in ARTISTS if a.party_id == QUINLAN)
    # co-owned recordings are Kestrel and Fenwick players together
    co_owned = situation == "co_owned_unsigned"
    labels = {"P-KESTREL", "P-FENWICK"} if co_owned else {SITUATION_BY_NAME[situation].label}
    options = [a for a in ARTISTS if a.label in labels and a.repertoire == kind and a.party_id != QUINLAN]
    return _pick(options, piece_id, "artist")


def master_shares(situation: str) -> list[tuple[str, int]]:
    """Master owners in ppm, sorted by party id."""
    if situation == "co_owned_unsigned":
        return [("P-FENWICK", 400_000), ("P-KESTREL", 600_000)]
    return [(SITUATION_BY_NAME[situation].label, 1_000_000)]


_LICENSED_SPLITS: tuple[tuple[tuple[str, int], ...], ...] = (
    (("P-NORTHSTAR", 1_000_000),),
    (("P-NORTHSTAR", 1_000_000),),
    (("P-NORTHSTAR", 500_000), (ARRANGER, 500_000)),
    (("P-NORTHSTAR", 666_667), (ARRANGER, 333_333)),
)
_HARBOUR_SPLITS: tuple[tuple[tuple[str, int], ...], ...] = (
    (("P-HARBOUR", 1_000_000),),
    (("P-HARBOUR", 500_000), ("P-NORTHSTAR", 500_000)),
)
_GREENHILL_SPLITS: tuple[tuple[tuple[str, int], ...], ...] = (
    (("P-GREENHILL", 1_000_000),),
    (("P-GREENHILL", 333_334), ("P-NORTHSTAR", 333_333), (ARRANGER, 333_333)),
)


def publishing_shares(piece_id: str, kind: str, situation: str) -> list[tuple[str, int]]:
    """Publishing owners of the piece's work in ppm, sorted by party id.

    Chorales are Bach's own (no arranger); tunes may carry the arranger's share.
    """
    if situation == "publishing_unlicensed":
        splits = _HARBOUR_SPLITS
    elif situation == "territory_limited":
        splits = _GREENHILL_SPLITS
    else:
        splits = _LICENSED_SPLITS
    if kind == CHORALE:
        splits = tuple(s for s in splits if all(p != ARRANGER for p, _ in s))
    return sorted(_pick(list(splits), piece_id, "split"))


def writers_for(collection: str, shares: list[tuple[str, int]]) -> list[str]:
    """The work's writers: Bach, or Traditional with the book's collector (and arranger)."""
    names = {"P-WRITER-BACH"} if collection == "bach" else {"P-WRITER-TRAD", _COLLECTORS[collection]}
    names |= {p for p, _ in shares if p == ARRANGER}
    return sorted(names)
