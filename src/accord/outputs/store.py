"""Creators, outputs and usage events in the SQL store.

Usage events are idempotent by event id (the same event sent twice counts once) and never
edited; the royalties run consumes them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select

from accord.errors import NotFound, ValidationError
from accord.outputs.plans import Plan, check_download, parse_plans
from accord.registry.fields import is_country
from accord.registry.schema import Base
from accord.registry.store import Store
from accord.settings import Settings

T = Base.metadata.tables
EVENT_KINDS = ("generation", "play", "stream", "download")


@dataclass(frozen=True)
class Creator:
    """An end user who generates music.

    Attributes:
        creator_id: its id.
        plan: its plan's name.
        territory: ISO 3166-1 alpha-2 territory where it uses the service.
    """

    creator_id: str
    plan: str
    territory: str


@dataclass(frozen=True)
class Output:
    """A released generated piece.

    Attributes:
        output_id: its id.
        model_id: the model that made it.
        creator_id: who asked for it.
        created_at: when.
        prompt: the conditions asked for.
        seed: the sampling seed.
        files: kind → ``{"sha256": ..., "name": ...}`` (midi, audio, pianoroll, credential).
        credential: the content credential's content (public: what is signed, sidecar and C2PA alike).
        attribution: the private record of its attribution
            (:meth:`accord.attribution.disclosure.Published.private_record`: the full attribution and
            guard record, and the openings of the credential's commitments); ``None`` for an output
            stored before the credential carried a public form (its credential holds the full one).
    """

    output_id: str
    model_id: str
    creator_id: str
    created_at: datetime
    prompt: dict[str, Any]
    seed: int
    files: dict[str, Any]
    credential: dict[str, Any]
    attribution: dict[str, Any] | None = None


def add_creator(store: Store, creator_id: str, plan: str, territory: str, plans: dict[str, Plan]) -> Creator:
    """Register a creator (the same registration twice changes nothing)."""
    if plan not in plans:
        msg = f"plan: {plan!r} is not one of {', '.join(sorted(plans))}"
        raise ValidationError(msg, field="plan", value=plan)
    if not is_country(territory):
        msg = f"territory: {territory!r} is not an ISO 3166-1 alpha-2 code"
        raise ValidationError(msg, field="territory", value=territory)
    existing = find_creator(store, creator_id)
    creator = Creator(creator_id, plan, territory.upper())
    if existing is not None:
        if existing != creator:
            msg = f"creator {creator_id!r} exists with plan {existing.plan} in {existing.territory}"
            raise ValidationError(msg, field="creator", value=creator_id)
        return existing
    with store.engine.begin() as conn:
        conn.execute(
            insert(T["creators"]).values(
                creator_id=creator_id, plan=plan, territory=creator.territory, created_at=store.clock()
            )
        )
    return creator


def find_creator(store: Store, creator_id: str) -> Creator | None:
    with store.engine.connect() as conn:
        r = conn.execute(select(T["creators"]).where(T["creators"].c.creator_id == creator_id)).mappings().first()
    return Creator(r["creator_id"], r["plan"], r["territory"]) if r else None


def get_creator(store: Store, creator_id: str) -> Creator:
    creator = find_creator(store, creator_id)
    if creator is None:
        msg = f"creator {creator_id!r}: not registered (accord creator add)"
        raise NotFound(msg)
    return creator


def save_output(store: Store, output: Output) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            insert(T["outputs"]).values(
                output_id=output.output_id,
                model_id=output.model_id,
                creator_id=output.creator_id,
                created_at=output.created_at,
                prompt=output.prompt,
                seed=output.seed,
                files=output.files,
                credential=output.credential,
                attribution=output.attribution,
            )
        )


def _output(r: Any) -> Output:
    return Output(
        r["output_id"],
        r["model_id"],
        r["creator_id"],
        r["created_at"],
        r["prompt"],
        r["seed"],
        r["files"],
        r["credential"],
        r["attribution"],
    )


def get_output(store: Store, output_id: str) -> Output:
    with store.engine.connect() as conn:
        r = conn.execute(select(T["outputs"]).where(T["outputs"].c.output_id == output_id)).mappings().first()
    if r is None:
        msg = f"output {output_id!r}: not found"
        raise NotFound(msg)
    return _output(r)


def list_outputs(store: Store, *, creator_id: str | None = None) -> list[Output]:
    q = select(T["outputs"]).order_by(T["outputs"].c.created_at, T["outputs"].c.output_id)
    if creator_id is not None:
        q = q.where(T["outputs"].c.creator_id == creator_id)
    with store.engine.connect() as conn:
        return [_output(r) for r in conn.execute(q).mappings()]


def record_event(
    store: Store, kind: str, output: Output, creator: Creator, *, at: datetime, event_id: str | None = None
) -> bool:
    """Append a usage event; ``False`` if an event with this id was already recorded (idempotent).

    The SQL row is the platform's outbox (download allowances count it); every royalty run
    (and ``accord usage sync``) lands these events in the Parquet usage log by the same id,
    through :func:`accord.royalties.usage.sync_platform_events`, so they count once.
    """
    if kind not in EVENT_KINDS:
        msg = f"kind: {kind!r} is not one of {', '.join(EVENT_KINDS)}"
        raise ValidationError(msg, field="kind", value=kind)
    event_id = (
        event_id
        or hashlib.sha256(f"{kind}|{output.output_id}|{creator.creator_id}|{at.isoformat()}".encode()).hexdigest()[:32]
    )
    t = T["usage_events"]
    with store.engine.begin() as conn:
        if conn.execute(select(t.c.event_id).where(t.c.event_id == event_id)).first() is not None:
            return False
        conn.execute(
            insert(t).values(
                event_id=event_id,
                kind=kind,
                at=at,
                creator_id=creator.creator_id,
                output_id=output.output_id,
                model_id=output.model_id,
                territory=creator.territory,
            )
        )
    return True


def events(store: Store, *, output_id: str | None = None) -> list[dict[str, Any]]:
    t = T["usage_events"]
    q = select(t).order_by(t.c.at, t.c.event_id)
    if output_id is not None:
        q = q.where(t.c.output_id == output_id)
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def downloads_in_month(store: Store, creator_id: str, at: datetime) -> int:
    start = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    t = T["usage_events"]
    q = select(func.count()).where(t.c.creator_id == creator_id, t.c.kind == "download", t.c.at >= start, t.c.at < end)
    with store.engine.connect() as conn:
        return int(conn.execute(q).scalar_one())


def authorise_download(store: Store, settings: Settings, output_id: str, creator_id: str) -> tuple[Output, Creator]:
    """Check the creator's plan allows one more download of its own output now; record the event."""
    output = get_output(store, output_id)
    creator = get_creator(store, creator_id)
    if output.creator_id != creator.creator_id:
        msg = f"output {output_id!r}: not found"  # another creator's output: do not reveal it exists
        raise NotFound(msg)
    plans = parse_plans(settings.plans)
    plan = plans.get(creator.plan)
    if plan is None:
        msg = f"creator {creator_id!r}: plan {creator.plan!r} is no longer configured"
        raise ValidationError(msg, field="plan", value=creator.plan)
    now = store.clock()
    check_download(plan, downloads_in_month(store, creator.creator_id, now))
    record_event(store, "download", output, creator, at=now)
    return output, creator
