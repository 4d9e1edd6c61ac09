"""Isolation: no party reads, lists or changes another party's objects, on any operation of the API or portal.

One registry per backend (SQLite and PostgreSQL), seeded once through the real store: two rights
holders (``one`` and ``two``, each with recordings, works, agreements, an opt-out, bank details,
a manifest of its own beside a shared one, a model, an output attributed to it and a statement of
a closed royalty period), a co-owner that asked not to be named, two creators and the operator.

The sweep is driven by the app's own ``/openapi.json``: every operation must have a rule in
:data:`RULES` (a new route without one fails :func:`test_every_operation_has_a_rule`). Each operation
is called as every role with path parameters taken from every *other* party's objects and from ids
that do not exist:

* another's object answers exactly as a missing one (same status, same body apart from the id);
* no answer to anyone names what is not theirs (ISRCs, ISWCs, IBANs, agreement, opt-out and output ids,
  another's manifest root, and any name of a ``disclose: false`` party);
* a write on another's object, or naming another party in its body, is refused, and afterwards every
  table, the media store and the outputs folder are exactly as before;
* an operator-only operation answers 403 to every other role.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import product
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text

from accord.api import services
from accord.api.app import create_app
from accord.api.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Role,
    authenticate,
    create_key,
    csrf_token_for,
    session_cookie_for,
)
from accord.datasets import repository, service
from accord.errors import NotFound
from accord.identifiers import make_iswc
from accord.jobs.queue import create_job
from accord.outputs import store as outputs
from accord.outputs.plans import parse_plans
from accord.registry.bank import set_bank_details
from accord.registry.entities import MediaRef
from accord.registry.schema import Base
from accord.registry.store import ChangeSet, Store
from accord.royalties.run import close_period, run_period
from accord.royalties.usage import ingest_events
from accord.settings import Settings
from accord.signing import ensure_operator_key
from accord.web import pages_creator, pages_operator, pages_rights, session, views
from tests import factories as f
from tests.conftest import TickingClock
from tests.deliveries import MIDI_A, write_delivery

log = logging.getLogger(__name__)
PERIOD = "2026-11"
AT = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
R1, R1H, R2 = "GBONE2600001", "GBONE2600002", "GBTWO2600001"
ISWC1, ISWC2 = make_iswc(111_111_111), make_iswc(222_222_222)
IBAN1, IBAN2 = "DE89370400440532013000", "DE62370400440532013001"
HIDDEN_NAME = "Hush Holdings Ltd"
ROLES = ("one", "two", "c1", "c2", "ops")
PARTY = {"one": "P-ONE", "two": "P-TWO", "c1": "C-1", "c2": "C-2", "ops": "ops"}
NOBODY: frozenset[str] = frozenset()
MISSING = {
    "isrc": "GBNON2699999",
    "agreement_id": "AGR-NOPE",
    "optout_id": "OPT-NOPE",
    "artist_id": "P-NOPE",
    "root": "0" * 64,
    "other": "0" * 64,
    "model_id": "M-NOPE",
    "output_id": "OUT-NOPE",
    "job_id": "JOB-00000000000000AA",
    "key_id": "00000000000000aa",
    "party_id": "P-NOPE",
    "transfer_id": "T-NOPE",
}


# ---------------------------------------------------------------- the registry


def registry() -> Any:
    """Two rights holders' catalogs; one recording of ``one`` co-owned with a party that asked not to be named."""
    cat = f.catalog(
        f.recording(R1, {"P-ONE": 100}, ["WORK-ONE"], ["P-ART1"], title="Ballad Of One"),
        f.recording(R1H, {"P-ONE": 50, "P-HUSH": 50}, ["WORK-ONE"], title="Hushed Duet"),
        f.recording(R2, {"P-TWO": 100}, ["WORK-TWO"], ["P-ART2"], title="Anthem Of Two"),
        f.work("WORK-ONE", {"P-ONE": 100}, iswc=ISWC1),
        f.work("WORK-TWO", {"P-TWO": 100}, iswc=ISWC2),
        f.agreement("AGR-1M", "P-ONE", pool_share=50),
        f.agreement("AGR-1P", "P-ONE", "publishing", pool_share=50),
        f.agreement("AGR-2M", "P-TWO", pool_share=50),
        f.agreement("AGR-2P", "P-TWO", "publishing", pool_share=50),
        f.agreement("AGR-HUSH", "P-HUSH", uses=("train", "generate"), pool_share=50),
        f.optout("OPT-1", "P-ONE", target=R1, uses=("remix",), effective=datetime(2026, 6, 1, tzinfo=UTC)),
        f.optout("OPT-2", "P-TWO", target=R2, uses=("remix",), effective=datetime(2026, 6, 1, tzinfo=UTC)),
    )
    parties = {**cat.parties, "P-HUSH": replace(cat.parties["P-HUSH"], name=HIDDEN_NAME, disclose=False)}
    recs = {
        k: replace(r, media=(MediaRef(hashlib.sha256(k.encode()).hexdigest(), "midi", 100, f"{k}.mid"),))
        for k, r in cat.recordings.items()
    }
    return replace(cat, parties=parties, recordings=recs)


