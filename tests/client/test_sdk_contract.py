"""The SDK and the API's OpenAPI document agree: a method for every route, models written
from the document the API serves."""

from __future__ import annotations

import ast
import sys
from typing import Any

from flask.testing import FlaskClient

from neosl_client import routes
from neosl_client._codegen import render_models
from tests.envvars import ROOT

METHODS = ("get", "post", "put", "patch", "delete")


def openapi(client: FlaskClient) -> dict[str, Any]:
    answer = client.get("/openapi.json")
    assert answer.status_code == 200
    spec: dict[str, Any] = answer.get_json()
    return spec


def test_every_route_has_a_client_method_and_every_method_a_route(client: FlaskClient) -> None:
    documented = {
        (method.upper(), path)
        for path, operations in openapi(client)["paths"].items()
        for method in operations
        if method in METHODS
    }
    covered = routes()
    missing = sorted(documented - set(covered))
    assert not missing, f"routes without a client method: {missing}"
    stale = sorted(f"{covered[r]} ({r[0]} {r[1]})" for r in set(covered) - documented)
    assert not stale, f"client methods of no route: {stale}"


def test_the_models_are_written_from_the_document_the_api_serves(client: FlaskClient) -> None:
    committed = (ROOT / "client/src/neosl_client/models.py").read_text()
    assert render_models(openapi(client)) == committed, (
        "neosl_client.models is out of date: run "
        "`python -m neosl_client._codegen openapi.json > client/src/neosl_client/models.py` "
        "with the API's /openapi.json"
    )


def test_the_sdk_needs_only_an_http_client_and_for_wallets_cryptography() -> None:
    allowed = {"httpx", "cryptography", "neosl_client", *sys.stdlib_module_names}
    for path in (ROOT / "client/src/neosl_client").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"
