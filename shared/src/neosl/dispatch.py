"""Sending jobs to other services, only once the rows they name are committed.

A producer never sends a job itself: it queues it on the database session whose
transaction wrote the job's rows (``send_after_commit``). The session's after-commit event
sends the queued jobs; a rollback drops them (a rolled-back savepoint drops the jobs queued
inside it). So a worker can never receive an id it cannot see yet, and a request that
failed never leaves a job behind.

A job whose sending fails after the commit (broker down) is logged and counted; every job
has a periodic safety net that finds its rows again (see ``neosl.jobs``).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from celery.utils.nodenames import anon_nodename
from redis import Redis
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from neosl import logs
from neosl.jobs import Job
from neosl.logs import REQUEST_ID_HEADER

log = logging.getLogger(__name__)

_QUEUED = "neosl_jobs"


@dataclass(frozen=True)
class _Queued:
    dispatcher: Dispatcher
    transaction: SessionTransaction
    job: Job
    payload: dict[str, Any]


class Dispatcher:
    def __init__(self, app: Celery) -> None:
        self.app = app
        self.send_failures = 0
        self._broker: Redis | None = None
        self._lock = threading.Lock()

    def broker(self) -> Redis | None:
        """A client of the Redis broker (made on first use), or None for another broker."""
        url = str(self.app.conf.broker_url or "")
        if urlsplit(url).scheme not in ("redis", "rediss"):
            return None
        with self._lock:
            if self._broker is None:
                self._broker = Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
            return self._broker

    def send_after_commit(self, session: Session, job: Job, **payload: Any) -> None:
        """Queue ``job`` to be sent when ``session``'s transaction commits.

        The same job with the same payload queued twice in one transaction is sent once.

        Raises:
            ValueError: the payload does not match the job's fields.
        """
        body = job.payload(**payload)
        queued: list[_Queued] = session.info.setdefault(_QUEUED, [])
        if not event.contains(session, "after_commit", _after_commit):
            event.listen(session, "after_commit", _after_commit)
            event.listen(session, "after_soft_rollback", _after_soft_rollback)
            event.listen(session, "after_transaction_end", _after_transaction_end)
        if any(q.job == job and q.payload == body for q in queued):
            return
        transaction = session.get_nested_transaction() or session.get_transaction()
        if transaction is None:
            transaction = session.begin()
        queued.append(_Queued(self, transaction, job, body))

    def send_many_after_commit(
        self, session: Session, job: Job, payloads: list[dict[str, Any]]
    ) -> None:
        """Queue ``job`` once per payload, like ``send_after_commit``, for payloads known to
        be distinct (no duplicate check: a batch of thousands stays linear).

        Raises:
            ValueError: a payload does not match the job's fields.
        """
        bodies = [job.payload(**p) for p in payloads]
        if not bodies:
            return
        self.send_after_commit(session, job, **bodies[0])
        queued: list[_Queued] = session.info[_QUEUED]
        transaction = queued[-1].transaction
        queued.extend(_Queued(self, transaction, job, body) for body in bodies[1:])

    def send(self, job: Job, **payload: Any) -> str:
        """Send ``job`` now; only for jobs that name no uncommitted rows (e.g. a nudge).

        Raises:
            ValueError: the payload does not match the job's fields.
            kombu.exceptions.OperationalError: the broker cannot be reached.
        """
        return _publish(self.app, job.name, job.payload(**payload), job.queue)


class _Sent:
    """What ``send_task`` returns for a job nobody waits on: its id.

    The default ``AsyncResult`` subscribes to the result's channel when the job is sent and
    unsubscribes when it is collected, and the worker stores a result nobody reads: about a
    tenth of the API's CPU per invoke (bench/executions.py).
    """

    __slots__ = ("id", "ignored")

    def __init__(self, id: str) -> None:
        self.id = id


def _publish(app: Celery, name: str, payload: dict[str, Any], queue: str) -> str:
    # Our jobs report through the database: no result is stored for them or waited for.
    sent = app.send_task(
        name,
        kwargs=payload,
        queue=queue,
        ignore_result=True,
        result_cls=_Sent,  # type: ignore[arg-type]  # Celery only calls it with the id
        headers=_log_headers(),
    )
    return str(sent.id)


def _log_headers() -> dict[str, Any]:
    """The request id the job is sent under, for the worker's logs (``neosl.logs``)."""
    request_id = logs.current().get("request_id")
    return {} if request_id is None else {REQUEST_ID_HEADER: request_id}


