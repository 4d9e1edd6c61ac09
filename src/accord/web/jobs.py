"""The studio's generation jobs, on the API's job runner (:mod:`accord.api.jobs`).

The work runs on the runner's worker thread, never in the request; the page polls the job's
status. The portal uses the app's :class:`~accord.api.jobs.JobRunner` (made by
``create_app``), or makes one for itself when mounted on an app without it. A job belongs to
the creator that submitted it; another party asking for it gets a 404.
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import Request

from accord.api.jobs import Job, JobRunner, get_job
from accord.errors import NotFound
from accord.outputs.studio import Prompt
from accord.web.deps import settings_of, store_of

_LOCK = threading.Lock()


def runner_of(request: Request) -> JobRunner:
    """The app's job runner (whatever ``app.state`` attribute holds it), else the portal's own."""
    state: dict[str, Any] = getattr(request.app.state, "_state", {})
    with _LOCK:
        found = next((v for v in state.values() if isinstance(v, JobRunner)), None)
        if found is None:
            found = request.app.state.portal_jobs = JobRunner(store_of(request), settings_of(request))
    return found


def generation_params(creator_id: str, model_id: str, prompt: Prompt, seed: int) -> dict[str, Any]:
    """A generation job's parameters, as :func:`accord.api.jobs.run_generation` reads them."""
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
        },
    }


def submit_generation(request: Request, creator_id: str, model_id: str, prompt: Prompt, seed: int) -> Job:
    return runner_of(request).submit("generation", creator_id, generation_params(creator_id, model_id, prompt, seed))


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
