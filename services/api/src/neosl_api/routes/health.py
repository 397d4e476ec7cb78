"""Liveness and readiness probes (unauthenticated, outside /v1)."""

from __future__ import annotations

from typing import Any

from flask import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from neosl_api import context
from neosl_api.auth import public
from neosl_api.blueprint import Blueprint
from neosl_api.errors import error_response
from neosl_api.services import health

blp = Blueprint("health", __name__, description="Liveness and readiness probes")


@blp.route("/healthz")
@blp.doc(security=[])
@public
def healthz() -> dict[str, Any]:
    """The process is alive."""
    return {"status": "ok"}


@blp.route("/readyz")
@blp.doc(security=[], responses={503: {"description": "A dependency is unreachable"}})
@public
def readyz() -> Response | dict[str, Any]:
    """The database and the broker answer."""
    s = context.state()
    checks = health.check_dependencies(s.session_factory, s.redis)
    if not all(v == "ok" for v in checks.values()):
        return error_response(503, "not ready", checks, code="not_ready")
    with s.session_factory() as session:
        follower = health.follower_status(session)
    # Informational: a lagging follower delays deposits but does not make the API unready.
    return {"status": "ready", "checks": checks, "chain_follower": follower}


@blp.route("/metrics")
@blp.doc(security=[])
@public
def metrics() -> Response:
    """Prometheus metrics (chain follower lag, pending withdrawals)."""
    return Response(generate_latest(context.state().metrics), mimetype=CONTENT_TYPE_LATEST)
