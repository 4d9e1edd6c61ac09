"""``accord worker``: a process that runs queued jobs (generation, training, evaluation, indexing).

Start as many as the machine holds, on as many machines as share the registry (PostgreSQL):
each claims one job at a time (docs/serving.md). ``python -m accord.cli.worker`` is the same
command (how ``accord serve --job-workers`` and the tests start one).
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
from types import FrameType
from typing import IO, Annotated

import typer

from accord.cli.common import console, handle_errors, open_store


def worker_command(*args: str) -> list[str]:
    """The command line that starts a worker process with this interpreter."""
    return [sys.executable, "-m", "accord.cli.worker", *args]


def start_workers(n: int, *, stdout: IO[bytes] | None = None) -> list[subprocess.Popen[bytes]]:
    """Start ``n`` worker processes (they read the same ``ACCORD_*`` environment as this one); their
    output goes to ``stdout`` (default: this process's), log lines included."""
    stderr = None if stdout is None else subprocess.STDOUT
    return [subprocess.Popen(worker_command(), stdout=stdout, stderr=stderr) for _ in range(n)]


def stop_workers(workers: list[subprocess.Popen[bytes]], *, grace_s: float = 30.0) -> None:
    """SIGTERM each worker (it finishes the job in hand), then SIGKILL one that outlives ``grace_s``
    (its job is re-queued when its lease runs out)."""
    for p in workers:
        if p.poll() is None:
            p.terminate()
    for p in workers:
        try:
            p.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@handle_errors
def worker_cmd(
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Run the queued jobs, then exit (instead of waiting for more).")
    ] = False,
) -> None:
    """Run queued jobs until stopped (SIGTERM or Ctrl-C: the job in hand is finished first).

    Keeps the model, the guard index and attribution indexes loaded between jobs. Lease, heartbeat,
    attempts and polling: ACCORD_JOB_LEASE_S, ACCORD_JOB_HEARTBEAT_S, ACCORD_JOB_MAX_ATTEMPTS,
    ACCORD_JOB_POLL_S; PyTorch threads: ACCORD_TORCH_THREADS.
    """
    from accord.cli.common import use_torch_threads
    from accord.jobs.worker import Worker
    from accord.settings import get_settings

    settings = get_settings()
    use_torch_threads(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    store = open_store()
    worker = Worker(store, settings)
    if until_idle:
        ran = 0
        while worker.run_one() is not None:
            ran += 1
        console.print(f"worker {worker.name}: ran {ran} job(s); the queue is empty")
        return
    stop = threading.Event()

    def stopping(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    console.print(f"worker {worker.name} on {store.engine.url.render_as_string(hide_password=True)}")
    try:
        worker.run(stop)
    finally:
        store.close()


if __name__ == "__main__":
    typer.run(worker_cmd)
