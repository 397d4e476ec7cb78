"""Per-request access to the database session, Redis, settings and the caller.

Routes use these; service functions receive their results as arguments and never
touch Flask globals themselves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Response, current_app, g, jsonify
from prometheus_client import CollectorRegistry
from redis import Redis
from sqlalchemy.orm import Session, sessionmaker

from neosl.config import Settings
from neosl.dispatch import Dispatcher
from neosl.functions.sandbox import SandboxPool
from neosl.functions.sandbox.types import CompileError
from neosl_api.services.accounts import Caller

# Sandbox processes per API process for compiling sources.
_COMPILE_PROCESSES = 2


@dataclass
class ApiState:
    settings: Settings
    session_factory: sessionmaker[Session]
    redis: Redis
    dispatcher: Dispatcher
    # The API's own counts (its requests); what it exports is served by the gunicorn master.
    metrics: CollectorRegistry
    # Made on first use: most requests never compile anything.
    sandbox: SandboxPool | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def state() -> ApiState:
    api_state: ApiState = current_app.extensions["neosl"]
    return api_state


def settings() -> Settings:
    return state().settings


def redis() -> Redis:
    return state().redis


def dispatcher() -> Dispatcher:
    return state().dispatcher


def compiler() -> Callable[[str], CompileError | None]:
    """Checks a function's source in a sandbox process (the API never runs tenant code)."""
    api_state = state()
    with api_state.lock:
        if api_state.sandbox is None:
            api_state.sandbox = SandboxPool(
                max_processes=_COMPILE_PROCESSES, user=api_state.settings.sandbox_user
            )
        return api_state.sandbox.compile


def json_response(body: dict[str, Any], status: int) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def db() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db" not in g:
        g.db = state().session_factory()
    session: Session = g.db
    return session


def close_db(exc: BaseException | None) -> None:
    session: Session | None = g.pop("db", None)
    if session is not None:
        if exc is not None:
            session.rollback()
        session.close()


def current_user() -> Caller:
    caller: Caller = g.user
    return caller