def _after_commit(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        # A savepoint was released (SQLAlchemy fires after_commit for that too); the
        # transaction that holds the rows has not committed yet.
        return
    queued: list[_Queued] = session.info.pop(_QUEUED, [])
    if len(queued) == 1:
        _send_queued(queued[0])
        return
    # Many jobs (a batch of fired triggers): written to the broker in one round trip.
    by_dispatcher: dict[int, list[_Queued]] = {}
    for item in queued:
        by_dispatcher.setdefault(id(item.dispatcher), []).append(item)
    for items in by_dispatcher.values():
        dispatcher = items[0].dispatcher
        broker = dispatcher.broker()
        if broker is None:
            for item in items:
                _send_queued(item)
            continue
        try:
            pipe = broker.pipeline(transaction=False)
            for item in items:
                pipe.lpush(
                    item.job.queue,
                    task_message(dispatcher.app, item.job.name, item.payload, item.job.queue),
                )
            pipe.execute()
        except Exception:
            # Part of the batch may have gone: every job of it counts as not sent. The rows
            # are committed; each job's periodic safety net finds them again, and every job
            # is safe to receive twice.
            dispatcher.send_failures += len(items)
            log.exception("could not send %d jobs after commit", len(items))


# The fields of Celery's task message (protocol 2) that are the same for every job we send.
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def task_message(app: Celery, name: str, kwargs: dict[str, Any], queue: str) -> str:
    """A job as Celery's ``send_task`` leaves it in a Redis list: task protocol 2, JSON body,
    in kombu's Redis envelope (a test compares it with what Celery writes).

    Celery and kombu spend about a millisecond of CPU on each message (routing, signals, a
    Redis client built per message); a batch of ten thousand fired triggers cannot wait for
    that, and this costs a few dozen microseconds.
    """
    task_id = str(uuid.uuid4())
    body = json.dumps([[], kwargs, _EMBED])
    return json.dumps(
        {
            "body": base64.b64encode(body.encode()).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {
                "lang": "py",
                "task": name,
                "id": task_id,
                "shadow": None,
                "eta": None,
                "expires": None,
                "group": None,
                "group_index": None,
                "retries": 0,
                "timelimit": [None, None],
                "root_id": task_id,
                "parent_id": None,
                "argsrepr": "()",
                "kwargsrepr": repr(kwargs),
                "origin": anon_nodename(),
                "ignore_result": True,
                "replaced_task_nesting": 0,
                "stamped_headers": None,
                "stamps": {},
                **_log_headers(),
            },
            "properties": {
                "correlation_id": task_id,
                "reply_to": app.thread_oid,
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
    )


def _send_queued(item: _Queued) -> None:
    try:
        _publish(item.dispatcher.app, item.job.name, item.payload, item.job.queue)
    except Exception:
        # The rows are committed; the job's periodic safety net finds them again.
        item.dispatcher.send_failures += 1
        log.exception("could not send %s %s after commit", item.job.name, item.payload)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        # The transaction ended without a commit (closed, or rolled back): drop the rest.
        session.info.pop(_QUEUED, None)


def _after_soft_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    queued: list[_Queued] = session.info.get(_QUEUED, [])
    if not queued:
        return
    if previous_transaction.parent is None:
        queued.clear()
        return
    queued[:] = [q for q in queued if not _inside(q.transaction, previous_transaction)]


def _inside(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False
