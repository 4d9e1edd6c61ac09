"""The studio's generation jobs, on the registry's job queue (:mod:`accord.jobs.queue`).

The request only queues the job; an ``accord worker`` process runs it, never the portal, and the
page polls the job's status. A job belongs to the creator that submitted it; another party
asking for it gets a 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from accord.errors import NotFound
from accord.jobs.queue import Job, get_job, submit
from accord.outputs.studio import Prompt
from accord.web.deps import store_of


def generation_params(creator_id: str, model_id: str, prompt: Prompt, seed: int) -> dict[str, Any]:
    """A generation job's parameters, as :func:`accord.jobs.kinds.run_generation` reads them."""
    return {
        "model_id": model_id,
        "creator_id": creator_id,
        "seed": seed,
        "prompt": {
            "style": prompt.style,
            "key": prompt.key,
            "tempo_bpm": prompt.tempo_bpm,
            "bars": prompt.bars,
            "from_isrc": prompt.from_isrc,
            "prime_bars": prompt.prime_bars,
            "temperature": prompt.temperature,
            "meter": prompt.meter,
        },
    }


def submit_generation(request: Request, creator_id: str, model_id: str, prompt: Prompt, seed: int) -> Job:
    """Queue a generation for a worker; the job to follow."""
    return submit(store_of(request), "generation", creator_id, generation_params(creator_id, model_id, prompt, seed))


def job_for(request: Request, owner: str, job_id: str) -> Job:
    """One of the owner's jobs; anyone else's (or none) is a 404 worded the same."""
    try:
        job = get_job(store_of(request), job_id)
    except NotFound:
        job = None
    if job is None or job.owner != owner or job.kind != "generation":
        msg = f"job {job_id!r}: not found"
        raise NotFound(msg)
    return job


def status_of(job: Job) -> dict[str, Any]:
    """What the polling page needs: status, output when done, the message when failed."""
    return {
        "job_id": job.job_id,
        "status": job.status,
        "output_id": (job.result or {}).get("output_id", ""),
        "error": (job.error or {}).get("message", ""),
    }