def attribution(isrc: str) -> dict[str, Any]:
    return {
        "status": "computed",
        "method": "test",
        "method_version": "1",
        "reliable": True,
        "unattributed_ppm": 200_000,
        "items": [{"isrc": isrc, "weight_ppm": 800_000}],
    }


def usage() -> list[dict[str, Any]]:
    at = AT.isoformat()
    plays = [
        {"event_id": f"p-{oid}", "kind": "play", "timestamp": at, "creator": creator, "output_id": oid,
         "model_id": "M-ALL", "territory": "GB"}
        for oid, creator in (("OUT-1111", "C-1"), ("OUT-2222", "C-2"))
    ]  # fmt: skip
    revenue = {"event_id": "rev", "kind": "revenue", "timestamp": at, "amount": "100.00", "currency": "EUR",
               "period": PERIOD, "source": "subscription", "territory": "GB"}  # fmt: skip
    return [*plays, revenue]


@dataclass
class World:
    """The seeded registry, its app, each role's key and session, and the objects each may see."""

    client: TestClient
    store: Store
    settings: Settings
    keys: dict[str, str]
    cookies: dict[str, str]
    values: dict[str, list[tuple[str, frozenset[str]]]] = field(default_factory=dict)
    secrets: list[tuple[str, frozenset[str]]] = field(default_factory=list)
    public: frozenset[str] = frozenset()

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def forbidden_to(self, role: str) -> list[str]:
        """The strings no answer to ``role`` may contain."""
        return [] if role == "ops" else [s for s, seen_by in self.secrets if role not in seen_by]


