"""Logging of every process: JSON lines carrying the ids of the work at hand.

``configure(settings)`` sets up the root logger once per process (``NSL_LOG_FORMAT``: ``json``
by default, ``text`` for people). ``context(request_id=…, execution_id=…)`` binds ids for the
code it wraps (context variables: per thread and per task, never leaking to the next job);
every record logged inside carries them. The API binds a request id (a client's
``X-Request-ID`` or a new one) and sends it with the jobs it queues; a worker binds it again
with the task's id and the execution, trigger or action it works on, so one id can be
followed from the request through every service.

Nothing here logs values: callers log ids and outcomes, never secrets, keys or tokens.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator
from typing import Any, TextIO

from neosl.config import Settings

# The Celery message header that carries the request id to the worker.
REQUEST_ID_HEADER = "nsl_request_id"

# The ids that name the work a job does (its arguments of these names are bound).
WORK_IDS = ("execution_id", "trigger_id", "action_id", "feed_id", "transaction_id")
# The ids a record may carry, in the order they are written.
ID_FIELDS = ("request_id", "task_id", *WORK_IDS)

_ids: contextvars.ContextVar[dict[str, str | int] | None] = contextvars.ContextVar(
    "neosl_log_ids", default=None
)

# What a client may send as X-Request-ID (anything else is replaced by a new id).
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def current() -> dict[str, str | int]:
    """The ids bound here (a copy)."""
    return dict(_ids.get() or {})


def bind(**ids: str | int | None) -> contextvars.Token[dict[str, str | int] | None]:
    """Bind ``ids`` (None values are left out) on top of those bound already, until
    ``unbind(token)`` (for hooks that cannot wrap the work; else use ``context``)."""
    merged = {**(_ids.get() or {}), **{k: v for k, v in ids.items() if v is not None}}
    return _ids.set(merged)


def unbind(token: contextvars.Token[dict[str, str | int] | None]) -> None:
    _ids.reset(token)


@contextlib.contextmanager
def context(**ids: str | int | None) -> Iterator[None]:
    """Bind ``ids`` (None values are left out) for the code it wraps."""
    token = bind(**ids)
    try:
        yield
    finally:
        unbind(token)


def request_id(offered: str | None) -> str:
    """A client's request id if it is a plain short token, else a new one."""
    if offered and _REQUEST_ID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


_base_factory = logging.getLogRecordFactory()


def _record_with_ids(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    for key, value in (_ids.get() or {}).items():
        setattr(record, key, value)
    return record


def _record_ids(record: logging.LogRecord) -> dict[str, Any]:
    """The ids a record carries, in ``ID_FIELDS`` order."""
    return {key: value for key in ID_FIELDS if (value := getattr(record, key, None)) is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the ids, the exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_record_ids(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = " ".join(f"{key}={value}" for key, value in _record_ids(record).items())
        return f"{text} [{ids}]" if ids else text


def configure(settings: Settings, stream: TextIO | None = None) -> None:
    """Route every logger of this process to stderr (or ``stream``) in the configured format
    (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "neosl", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.neosl = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    root.addHandler(handler)
    # Every record carries the ids bound where it was made, whichever handler gets it.
    logging.setLogRecordFactory(_record_with_ids)
    root.setLevel(settings.log_level)
    # Celery's own two lines per task (received, succeeded) only at DEBUG: the services log
    # what they did with their ids, and a busy executor would write little else.
    logging.getLogger("celery").setLevel(
        logging.DEBUG if settings.log_level == "DEBUG" else logging.WARNING
    )
