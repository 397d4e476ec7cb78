"""The OpenAPI document against the API's answers, with requests generated from the document.

Every operation of ``/openapi.json`` is called with requests generated from its own
description: valid ones, and invalid ones (where the operation takes any input) that must
be refused with a 4xx. All carry the API key of a tenant that owns one row of each resource,
and half the well-formed ids in their paths name that tenant's rows, so requests get past
authentication and past the 404. Each answer must be one the document describes: no 5xx, a
documented status code and content type, a body matching the status code's schema, and
authentication enforced where the document asks for it. Every read of the tenant's rows is
also sent once with their ids, so each answer body is checked on a real row.

Deterministic and bounded: Hypothesis is derandomized, with ``MAX_EXAMPLES`` requests per
operation and mode. Each request runs in a SAVEPOINT rolled back after it, with Redis
emptied, so every request sees the same rows (a DELETE or a key rotation does not leak
into the next one) and a failing example replays the same way.

No operation is left out. Schemathesis' own pytest loader (``schemathesis.pytest``) writes
``Node._nodeid``, which pytest 9 no longer has, so the operations are walked here with the
public ``APIOperation.as_strategy`` and ``Case.call_and_validate``, one subtest each.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis import Redis
from schemathesis import APIOperation, Case, GenerationMode, HookContext, checks
from schemathesis.core.result import Err
from schemathesis.specs.openapi.schemas import OpenApiSchema
from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker

from neosl.config import Settings
from neosl.functions.sandbox import SandboxPool
from neosl.functions.secretbox import NAME_PATTERN
from neosl.models import PriceData, PriceRound, User
from neosl_api.app import create_app
from tests.api.test_accounts import auth, register
from tests.factories import credit, make_account

# About 1,500 requests (half a minute): in `make test`, not in `make test-fast`.
pytestmark = pytest.mark.slow

MAX_EXAMPLES = 10

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.negative_data_rejection,
    checks.ignored_auth,
    # Not positive_data_acceptance: the document cannot say everything a valid request must
    # be (a cursor from a previous page, a source that compiles, a checksummed address, a
    # signature that verifies), so a documented 422 for a request it allows is an answer.
]

SOURCE = "function main(input, ctx) { return {echo: input}; }"
FEED = {
    "asset_pair": "NEO/USD",
    "frequency": 60,
    "sources": ["binance", "okx"],
    "usdt_as_usd": True,
}


@dataclass(frozen=True)
class Tenant:
    """A tenant's credential, and a row of each resource it owns by path parameter name."""

    headers: dict[str, str]
    ids: dict[str, int | str]


@pytest.fixture
def api_app(
    settings: Settings,
    session_factory: sessionmaker[Session],
    redis_client: Redis,
    sandbox: SandboxPool,
) -> Flask:
    # No executor runs here, so an invoke's `?wait` could only run out: a tenant allowed no
    # waiting request is answered at once (the documented 202), not after up to 30 s.
    return create_app(
        dataclasses.replace(settings, waiting_per_tenant=0),
        session_factory=session_factory,
        redis=redis_client,
        sandbox=sandbox,
    )


def _created(resp: Any, status: int = 201) -> dict[str, Any]:
    assert resp.status_code == status, resp.get_json()
    body: dict[str, Any] = resp.get_json()
    return body


@pytest.fixture
def tenant(api_app: Flask, db: Session) -> Tenant:
    """A tenant with a funded default gas account, a function with an execution, a webhook
    trigger, a feed with a price and a round, and a secret."""
    client: FlaskClient = api_app.test_client()
    registered = register(client, "conformance", "conformance@example.com")
    headers = auth(registered["api_key"])
    account = make_account(db, db.get_one(User, registered["user"]["id"]))
    credit(db, account, "100")
    db.commit()
    fn = _created(
        client.post("/v1/functions", json={"name": "echo", "source_code": SOURCE}, headers=headers)
    )
    invoked = client.post(f"/v1/functions/{fn['id']}/invoke", json={}, headers=headers)
    trigger = _created(
        client.post(
            "/v1/triggers",
            json={"name": "hook", "function_id": fn["id"], "trigger_type": "webhook"},
            headers=headers,
        )
    )
    feed = _created(client.post("/v1/price-feeds", json=FEED, headers=headers))
    _priced(db, feed["id"])
    _created(client.put("/v1/secrets/API_TOKEN", json={"value": "s3cret"}, headers=headers))
    page = _created(client.get("/v1/gas/transactions", headers=headers), 200)
    return Tenant(
        headers,
        {
            "function_id": fn["id"],
            "version": 1,
            "execution_id": _created(invoked, 202)["execution_id"],
            "trigger_id": trigger["id"],
            "feed_id": feed["id"],
            "account_id": account.id,
            "transaction_id": page["items"][0]["id"],
            "name": "API_TOKEN",
        },
    )


