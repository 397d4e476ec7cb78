"""Sending jobs to other services: one small interface over Celery's send_task.

Send only after the transaction that wrote the job's rows has committed (house rule 3):
a worker must never receive an id it cannot see yet.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from neosl.jobs import Job


class Dispatcher:
    def __init__(self, app: Celery) -> None:
        self.app = app

    def send(self, job: Job, **payload: Any) -> str:
        """Queue ``job``; returns the Celery task id."""
        result = self.app.send_task(job.name, kwargs=job.payload(**payload), queue=job.queue)
        return str(result.id)