def seed(store: Store, settings: Settings) -> World:
    cat = registry()
    store.apply(
        ChangeSet(
            parties=tuple(cat.parties.values()),
            works=tuple(cat.works.values()),
            recordings=tuple(cat.recordings.values()),
            agreements=tuple(cat.agreements.values()),
            optouts=tuple(cat.optouts.values()),
        ),
        actor="test",
        action="test.delivery",
    )
    key, _ = ensure_operator_key(settings.home)
    now = store.clock()
    roots = {}
    for name, isrcs in (("all", None), ("one", (R1,)), ("two", (R2,))):
        filters = () if isrcs is None else (("isrc", isrcs),)
        manifest, _, _ = service.build(store, key, use="train", as_of=now, territory="GB", filters=filters)
        roots[name] = manifest.root
        repository.register_model(store, f"M-{name.upper()}", manifest.root, card={}, actor="test")
    plans = parse_plans(settings.plans)
    for creator, oid, isrc in (("C-1", "OUT-1111", R1), ("C-2", "OUT-2222", R2)):
        outputs.add_creator(store, creator, "pro", "GB", plans)
        files = {
            "midi": {"sha256": store.media.put_bytes(MIDI_A + oid.encode()), "name": f"{oid}.mid"},
            "audio": {"sha256": hashlib.sha256(oid.encode()).hexdigest(), "name": f"{oid}.wav"},  # never stored
        }
        cred = {"attribution": attribution(isrc)}
        outputs.save_output(store, outputs.Output(oid, "M-ALL", creator, AT, {"style": "reel"}, 1, files, cred))
    for party, iban in (("P-ONE", IBAN1), ("P-TWO", IBAN2)):
        holder = f"Holder {party}"
        set_bank_details(store, party, iban=iban, bic="", holder=holder, currency="EUR", caller="ops", operator=True)
    ingest_events(store, settings, usage())
    run_period(store, settings, PERIOD)
    close_period(store, settings, PERIOD)
    jobs = {c: create_job(store, "generation", PARTY[c], {"model_id": "M-ALL"}).job_id for c in ("c1", "c2")}
    keys, key_ids = {}, {}
    for role, kind in (("one", "rights_holder"), ("two", "rights_holder"), ("c1", "creator"), ("c2", "creator")):
        record, keys[role] = create_key(store, role=kind, party_id=PARTY[role])
        key_ids[role] = record.key_id
    keys["ops"] = create_key(store, role="operator", party_id="ops")[1]
    cookies = {role: session_cookie_for(secret, settings) for role, secret in keys.items()}
    one, two, c1, c2 = (frozenset({r}) for r in ("one", "two", "c1", "c2"))
    both, creators = one | two, c1 | c2
    world = World(TestClient(create_app(settings, store=store)), store, settings, keys, cookies)
    world.values = {
        "isrc": [(R1, one), (R1H, one), (R2, two)],
        "agreement_id": [("AGR-1M", one), ("AGR-2M", two), ("AGR-HUSH", NOBODY)],
        "optout_id": [("OPT-1", one), ("OPT-2", two)],
        "artist_id": [("P-ART1", one), ("P-ART2", two)],
        "root": [(roots["all"], both), (roots["one"], one), (roots["two"], two)],
        "other": [(roots["all"], both), (roots["one"], one), (roots["two"], two)],
        # A creator picks the model it generates with: every model, and the manifest root it names, is
        # shown to creators (each output's credential names them too); a rights holder sees those using its catalog.
        "model_id": [("M-ALL", both | creators), ("M-ONE", one | creators), ("M-TWO", two | creators)],
        "output_id": [("OUT-1111", c1 | one), ("OUT-2222", c2 | two)],
        "kind": [("midi", frozenset(ROLES)), ("audio", frozenset(ROLES))],  # audio: listed, not in the media store
        "job_id": [(jobs["c1"], c1), (jobs["c2"], c2)],
        "key_id": [(key_ids["one"], one), (key_ids["two"], two), (key_ids["c1"], c1)],
        "party_id": [("P-ONE", one), ("P-TWO", two), ("P-HUSH", NOBODY)],
        "period": [(PERIOD, frozenset(ROLES))],
        "fmt": [("csv", frozenset(ROLES)), ("json", frozenset(ROLES))],
        "currency": [("EUR", frozenset(ROLES))],
        "transfer_id": [(_a_transfer(store), NOBODY)],
    }
    # A training summary is published: it names each disclosed licensor and the agreements its items rely on.
    world.public = frozenset({"AGR-1M", "AGR-1P", "AGR-2M", "AGR-2P"})
    world.secrets = [
        # A creator sees the recordings its own output is attributed to (its credential's attribution).
        *((s, one | c1) for s in (R1, "GB-ONE-26-00001")),
        *((s, two | c2) for s in (R2, "GB-TWO-26-00001")),
        *((s, one) for s in (R1H, ISWC1, IBAN1, "AGR-1M", "AGR-1P", "OPT-1")),
        *((s, two) for s in (ISWC2, IBAN2, "AGR-2M", "AGR-2P", "OPT-2")),
        (roots["one"], one | creators),
        (roots["two"], two | creators),
        ("OUT-1111", c1 | one),
        ("OUT-2222", c2 | two),
        (jobs["c1"], c1),
        (jobs["c2"], c2),
        *((s, NOBODY) for s in ("P-HUSH", HIDDEN_NAME, "AGR-HUSH")),
    ]
    return world


def _a_transfer(store: Store) -> str:
    transfers = Base.metadata.tables["ledger_transfers"]
    with store.engine.connect() as conn:
        return str(conn.execute(select(transfers.c.transfer_id).limit(1)).scalar_one())


def registry_settings(backend: str, home: Path, request: pytest.FixtureRequest, sqlite_template: Path) -> Settings:
    """Settings for an empty, migrated registry on ``backend`` in ``home``, for a module's whole run
    (the ``settings`` fixture's twin: one registry per module instead of per test)."""
    if backend == "sqlite":
        shutil.copy(sqlite_template, home / "accord.db")
        return Settings(home=home, database_url="")
    url, why_not = request.getfixturevalue("pg_database")
    if url is None:
        pytest.skip(why_not)
    engine = create_engine(Settings(home=home, database_url=url).resolved_database_url)
    with engine.begin() as conn:
        names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return Settings(home=home, database_url=url)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[World]:
    """One seeded registry per backend for the whole module (the sweep writes nothing it may not)."""
    home = tmp_path_factory.mktemp(f"isolation-{request.param}")
    settings = registry_settings(request.param, home, request, sqlite_template)
    store = Store.open(settings, clock=TickingClock(), migrate=False)
    w = seed(store, settings)
    with w.client:
        yield w
    store.close()


