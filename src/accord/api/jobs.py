"""Jobs as the API sees them: the queue it submits to and reads from (:mod:`accord.jobs.queue`).

The API process never runs a job: a request queues a row and answers with its id at once;
``accord worker`` processes claim and run it (:mod:`accord.jobs.worker`), and the client polls
``GET /v1/jobs/{job_id}``.
"""

from __future__ import annotations

from accord.jobs.queue import Job, JobQueue, create_job, get_job, list_jobs

__all__ = ["Job", "JobQueue", "create_job", "get_job", "list_jobs"]
