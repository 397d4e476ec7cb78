"""Sending jobs to other services, only once the rows they name are committed.

A producer never sends a job itself: it queues it on the database session whose
transaction wrote the job's rows (``send_after_commit``). The session's after-commit event
sends the queued jobs; a rollback drops them (a rolled-back savepoint drops the jobs queued
inside it). So a worker can never receive an id it cannot see yet, and a request that
failed never leaves a job behind.

Everything a commit releases leaves in one round trip: the jobs, written straight into the
broker's lists in Celery's message format (``task_message``) by one long-lived Redis client
per process, and any announcement queued with them (``push_after_commit``), in one pipeline.
Celery's own ``send_task`` costs about a millisecond of CPU per message (routing, signals, a
producer and a Redis client per publish): a third of the API's CPU per invoke.

A job whose sending fails after the commit (broker down) is logged and counted; every job
has a periodic safety net that finds its rows again (see ``neosl.jobs``).
"""

from __future__ import annotations

import base64
import functools
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
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry
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


@dataclass(frozen=True)
class _Push:
    """A value pushed onto a short-lived Redis list after the commit (an announcement)."""

    dispatcher: Dispatcher
    transaction: SessionTransaction
    key: str
    value: str
    ttl_seconds: int


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
                # A broker restart is ridden out for about a second, as kombu's publish
                # retries do; beyond that the send fails and the safety nets take over
                # (redis-py's own default would hold a request for a minute).
                self._broker = Redis.from_url(
                    url,
                    socket_timeout=5,
                    socket_connect_timeout=2,
                    retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.4), 3),
                )
            return self._broker

    def send_after_commit(self, session: Session, job: Job, **payload: Any) -> None:
        """Queue ``job`` to be sent when ``session``'s transaction commits.

        The same job with the same payload queued twice in one transaction is sent once.

        Raises:
            ValueError: the payload does not match the job's fields.
        """
        body = job.payload(**payload)
        queued = _queue(session)
        if any(isinstance(q, _Queued) and q.job == job and q.payload == body for q in queued):
            return
        queued.append(_Queued(self, _transaction(session), job, body))

    def push_after_commit(self, session: Session, key: str, value: str, ttl_seconds: int) -> None:
        """Push ``value`` onto the Redis list ``key`` (kept ``ttl_seconds``) when ``session``'s
        transaction commits, in the same round trip as the jobs it sends; dropped on rollback.
        """
        _queue(session).append(_Push(self, _transaction(session), key, value, ttl_seconds))

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
        queued = _queue(session)
        transaction = _transaction(session)
        queued.extend(_Queued(self, transaction, job, body) for body in bodies)

    def send(self, job: Job, **payload: Any) -> str:
        """Send ``job`` now; only for jobs that name no uncommitted rows (e.g. a nudge).
        Returns its task id.

        Raises:
            ValueError: the payload does not match the job's fields.
            redis.exceptions.RedisError, kombu.exceptions.OperationalError: the broker
                cannot be reached.
        """
        body = job.payload(**payload)
        broker = self.broker()
        if broker is None:
            return _publish(self.app, job.name, body, job.queue)
        task_id, message = _message(self.app, job.name, body, job.queue)
        broker.lpush(job.queue, message)
        return task_id

    def _write(self, items: list[_Queued | _Push]) -> None:
        """Send what one commit released, in one round trip to the broker."""
        broker = self.broker()
        if broker is None:
            for item in items:
                if isinstance(item, _Queued):
                    _send_queued(item)
            return
        try:
            pipe = broker.pipeline(transaction=False)
            for item in items:
                if isinstance(item, _Queued):
                    pipe.lpush(
                        item.job.queue,
                        task_message(self.app, item.job.name, item.payload, item.job.queue),
                    )
                else:
                    pipe.rpush(item.key, item.value)
                    pipe.expire(item.key, item.ttl_seconds)
            pipe.execute()
        except Exception:
            # Part of it may have gone: every job of it counts as not sent. The rows are
            # committed; each job's periodic safety net finds them again, and every job is
            # safe to receive twice. A lost announcement ends a wait at its timeout.
            sent = sum(isinstance(item, _Queued) for item in items)
            self.send_failures += sent
            log.exception("could not send %d jobs after commit", sent)


def _queue(session: Session) -> list[_Queued | _Push]:
    queued: list[_Queued | _Push] = session.info.setdefault(_QUEUED, [])
    if not event.contains(session, "after_commit", _after_commit):
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_soft_rollback", _after_soft_rollback)
        event.listen(session, "after_transaction_end", _after_transaction_end)
    return queued


def _transaction(session: Session) -> SessionTransaction:
    transaction = session.get_nested_transaction() or session.get_transaction()
    return session.begin() if transaction is None else transaction


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
    queued: list[_Queued | _Push] = session.info.pop(_QUEUED, [])
    by_dispatcher: dict[int, list[_Queued | _Push]] = {}
    for item in queued:
        by_dispatcher.setdefault(id(item.dispatcher), []).append(item)
    for items in by_dispatcher.values():
        items[0].dispatcher._write(items)


# The fields of Celery's task message (protocol 2) that are the same for every job we send.
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def task_message(app: Celery, name: str, kwargs: dict[str, Any], queue: str) -> str:
    """A job as Celery's ``send_task`` leaves it in a Redis list: task protocol 2, JSON body,
    in kombu's Redis envelope (a test compares it with what Celery writes).

    Celery and kombu spend about a millisecond of CPU on each message (routing, signals, a
    Redis client built per message); this costs a few dozen microseconds.
    """
    return _message(app, name, kwargs, queue)[1]


@functools.cache
def _origin() -> str:
    return anon_nodename()


def _message(app: Celery, name: str, kwargs: dict[str, Any], queue: str) -> tuple[str, str]:
    task_id = str(uuid.uuid4())
    body = json.dumps([[], kwargs, _EMBED])
    return task_id, json.dumps(
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
                "origin": _origin(),
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
    queued: list[_Queued | _Push] = session.info.get(_QUEUED, [])
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