DERIVED = ("decisions", "taint_states")  # materialised reads, recomputed from the registry when stale


def dump(w: World) -> dict[str, Any]:
    """Every row of every table, and every file under the home folder (media, outputs), by content."""
    tables: dict[str, Any] = {}
    with w.store.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name in DERIVED:
                continue
            rows = conn.execute(select(table)).all()
            tables[table.name] = sorted(repr(tuple(r)) for r in rows)
    files = {
        str(p.relative_to(w.settings.home)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(w.settings.home.rglob("*"))
        if p.is_file() and not p.name.startswith("accord.db")
    }
    return {"tables": tables, "files": files}


def changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    names = [f"table {t}" for t in before["tables"] if before["tables"][t] != after["tables"][t]]
    return names + ([f"files {sorted(set(before['files'].items()) ^ set(after['files'].items()))}"]
                    if before["files"] != after["files"] else [])  # fmt: skip


# ---------------------------------------------------------------- the rules, one per operation


@dataclass(frozen=True)
class Rule:
    """How the sweep treats one operation.

    Attributes:
        kind: ``read`` (objects named in the path answer others as missing), ``write`` (the same, and
            nothing changes), ``operator`` (every other role gets 403), ``open`` (no object of anyone's
            is named: only no leak, no 5xx and nothing changed by a refused call).
        body: the request body as a role would send it against another party (``None``: none).
        public: the answer is a published document (the training summary): it may name what is
            published (:attr:`World.public`), never an undisclosed party.
    """

    kind: str
    body: Callable[[World, str, str], dict[str, Any]] | None = None
    public: bool = False


def _other_party(role: str) -> str:
    return {"one": "P-TWO", "two": "P-ONE", "c1": "C-2", "c2": "C-1"}.get(role, "P-NOPE")


def _other_isrc(role: str) -> str:
    return {"one": R2}.get(role, R1)


def _delivery(w: World, role: str, _target: str) -> dict[str, Any]:
    """A delivery in the caller's name that claims another party's recording and renames that party."""
    doc = {
        "accord_delivery": "1.0",
        "delivery_id": f"CLAIM-{role}",
        "sender": PARTY[role],
        "created": "2026-12-01T00:00:00Z",
        "sources": [],
        "parties": [
            {"id": PARTY[role], "kind": "label", "name": "Claimant"},
            {"id": _other_party(role), "kind": "label", "name": "Renamed By Another"},  # a party change
        ],
        "works": [
            {
                "id": f"WORK-{role}",
                "title": "Claimed",
                "writers": [],
                "shares": [{"party": PARTY[role], "share": "100"}],
            }
        ],
        "recordings": [
            {
                "isrc": _other_isrc(role),
                "title": "Claimed",
                "artists": [],
                "duration_ms": 1000,
                "works": [f"WORK-{role}"],
                "shares": [{"party": PARTY[role], "share": "100"}],
                "media": [{"path": "media/a.mid", "kind": "midi"}],
            }
        ],
        "agreements": [],
        "optouts": [],
    }
    folder = write_delivery(w.settings.home.parent / f"claim-{role}", doc, media={"media/a.mid": MIDI_A})
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        for name in ("catalog.json", "media/a.mid"):
            z.write(folder / name, name)
    return {"files": {"archive": ("claim.zip", archive.getvalue(), "application/zip")}}


def _json(make: Callable[[str, str], dict[str, Any]]) -> Callable[[World, str, str], dict[str, Any]]:
    return lambda _w, role, target: {"json": make(role, target)}


TERMS = {"pool_share": "30"}
RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/health"): Rule("open"),
    ("GET", "/v1/me"): Rule("open"),
    ("POST", "/v1/api-keys"): Rule(
        "operator", _json(lambda r, _t: {"role": "rights_holder", "party_id": _other_party(r)})
    ),
    ("GET", "/v1/api-keys"): Rule("read"),
    ("POST", "/v1/api-keys/{key_id}/revoke"): Rule("write"),
    ("GET", "/v1/audit-events"): Rule("read"),
    ("GET", "/v1/registry-log"): Rule("read"),
    ("POST", "/v1/deliveries"): Rule("write", _delivery),
    ("GET", "/v1/deliveries"): Rule("read"),
    ("GET", "/v1/catalog/summary"): Rule("read"),
    ("GET", "/v1/recordings"): Rule("read"),
    ("GET", "/v1/recordings/{isrc}"): Rule("read"),
    ("GET", "/v1/recordings/{isrc}/eligibility"): Rule("read"),
    ("GET", "/v1/agreements"): Rule("read"),
    ("POST", "/v1/agreements"): Rule(
        "write",
        _json(
            lambda r, _t: {
                "id": "AGR-FORGED",
                "licensor": _other_party(r),
                "side": "master",
                "uses": ["train"],
                "territory": {"worldwide": True},
                "start": "2026-12-01",
                "coverage": {"catalog": True},
                "terms": TERMS,
            }
        ),
    ),
    ("GET", "/v1/agreements/{agreement_id}"): Rule("read"),
    ("POST", "/v1/agreements/{agreement_id}/end"): Rule("write", _json(lambda _r, _t: {"at": "2026-12-01"})),
    ("GET", "/v1/optouts"): Rule("read"),
    ("POST", "/v1/optouts"): Rule(
        "write",
        _json(
            lambda r, _t: {
                "party": _other_party(r),
                "scope": "recording",
                "target": _other_isrc(r),
                "uses": ["train"],
                "effective": "2026-12-01",
            }
        ),
    ),
    ("GET", "/v1/optouts/{optout_id}"): Rule("read"),
    ("POST", "/v1/artists/{artist_id}/optout"): Rule(
        "write", _json(lambda r, _t: {"party": PARTY[r], "effective": "2026-12-01"})
    ),
    ("GET", "/v1/manifests"): Rule("read"),
    ("POST", "/v1/manifests"): Rule("operator", _json(lambda _r, _t: {"use": "train", "territory": "GB"})),
    ("GET", "/v1/manifests/{root}"): Rule("read"),
    ("GET", "/v1/manifests/{root}/summary"): Rule("read", public=True),
    ("GET", "/v1/manifests/{root}/diff/{other}"): Rule("read"),
    ("GET", "/v1/manifests/{root}/proofs"): Rule("read"),
    ("GET", "/v1/manifests/{root}/proofs/{isrc}"): Rule("read"),
    ("POST", "/v1/proofs/verify"): Rule(
        "open", _json(lambda _r, _t: {"proof": {}, "root": "0" * 64, "public_key": "11" * 32})
    ),
    ("GET", "/v1/models"): Rule("read"),
    ("POST", "/v1/models"): Rule("operator", _json(lambda _r, _t: {"model_id": "M-FORGED", "manifest": "0" * 64})),
    ("GET", "/v1/models/{model_id}"): Rule("read"),
    ("POST", "/v1/models/{model_id}/approvals"): Rule(
        "write", _json(lambda r, _t: {"approve": False, "licensor": _other_party(r)})
    ),
    ("GET", "/v1/taint"): Rule("read"),
    ("POST", "/v1/trainings"): Rule("operator", _json(lambda _r, _t: {"manifest": "0" * 64})),
    ("POST", "/v1/models/{model_id}/evaluations"): Rule("operator", _json(lambda _r, _t: {})),
    ("POST", "/v1/models/{model_id}/retrainings"): Rule("operator", _json(lambda _r, _t: {})),
    ("POST", "/v1/creators"): Rule("operator", _json(lambda r, _t: {"creator_id": _other_party(r)})),
    ("GET", "/v1/creators/me"): Rule("open"),
    ("POST", "/v1/generations"): Rule(
        "write", _json(lambda r, _t: {"model_id": "M-ALL", "style": "reel", "creator_id": _other_party(r)})
    ),
    ("GET", "/v1/jobs"): Rule("read"),
    ("GET", "/v1/jobs/{job_id}"): Rule("read"),
    ("GET", "/v1/outputs"): Rule("read"),
    ("GET", "/v1/outputs/{output_id}"): Rule("read"),
    ("GET", "/v1/outputs/{output_id}/files/{kind}"): Rule("read"),
    ("GET", "/v1/outputs/{output_id}/stream"): Rule("read"),
    ("POST", "/v1/outputs/{output_id}/plays"): Rule("write"),
    ("POST", "/v1/outputs/{output_id}/download"): Rule("write"),
    ("GET", "/v1/usage"): Rule("read"),
    ("POST", "/v1/credentials/verify"): Rule(
        "open", lambda _w, _r, _t: {"files": {"file": ("x.wav", b"RIFF", "audio/wav")}}
    ),
    ("POST", "/v1/usage-events"): Rule(
        "operator", _json(lambda _r, _t: {"events": [{**usage()[-1], "event_id": "forged"}]})
    ),
    ("POST", "/v1/usage-events/sync"): Rule("operator"),
    ("GET", "/v1/royalty-periods/{period}"): Rule("operator"),
    ("POST", "/v1/royalty-periods/{period}/runs"): Rule("operator"),
    ("POST", "/v1/royalty-periods/{period}/close"): Rule("operator"),
    ("GET", "/v1/statements"): Rule("read"),
    ("GET", "/v1/statements/{period}/{currency}"): Rule("read"),
    ("GET", "/v1/ledger/verify"): Rule("operator"),
    ("POST", "/v1/royalty-periods/{period}/payouts"): Rule("operator"),
    ("GET", "/v1/ledger/balances"): Rule("read"),
    ("POST", "/v1/ledger/transfers/{transfer_id}/reverse"): Rule(
        "operator", _json(lambda _r, _t: {"reason": "other", "period": "2026-12"})
    ),
    ("PUT", "/v1/parties/{party_id}/bank-details"): Rule(
        "write", _json(lambda _r, _t: {"iban": "GB33BUKB20201555555555", "holder": "Forger", "currency": "EUR"})
    ),
    ("GET", "/v1/parties/{party_id}/bank-details"): Rule("read"),
    ("POST", "/v1/guard/checks"): Rule("open", lambda _w, _r, _t: {"files": {"file": ("x.mid", MIDI_A, "audio/midi")}}),
    ("POST", "/v1/attributions"): Rule(
        "open", lambda _w, r, _t: {"files": {"file": ("x.mid", MIDI_A, "audio/midi")}, "data": {"model_id": "M-NOPE"}}
    ),
    ("POST", "/v1/models/{model_id}/attribution-index"): Rule("operator", _json(lambda _r, _t: {})),
}
_PARAM = re.compile(r"\{([^}]+)\}")
SERVER_PATH = tempfile.gettempdir() + "/"  # the test's home and any upload folder lie under it


