from __future__ import annotations

import pytest

from neosl import jobs


def test_payload_checks_fields() -> None:
    job = jobs.Job("neosl.test.run", "executor", ("execution_id",))
    assert job.payload(execution_id=7) == {"execution_id": 7}
    with pytest.raises(ValueError, match=r"missing \['execution_id'\]"):
        job.payload()
    with pytest.raises(ValueError, match=r"unknown \['extra'\]"):
        job.payload(execution_id=7, extra=1)


def test_every_queue_has_a_ping_job_on_itself() -> None:
    assert set(jobs.PING_JOBS) == set(jobs.ALL_QUEUES)
    for queue, job in jobs.PING_JOBS.items():
        assert job.queue == queue
        assert job.name == f"neosl.{queue}.ping"
