"""Serving benchmark: recording detail, recording list and job submission under load, beside a bare app.

    python -m benchmarks.bench_serving [--recordings 100000] [--backends sqlite,postgresql]
        [--seconds 10] [--concurrency 32] [--processes 1] [--queued 100]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

For each backend a registry of ``--recordings`` recordings is seeded directly through the store
(the registry benchmark's small delivery for parties, works and licences, then recordings and works
in batches of one :meth:`Store.apply` each), with a model trained on a one-item manifest and keys.
``uvicorn`` serves ``create_app`` from a subprocess on 127.0.0.1 (``--processes`` worker
processes, as ``accord serve --processes`` runs it), and, in the same run and the same way, a bare
FastAPI app with the same route shapes (static answers, no auth, no store): the ratio of the two is
the cost of Accord's own work. The load generator keeps ``--concurrency`` keep-alive HTTP/1.1
connections busy per endpoint for ``--seconds``, one request in flight on each (plain asyncio
streams: on a small machine an HTTP client library would cost more CPU than the server it
measures). The detail read is measured again with ``--queued`` generation jobs waiting in the
queue (no worker runs them): reads must not notice. Targets (issue 16): >= 1,000 req/s and
p99 <= 50 ms at concurrency 32 for every row.

On PostgreSQL a database ``accord_bench_serving`` is made on the server of ``--database-url`` and
dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
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
from accord.jobs.queue import create_job, list_jobs
from accord.outputs import store as outputs
from accord.outputs.plans import parse_plans
from accord.registry.importer import import_delivery
from accord.registry.store import Store
from accord.registry.versioning import ChangeSet
from accord.settings import Settings
from accord.signing import ensure_operator_key
from benchmarks.bench_api import Result, free_port
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


def start(env: dict[str, str], factory: str, port: int, processes: int = 1) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(processes)] if processes > 1 else []
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
    ("GET /v1/recordings/{isrc}, jobs queued", "GET", "/v1/recordings/{isrc}", "rights_holder", None, 200),
    ("POST /v1/generations (queued)", "POST", "/v1/generations", "creator", "gen", 202),
)
QUEUED_CASE = 2  # the jobs are queued before this case
GENERATION = {"model_id": "bench-model", "style": "reel", "bars": 4}


def _request(method: str, path: str, port: int, headers: dict[str, str], body: dict[str, Any] | None) -> bytes:
    payload = b"" if body is None else json.dumps(body).encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", *(f"{k}: {v}" for k, v in headers.items())]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """Send one request on a keep-alive connection and read its whole answer; its status."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    at = lower.find(b"content-length:")
    if at < 0:
        msg = f"an answer without Content-Length: {head[:200]!r}"
        raise RuntimeError(msg)
    length = int(lower[at + 15 : lower.index(b"\r\n", at)])
    await reader.readexactly(length)
    return status


async def load(port: int, name: str, request: bytes, expect: int, seconds: float, concurrency: int) -> Result:
    """``concurrency`` connections, each sending ``request`` again as soon as its answer is read."""
    latencies: list[float] = []
    errors, warmed = 0, 0
    all_warm, go = asyncio.Event(), asyncio.Event()
    stop = 0.0

    async def connection() -> None:
        nonlocal errors, warmed
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for _ in range(3):  # warm: imports, first reads, materialised decisions
                await _exchange(reader, writer, request)
            warmed += 1
            if warmed == concurrency:
                all_warm.set()
            await go.wait()  # every connection starts together, once all are warm
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                status = await _exchange(reader, writer, request)
                latencies.append(time.perf_counter() - t0)
                errors += status != expect
        finally:
            writer.close()

    tasks = [asyncio.create_task(connection()) for _ in range(concurrency)]
    await all_warm.wait()
    started = time.perf_counter()
    stop = started + seconds
    go.set()
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
    return Result(name, len(latencies), errors, len(latencies) / wall, q[49] * 1000, q[98] * 1000)


def drive(port: int, world: dict[str, Any], args: argparse.Namespace, before_queued: Any = None) -> list[Result]:
    results = []
    for i, (name, method, path, role, body, expect) in enumerate(CASES):
        if i == QUEUED_CASE and before_queued is not None:
            before_queued()
        headers = {"Authorization": f"Bearer {world['keys'][role]}"} if world["keys"] else {}
        request = _request(method, path.replace("{isrc}", world["isrc"]), port, headers, GENERATION if body else None)
        label = name.replace("jobs queued", f"{args.queued} jobs queued")
        results.append(asyncio.run(load(port, label, request, expect, args.seconds, args.concurrency)))
    return results


def queue_jobs(settings: Settings, n: int) -> None:
    """``n`` generation jobs waiting in the queue (no worker runs in the benchmark)."""
    store = Store.open(settings, migrate=False)
    params = {"model_id": "bench-model", "creator_id": "bench-creator", "seed": 0, "prompt": {"style": "reel"}}
    for _ in range(n):
        create_job(store, "generation", "bench-creator", params)
    if len(list_jobs(store, status="queued")) < n:
        msg = f"fewer than {n} jobs queued"
        raise RuntimeError(msg)
    store.close()


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
            server = start(env, "accord.api.app:create_app", port, args.processes)
            bare = start(env, "benchmarks.bench_serving:bare_app", bare_port, args.processes)
            try:
                ours = drive(port, world, args, lambda: queue_jobs(settings, args.queued))
                theirs = drive(bare_port, {"keys": {}, "isrc": world["isrc"]}, args)
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
    parser.add_argument("--processes", type=int, default=1, help="uvicorn worker processes (accord serve --processes).")
    parser.add_argument("--queued", type=int, default=100, help="Jobs queued before the reads are measured again.")
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
                f"{args.seconds:.0f} s each; uvicorn {args.processes} process(es); {platform.machine()}, "
                f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}"
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