def operations(w: World) -> list[tuple[str, str, dict[str, Any]]]:
    schema = w.client.get("/openapi.json").json()
    return [(m.upper(), p, op) for p, ops in schema["paths"].items() for m, op in ops.items()]


def test_every_operation_has_a_rule(world: World) -> None:
    ops = {(m, p) for m, p, _ in operations(world)}
    assert ops - set(RULES) == set(), "an operation without an isolation rule: add it to RULES"
    assert set(RULES) - ops == set(), "a rule for an operation that no longer exists"


# ---------------------------------------------------------------- the sweep


@dataclass
class Call:
    role: str
    method: str
    url: str
    status: int
    body: str
    sent: str  # the url and body the caller sent: what it names itself is no leak when echoed


def call(w: World, role: str, method: str, path: str, params: dict[str, str], rule: Rule, query: str = "") -> Call:
    url = _PARAM.sub(lambda m: params[m.group(1)], path) + query
    extra = rule.body(w, role, params.get("isrc", "")) if rule.body else {}
    r = w.client.request(method, url, headers=w.headers(role), **extra)
    log.debug("%s %s %s -> %s %s", role, method, url, r.status_code, r.text[:160])
    sent = url + json.dumps(extra.get("json")) + repr(extra.get("files", ""))
    return Call(role, method, url, r.status_code, r.text, sent)


