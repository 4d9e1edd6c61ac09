"""Jobs: durable work in the registry database, run by ``accord worker`` processes.

:mod:`accord.jobs.queue` is the queue (the ``jobs`` table: submit, claim, heartbeat, finish,
re-queue what a crashed worker left), :mod:`accord.jobs.kinds` the work each kind of job does
(the same domain functions as the CLI), :mod:`accord.jobs.worker` the loop a worker runs.
docs/serving.md describes processes, workers, leases and retries.
"""
