"""API load benchmark: requests/s and p50/p99 latency of the main endpoints over loopback.

    python -m benchmarks.bench_api [--recordings 1000] [--seconds 5] [--concurrency 8]

A registry of synthetic recordings (the registry benchmark's delivery), a manifest, a model,
creators and keys is built in a temporary ACCORD_HOME; ``uvicorn`` serves ``create_app`` from a
subprocess on 127.0.0.1 (one worker process, as ``accord serve`` runs it), and an asyncio + httpx
load generator keeps ``--concurrency`` requests in flight per endpoint for ``--seconds``.

Baselines in the same run, against the same server: ``GET /health`` (FastAPI and uvicorn with no
authentication and no registry) and ``GET /v1/me`` (authentication only: one key lookup).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from accord.api.auth import create_key
from accord.datasets import repository, service
from accord.outputs import store as outputs
from accord.outputs.plans import parse_plans
from accord.registry.importer import import_delivery
from accord.registry.store import Store
from accord.settings import Settings
from accord.signing import ensure_operator_key
from benchmarks.bench_registry import synthetic_delivery


@dataclass(frozen=True)
class Result:
    """One endpoint's load result.

    Attributes:
        name: what was asked.
        requests: requests completed.
        errors: answers that were not the expected status.
        rps: requests per second.
        p50_ms, p99_ms: latency percentiles (milliseconds).
    """

    name: str
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float


def build_home(home: Path, n: int) -> dict[str, Any]:
    """A registry with ``n`` recordings, a manifest, a registered model, a creator and keys."""
    settings = Settings(home=home)
    store = Store.open(settings)
    folder = home / "delivery"
    folder.mkdir(parents=True)
    doc = synthetic_delivery(n)
    (folder / "catalog.json").write_text(json.dumps(doc))
    import_delivery(store, folder)
    key, _ = ensure_operator_key(home)
    manifest, _, _ = service.build(store, key, use="train", as_of=store.clock(), territory="GB")
    repository.register_model(store, "bench-model", manifest.root, card={}, actor="bench")
    outputs.add_creator(store, "bench-creator", "pro", "GB", parse_plans(settings.plans))
    secrets = {
        "rights_holder": create_key(store, role="rights_holder", party_id="P-L00")[1],
        "creator": create_key(store, role="creator", party_id="bench-creator")[1],
        "operator": create_key(store, role="operator", party_id="bench-ops")[1],
    }
    isrc = next(r["isrc"] for r in doc["recordings"] if r["shares"][0]["party"] == "P-L00")
    store.close()
    return {"keys": secrets, "isrc": isrc.replace("-", "")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(home: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ACCORD_HOME": str(home), "ACCORD_DATABASE_URL": ""}
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "accord.api.app:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    proc = subprocess.Popen(cmd, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    msg = f"uvicorn did not answer on port {port} within 60 s"
    raise RuntimeError(msg)


async def load(
    client: httpx.AsyncClient,
    name: str,
    method: str,
    path: str,
    *,
    headers: dict[str, str],
    body: dict[str, Any] | None,
    expect: int,
    seconds: float,
    concurrency: int,
) -> Result:
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            r = await client.request(method, path, headers=headers, json=body)
            latencies.append(time.perf_counter() - t0)
            if r.status_code != expect:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
    return Result(name, len(latencies), errors, len(latencies) / wall, q[49] * 1000, q[98] * 1000)


async def run_all(port: int, world: dict[str, Any], seconds: float, concurrency: int) -> list[Result]:
    keys = world["keys"]

    def auth(role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {keys[role]}"}

    gen = {"model_id": "bench-model", "style": "reel", "bars": 4}
    cases: list[tuple[str, str, str, dict[str, str], dict[str, Any] | None, int]] = [
        ("GET /health (baseline: no auth, no registry)", "GET", "/health", {}, None, 200),
        ("GET /v1/me (baseline: auth only)", "GET", "/v1/me", auth("rights_holder"), None, 200),
        (
            "GET /v1/recordings?limit=50 (rights holder)",
            "GET",
            "/v1/recordings?limit=50",
            auth("rights_holder"),
            None,
            200,
        ),
        (
            "GET /v1/recordings/{isrc} (rights holder)",
            "GET",
            f"/v1/recordings/{world['isrc']}",
            auth("rights_holder"),
            None,
            200,
        ),
        ("GET /v1/agreements (rights holder)", "GET", "/v1/agreements", auth("rights_holder"), None, 200),
        ("GET /v1/outputs (creator)", "GET", "/v1/outputs", auth("creator"), None, 200),
        ("GET /v1/models (operator)", "GET", "/v1/models", auth("operator"), None, 200),
        ("POST /v1/generations (creator, job submit)", "POST", "/v1/generations", auth("creator"), gen, 202),
    ]
    results = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60) as client:
        for name, method, path, headers, body, expect in cases:
            await client.request(method, path, headers=headers, json=body)  # warm: first snapshot, imports
            results.append(
                await load(
                    client,
                    name,
                    method,
                    path,
                    headers=headers,
                    body=body,
                    expect=expect,
                    seconds=seconds,
                    concurrency=concurrency,
                )
            )
    return results


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recordings", type=int, default=1000, help="Recordings in the registry.")
    parser.add_argument("--seconds", type=float, default=5.0, help="Load time per endpoint.")
    parser.add_argument("--concurrency", type=int, default=8, help="Requests in flight.")
    args = parser.parse_args(argv)
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        console.print(f"Building a registry of {args.recordings} recordings …")
        world = build_home(home, args.recordings)
        port = free_port()
        server = start_server(home, port)
        try:
            results = asyncio.run(run_all(port, world, args.seconds, args.concurrency))
        finally:
            server.terminate()
            server.wait(timeout=30)
    table = Table(
        title=(
            f"API over loopback: {args.recordings} recordings, {args.concurrency} in flight, "
            f"{args.seconds:.0f} s each; uvicorn 1 process; {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cores"
        ),
        title_justify="left",
    )
    for col in ("endpoint", "requests", "errors", "req/s", "p50 ms", "p99 ms"):
        table.add_column(col, justify="left" if col == "endpoint" else "right")
    for r in results:
        table.add_row(r.name, str(r.requests), str(r.errors), f"{r.rps:.0f}", f"{r.p50_ms:.1f}", f"{r.p99_ms:.1f}")
    console.print(table)
    return results


if __name__ == "__main__":
    main()