def targets(w: World, role: str, path: str, *, mine: bool) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """(another's values, the same with each of another's values replaced by a missing id) for ``path``;
    with ``mine``, the role's own values too (the same twice: only what the answer shows is checked)."""
    names = _PARAM.findall(path)
    choices = [w.values[n] for n in names]
    for combo in product(*choices):
        if all(role in seen_by or role == "ops" for _, seen_by in combo) and not mine:
            continue
        real = {n: v for n, (v, _) in zip(names, combo, strict=True)}
        missing = {n: (v if role in seen_by else MISSING[n]) for n, (v, seen_by) in zip(names, combo, strict=True)}
        yield real, missing


def leaks(w: World, c: Call, rule: Rule) -> list[str]:
    """What ``c``'s answer shows that is not its caller's, beyond what the caller itself sent
    (and, in a published document, what is published)."""
    shown = [s for s in w.forbidden_to(c.role) if s in c.body and s not in c.sent]
    return [
        f"{c.role} {c.method} {c.url} -> {c.status} shows {s!r}" for s in shown if not (rule.public and s in w.public)
    ]


def same_answer(real: Call, real_ids: dict[str, str], missing: Call, missing_ids: dict[str, str]) -> bool:
    a, b = real.body, missing.body
    for name in real_ids:
        a = a.replace(real_ids[name], "<id>")
        b = b.replace(missing_ids[name], "<id>")
    return real.status == missing.status and a == b


