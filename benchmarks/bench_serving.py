"""Serving benchmark: recording detail, recording list and job submission under load, beside a bare app.

    python -m benchmarks.bench_serving [--recordings 100000] [--backends sqlite,postgresql]
        [--seconds 10] [--concurrency 32] [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

For each backend a registry of ``--recordings`` recordings is seeded directly through the store
(the registry benchmark's small delivery for parties, works and licences, then recordings and works
in batches of one :meth:`Store.apply` each), with a model trained on a one-item manifest and keys.
``uvicorn`` serves ``create_app`` from a subprocess on 127.0.0.1 (one process), and, in the same
run and the same way, a bare FastAPI app with the same route shapes (static answers, no auth, no
store): the ratio of the two is the cost of Accord's own work. An asyncio + httpx load generator
keeps ``--concurrency`` requests in flight per endpoint for ``--seconds``. Targets (issue 16):
>= 1,000 req/s and p99 <= 50 ms at concurrency 32 for every row.

On PostgreSQL a database ``accord_bench_serving`` is made on the server of ``--database-url`` and
dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, make_url, text

from accord.api.auth import create_key
from accord.datasets import repository, service
from accord.outputs import store as outputs
from accord.outputs.plans import parse_plans
from accord.registry.importer import import_delivery
from accord.registry.store import Store
from accord.registry.versioning import ChangeSet
from accord.settings import Settings
from accord.signing import ensure_operator_key
from benchmarks.bench_api import Result, free_port, load
from benchmarks.bench_registry import synthetic_delivery

TEMPLATES = 200  # recordings imported as a delivery; the rest are copies of them, seeded in batches
BATCH = 20_000
PG_DATABASE = "accord_bench_serving"


def _isrc(i: int) -> str:
    return f"ZZBEN26{i:05d}" if i < 100_000 else f"ZZBE{i // 100_000}26{i % 100_000:05d}"


def seed(settings: Settings, n: int) -> dict[str, Any]:
    """A registry of ``n`` recordings, a one-item manifest, a model, a creator and keys."""
    store = Store.open(settings)
    folder = settings.home / "delivery"
    folder.mkdir(parents=True)
    (folder / "catalog.json").write_text(json.dumps(synthetic_delivery(min(n, TEMPLATES))))
    import_delivery(store, folder)
    base = store.snapshot()
    templates = [base.recordings[_isrc(i)] for i in range(min(n, TEMPLATES))]
    for start in range(TEMPLATES, n, BATCH):
        recs, works = [], []
        for i in range(start, min(n, start + BATCH)):
            template = templates[i % TEMPLATES]
            work = replace(base.works[template.works[0]], work_id=f"W-{i:07d}", title=f"Work {i}")
            works.append(work)
            recs.append(replace(template, isrc=_isrc(i), title=f"Recording {i}", works=(work.work_id,)))
        store.apply(ChangeSet(works=tuple(works), recordings=tuple(recs)), actor="bench", action="bench.seed")
    key, _ = ensure_operator_key(settings.home)
    isrc = next(r.isrc for r in templates if r.shares[0].party_id == "P-L00")
    manifest, _, _ = service.build(
        store, key, use="train", as_of=store.clock(), territory="GB", filters=(("isrc", (isrc,)),)
    )
    repository.register_model(store, "bench-model", manifest.root, card={}, actor="bench")
    outputs.add_creator(store, "bench-creator", "pro", "GB", parse_plans(settings.plans))
    keys = {
        "rights_holder": create_key(store, role="rights_holder", party_id="P-L00")[1],
        "creator": create_key(store, role="creator", party_id="bench-creator")[1],
        "operator": create_key(store, role="operator", party_id="bench-ops")[1],
    }
    store.close()
    return {"keys": keys, "isrc": isrc}


def bare_app() -> FastAPI:
    """The same route shapes with static answers: what FastAPI and uvicorn cost by themselves."""
    app = FastAPI()
    item = {"isrc": "ZZBEN2600000", "title": "Recording", "eligibility": {"train": {"eligible": True}}}

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/recordings/{isrc}")
    def recording(isrc: str, territory: str = "US") -> dict[str, Any]:
        return item | {"isrc": isrc}

    @app.get("/v1/recordings")
    def recordings(limit: int = 50, cursor: str | None = None) -> dict[str, Any]:
        return {"items": [item] * limit, "next_cursor": "x"}

    @app.post("/v1/generations", status_code=202)
    def generations(body: dict[str, Any]) -> dict[str, Any]:
        return {"job_id": "j", "status": "queued", "params": body}

    return app


def start(env: dict[str, str], factory: str, port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen([*cmd, "--log-level", "warning", "--no-access-log"], env={**os.environ, **env})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    msg = f"uvicorn ({factory}) did not answer on port {port} within 60 s"
    raise RuntimeError(msg)


CASES = (
    ("GET /v1/recordings/{isrc}", "GET", "/v1/recordings/{isrc}", "rights_holder", None, 200),
    ("GET /v1/recordings?limit=50", "GET", "/v1/recordings?limit=50", "operator", None, 200),
    ("POST /v1/generations (queued)", "POST", "/v1/generations", "creator", "gen", 202),
)


async def drive(port: int, world: dict[str, Any], seconds: float, concurrency: int) -> list[Result]:
    gen = {"model_id": "bench-model", "style": "reel", "bars": 4}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    results = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60) as client:
        for name, method, path, role, body, expect in CASES:
            headers = {"Authorization": f"Bearer {world['keys'][role]}"} if world["keys"] else {}
            url = path.replace("{isrc}", world["isrc"])
            payload = gen if body else None
            for _ in range(3):  # warm: imports, first reads, materialised decisions
                await client.request(method, url, headers=headers, json=payload)
            kw = {"headers": headers, "body": payload, "expect": expect, "seconds": seconds}
            results.append(await load(client, name, method, url, concurrency=concurrency, **kw))  # type: ignore[arg-type]
    return results


def _pg_settings(home: Path, url: str) -> tuple[Settings, Any]:
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{PG_DATABASE}"'))
    db_url = make_url(url).set(database=PG_DATABASE).render_as_string(hide_password=False)
    return Settings(home=home, database_url=db_url), admin


def run_backend(backend: str, args: argparse.Namespace, console: Console) -> list[tuple[Result, Result]]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        admin = None
        if backend == "postgresql":
            settings, admin = _pg_settings(home, args.database_url)
        else:
            settings = Settings(home=home, database_url="")
        try:
            started = time.perf_counter()
            world = seed(settings, args.recordings)
            console.print(f"{backend}: seeded {args.recordings:,} recordings in {time.perf_counter() - started:.1f} s")
            env = {"ACCORD_HOME": str(home), "ACCORD_DATABASE_URL": settings.database_url or ""}
            port, bare_port = free_port(), free_port()
            server = start(env, "accord.api.app:create_app", port)
            bare = start(env, "benchmarks.bench_serving:bare_app", bare_port)
            try:
                ours = asyncio.run(drive(port, world, args.seconds, args.concurrency))
                theirs = asyncio.run(
                    drive(bare_port, {"keys": {}, "isrc": world["isrc"]}, args.seconds, args.concurrency)
                )
            finally:
                for proc in (server, bare):
                    proc.terminate()
                    proc.wait(timeout=30)
        finally:
            if admin is not None:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)'))
                admin.dispose()
    return list(zip(ours, theirs, strict=True))


def main(argv: list[str] | None = None) -> dict[str, list[tuple[Result, Result]]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recordings", type=int, default=100_000, help="Recordings in the registry.")
    parser.add_argument("--backends", default="sqlite,postgresql", help="Comma-separated: sqlite, postgresql.")
    parser.add_argument("--seconds", type=float, default=10.0, help="Load time per endpoint.")
    parser.add_argument("--concurrency", type=int, default=32, help="Requests in flight.")
    parser.add_argument(
        "--database-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        help="A PostgreSQL server (any database on it) where the benchmark may create its own.",
    )
    args = parser.parse_args(argv)
    console = Console(width=180)
    out = {}
    for backend in args.backends.split(","):
        rows = run_backend(backend.strip(), args, console)
        out[backend] = rows
        table = Table(
            title=(
                f"Serving on {backend}: {args.recordings:,} recordings, {args.concurrency} in flight, "
                f"{args.seconds:.0f} s each; uvicorn 1 process; {platform.machine()}, {os.cpu_count()} cores"
            ),
            title_justify="left",
        )
        for col in ("endpoint", "errors", "req/s", "p50 ms", "p99 ms", "bare req/s", "bare p99 ms", "ratio", "target"):
            table.add_column(col, justify="left" if col == "endpoint" else "right")
        for ours, bare in rows:
            met = "met" if ours.rps >= 1000 and ours.p99_ms <= 50 and not ours.errors else "not met"
            table.add_row(
                ours.name,
                str(ours.errors),
                f"{ours.rps:.0f}",
                f"{ours.p50_ms:.1f}",
                f"{ours.p99_ms:.1f}",
                f"{bare.rps:.0f}",
                f"{bare.p99_ms:.1f}",
                f"{ours.rps / bare.rps:.2f}",
                met,
            )
        console.print(table)
    return out


if __name__ == "__main__":
    main()
