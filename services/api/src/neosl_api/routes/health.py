"""Liveness and readiness probes and metrics (unauthenticated, outside /v1)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response

from neosl.onchain.metrics import follower_status
from neosl_api import context
from neosl_api.auth import public
from neosl_api.blueprint import Blueprint
from neosl_api.errors import error_response
from neosl_api.schemas.common import ErrorSchema
from neosl_api.services import health

blp = Blueprint("health", __name__, description="Liveness and readiness probes")
# Prometheus' text format is not JSON: served beside the API, not described in its spec.


class HealthSchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"example": "ok"})


class FollowerSchema(ma.Schema):
    next_block = ma.fields.Integer(required=True)
    chain_height = ma.fields.Integer(allow_none=True)
    lag_blocks = ma.fields.Integer(allow_none=True)
    updated_seconds_ago = ma.fields.Float(required=True)


class ReadySchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"example": "ready"})
    checks = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(), required=True)
    chain_follower = ma.fields.Nested(
        FollowerSchema,
        allow_none=True,
        required=True,
        metadata={"description": "Where the chain follower is; null before its first run."},
    )


@blp.route("/healthz")
@blp.response(200, HealthSchema)
@blp.doc(security=[])
@public
def healthz() -> dict[str, Any]:
    """The process is alive."""
    return {"status": "ok"}


@blp.route("/readyz")
@blp.response(200, ReadySchema)
@blp.alt_response(503, schema=ErrorSchema, description="A dependency is unreachable")
@blp.doc(security=[])
@public
def readyz() -> Response | dict[str, Any]:
    """The database and the broker answer."""
    s = context.state()
    checks = health.check_dependencies(s.session_factory, s.redis)
    if not all(v == "ok" for v in checks.values()):
        return error_response(503, "not ready", checks, code="not_ready")
    with s.session_factory() as session:
        follower = follower_status(session)
    # Informational: a lagging follower delays deposits but does not make the API unready.
    return {"status": "ready", "checks": checks, "chain_follower": follower}