def sweep(w: World, kinds: set[str]) -> list[str]:
    problems: list[str] = []
    before = dump(w)
    for method, path, op in operations(w):
        rule = RULES[(method, path)]
        if rule.kind not in kinds:
            continue
        for role in ROLES:
            has_params = bool(_PARAM.search(path))
            if role == "ops" and method != "GET" and (not has_params or rule.kind == "operator"):
                continue  # the operator's own writes succeed by design; swept only against missing ids below
            cases = list(targets(w, role, path, mine=method == "GET")) if has_params else [({}, {})]
            if role == "ops" and has_params:
                gone = {n: MISSING.get(n, w.values[n][0][0]) for n in _PARAM.findall(path)}
                cases = [(gone, gone)]
            queries = [""]
            if any(p["name"] == "party" for p in op.get("parameters", [])):
                queries.append(f"?party={_other_party(role)}")
            for (real, missing), query in product(cases, queries):
                got = call(w, role, method, path, real, rule, query)
                problems += leaks(w, got, rule)
                if SERVER_PATH in got.body or str(w.settings.home) in got.body:
                    problems.append(f"{role} {method} {got.url} -> {got.status} shows a server path: {got.body[:200]}")
                if got.status >= 500:
                    problems.append(f"{role} {method} {got.url} -> {got.status}")
                if rule.kind == "write" and role != "ops" and got.status < 400:
                    problems.append(
                        f"{role} {method} {got.url} -> {got.status}: a write on another's object went through"
                    )
                if rule.kind == "operator" and role != "ops" and got.status != 403:
                    problems.append(f"{role} {method} {got.url} -> {got.status}, expected 403 (operator only)")
                if rule.kind in ("read", "write") and real != missing:
                    absent = call(w, role, method, path, missing, rule, query)
                    if not same_answer(got, real, absent, missing):
                        problems.append(
                            f"{role} {method} {got.url} -> {got.status} {got.body[:160]} but missing "
                            f"{absent.url} -> {absent.status} {absent.body[:160]}"
                        )
                if rule.kind != "open" and method != "GET" and (after := dump(w)) != before:
                    problems.append(f"{role} {method} {got.url} -> {got.status} changed {changed(before, after)}")
                    before = after
    if "open" not in kinds and (after := dump(w)) != before:
        problems.append(f"reads changed {changed(before, after)}")
    return problems


def test_reads_of_anothers_objects_answer_as_missing_and_show_nothing_of_theirs(world: World) -> None:
    problems = sweep(world, {"read", "open"})
    assert not problems, "\n".join(problems)


def test_writes_on_anothers_objects_are_refused_and_change_nothing(world: World) -> None:
    problems = sweep(world, {"write"})
    assert not problems, "\n".join(problems)


def test_operator_only_operations_refuse_every_other_role(world: World) -> None:
    problems = sweep(world, {"operator"})
    assert not problems, "\n".join(problems)


def test_the_seed_gives_each_party_its_own_objects(world: World) -> None:
    """The sweep means something only if each role does see its own (a 404 for everything would pass it)."""
    c = world.client
    assert [r["isrc"] for r in c.get("/v1/recordings", headers=world.headers("two")).json()["items"]] == [R2]
    for role, oid in (("c1", "OUT-1111"), ("one", "OUT-1111"), ("c2", "OUT-2222"), ("two", "OUT-2222")):
        assert c.get(f"/v1/outputs/{oid}", headers=world.headers(role)).status_code == 200
    for role, party in (("one", "P-ONE"), ("two", "P-TWO")):
        statements = c.get(f"/v1/statements?period={PERIOD}", headers=world.headers(role)).json()["items"]
        assert {s["party_id"] for s in statements} == {party}
        bank = c.get(f"/v1/parties/{party}/bank-details", headers=world.headers(role))
        assert bank.status_code == 200 and (IBAN1 if role == "one" else IBAN2) in bank.text
    assert json.loads(c.get("/v1/agreements/AGR-2M", headers=world.headers("two")).text)["id"] == "AGR-2M"


# ---------------------------------------------------------------- the portal