def _priced(db: Session, feed_id: int) -> None:
    """A priced round with its price, as a pricefeed worker stores them."""
    now = dt.datetime.now(dt.UTC)
    data = PriceData(
        feed_id=feed_id, timestamp=now, price=Decimal("12.5"), sources_used=2, source_data=[]
    )
    db.add(data)
    db.flush()
    db.add(
        PriceRound(
            feed_id=feed_id,
            scheduled_at=now,
            started_at=now,
            finished_at=now,
            status="priced",
            price=data.price,
            sources_used=2,
            price_data_id=data.id,
        )
    )
    db.commit()


def _swappable(value: Any, row: int | str) -> bool:
    """Whether a path value is one the document allows in place of ``row``: swapping one it
    refuses would turn an invalid request (a negative example) into a valid one."""
    if isinstance(row, str):
        return isinstance(value, str) and re.fullmatch(NAME_PATTERN, value) is not None
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@pytest.fixture
def api_schema(api_app: Flask, tenant: Tenant) -> OpenApiSchema:
    # The Authorization header is the tenant's on every request, never a generated one.
    config = schemathesis.Config.from_dict({"generation": {"with-security-parameters": False}})
    loaded = schemathesis.openapi.from_wsgi("/openapi.json", api_app, config=config)

    def flatmap_path_parameters(
        context: HookContext, path_parameters: dict[str, Any] | None
    ) -> st.SearchStrategy[dict[str, Any] | None]:
        if not path_parameters:
            return st.just(path_parameters)
        return st.fixed_dictionaries(
            {
                name: st.sampled_from([value, tenant.ids[name]])
                if name in tenant.ids and _swappable(value, tenant.ids[name])
                else st.just(value)
                for name, value in path_parameters.items()
            }
        )

    loaded.hook(flatmap_path_parameters)
    return loaded


def _rows_read(operation: APIOperation[Any, Any, Any, Any], tenant: Tenant) -> list[Case[Any]]:
    """A GET of the tenant's own rows (by every path parameter), and each form of a read
    that answers two ways; none for other operations."""
    names = [parameter.name for parameter in operation.path_parameters]
    if operation.method.upper() != "GET" or not all(name in tenant.ids for name in names):
        return []
    path = {name: tenant.ids[name] for name in names}
    cases = [operation.Case(path_parameters=path)]
    if operation.path == "/v1/price-feeds/{feed_id}/data":
        cases.append(operation.Case(path_parameters=path, query={"interval": "1h"}))
    return cases


def _hypothesis_test(
    strategy: st.SearchStrategy[Case[Any]], call: Callable[[Case[Any]], None]
) -> Any:
    return settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        # Generating from a rich schema is slow and filters out many draws; both are expected.
        suppress_health_check=list(HealthCheck),
    )(given(case=strategy)(call))


def test_answers_match_the_document(
    api_schema: OpenApiSchema,
    tenant: Tenant,
    connection: Connection,
    redis_client: Redis,
    subtests: pytest.Subtests,
) -> None:
    def call(case: Case[Any]) -> None:
        savepoint = connection.begin_nested()
        try:
            case.call_and_validate(headers=tenant.headers, checks=CHECKS)
        finally:
            savepoint.rollback()
            redis_client.flushdb()

    for result in api_schema.get_all_operations():
        # An operation the generator cannot read fails here with the reason.
        assert not isinstance(result, Err), result.err()
        operation = result.ok()
        for case in _rows_read(operation, tenant):
            with subtests.test(msg=f"{operation.label} (the tenant's rows)", query=case.query):
                call(case)
        takes_input = bool(operation.body) or any(True for _ in operation.iter_parameters())
        for mode in GenerationMode:
            # An operation without any input has no invalid request to make.
            if mode is GenerationMode.NEGATIVE and not takes_input:
                continue
            with subtests.test(msg=f"{operation.label} ({mode.value})"):
                _hypothesis_test(operation.as_strategy(generation_mode=mode), call)()


# Served beside the API, outside its document: static files and the document itself.
UNDOCUMENTED = {
    "static",
    "api-docs.openapi_json",
    "api-docs.openapi_swagger_ui",
    "docs_assets.asset",
}


def test_the_document_lists_every_route(app: Flask, client: FlaskClient) -> None:
    """So the generated requests above reach every route the API serves."""
    served = {
        (method, re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in UNDOCUMENTED
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    paths = client.get("/openapi.json").get_json()["paths"]
    documented = {
        (method.upper(), path)
        for path, item in paths.items()
        for method in item
        if method != "parameters"
    }
    assert served == documented