NONCE = "isolation-sweep-nonce"  # one browser nonce: every page carries the same CSRF token
PORTAL_MISSING = {**MISSING, "period": "2099-01", "fmt": "csv", "kind": "midi", "currency": "EUR"}


def portal_routes() -> list[tuple[str, str]]:
    """Every portal page and form with an object in its path (the routers :func:`accord.web.mount` adds)."""
    return sorted(
        (method, route.path)
        for module in (session, pages_rights, pages_creator, pages_operator)
        for route in module.router.routes
        if isinstance(route, APIRoute) and _PARAM.search(route.path)
        for method in route.methods
        if method in ("GET", "POST")
    )


def portal_call(w: World, role: str, method: str, path: str, params: dict[str, str]) -> Call:
    url = _PARAM.sub(lambda m: params[m.group(1)], path)
    # every form the portal has, filled in: the CSRF token, and a decision for a model approval
    data = {"csrf": csrf_token_for(w.settings, NONCE), "decision": "refuse"} if method == "POST" else None
    w.client.cookies.set(SESSION_COOKIE, w.cookies[role])
    w.client.cookies.set(CSRF_COOKIE, NONCE)
    try:
        r = w.client.request(method, url, data=data, follow_redirects=False)
    finally:
        w.client.cookies.clear()
    log.debug("portal %s %s %s -> %s", role, method, url, r.status_code)
    return Call(role, method, url, r.status_code, r.text, url)


def test_the_portal_shows_no_party_anothers_pages_and_changes_nothing_for_them(world: World) -> None:
    """Every portal page and form with an object in its path, as every signed-in role, with another's
    ids and with missing ones: the same answer (a 404 page), no other party's ids, nothing written."""
    problems: list[str] = []
    routes = portal_routes()
    assert len(routes) >= 14, routes
    before = dump(world)
    for (method, path), role in product(routes, ROLES):
        if role == "ops":
            continue  # the operator may see every object
        for real, _ in targets(world, role, path, mine=method == "GET"):
            missing = {n: (v if v not in dict(world.values[n]) or _visible(world, n, v, role) else PORTAL_MISSING[n])
                       for n, v in real.items()}  # fmt: skip
            got = portal_call(world, role, method, path, real)
            problems += leaks(world, got, RULES_PORTAL)
            if got.status >= 500 or SERVER_PATH in got.body:
                problems.append(f"portal {role} {method} {got.url} -> {got.status} {got.body[:160]}")
            if real != missing:
                absent = portal_call(world, role, method, path, missing)
                if not same_answer(got, real, absent, missing):
                    problems.append(
                        f"portal {role} {method} {got.url} -> {got.status} but {absent.url} -> {absent.status}"
                    )
            if method == "POST" and (after := dump(world)) != before:
                problems.append(f"portal {role} POST {got.url} -> {got.status} changed {changed(before, after)}")
                before = after
    assert not problems, "\n".join(problems)


RULES_PORTAL = Rule("read")


def _visible(w: World, name: str, value: str, role: str) -> bool:
    return any(v == value and role in seen_by for v, seen_by in w.values[name])


def test_a_missing_media_file_is_named_by_its_hash_never_by_a_server_path(world: World) -> None:
    """A message may travel to a client (an API error, a portal page): it names the file by its hash only."""
    wanted = "ab" * 32
    with pytest.raises(NotFound) as refused:
        world.store.media.open_path(wanted)
    message = str(refused.value)
    assert wanted in message
    assert SERVER_PATH not in message and str(world.settings.home) not in message


def test_the_api_and_the_portal_list_models_by_the_one_rule(world: World) -> None:
    """``visibility.may_see_model`` (through ``services.model_shown``) decides the models listed to each
    role, by the API and by the portal's model pages alike, and is what the world expects each to see."""
    models = repository.list_models(world.store)
    for role in ROLES:
        principal = authenticate(world.store, world.keys[role])
        shown = services.model_shown(world.store, principal)
        by_rule = {m.model_id for m in models if shown(m)}
        expected = {v for v, seen in world.values["model_id"] if role == "ops" or role in seen}
        listed = world.client.get("/v1/models", headers=world.headers(role)).json()["items"]
        assert by_rule == expected == {m["model_id"] for m in listed}, role
        if principal.role is not Role.CREATOR:  # the portal's model pages are the rights holders' and the operator's
            portal = {v.model.model_id for v in views.models_for(world.store, principal, world.store.clock())}
            assert portal == by_rule, role
