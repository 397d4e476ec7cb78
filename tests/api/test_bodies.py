"""Request bodies on every route: too deep, not JSON, not UTF-8, not sent as JSON.

The routes that take a body are listed from the app's URL map, so a route added later is
covered without anyone remembering to add it here.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from neosl_api import jsonbody
from neosl_api.jsonbody import MAX_DEPTH
from neosl_api.services.triggers import sign
from tests.api.test_basics import assert_error
from tests.functions.test_api import created
from tests.gas.test_api import tenant

BODY_METHODS = ("POST", "PUT", "PATCH")
# The reported attack: 50,000 levels, past every recursion limit on the way.
DEEP_ARRAY = b"[" * 50_000 + b"]" * 50_000
DEEP_OBJECT = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
# Routes named by the review; the URL map must still hold them (a rename fails here).
NAMED = {
    ("POST", "/v1/auth/register"),
    ("POST", "/v1/auth/login"),
    ("POST", "/v1/functions/<int:function_id>/invoke"),
    ("PUT", "/v1/secrets/<name>"),
    ("POST", "/v1/neo/actions"),
    ("POST", "/v1/hooks/<int:trigger_id>"),
}


def nested(levels: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


def body_routes(app: Flask) -> list[tuple[str, str, str]]:
    """(method, rule, a URL of it) for every route that takes a body; path arguments are 1."""
    adapter = app.url_map.bind("localhost")
    routes = []
    for rule in app.url_map.iter_rules():
        for method in sorted(set(rule.methods or ()) & set(BODY_METHODS)):
            url = adapter.build(rule.endpoint, dict.fromkeys(rule.arguments, 1), method=method)
            routes.append((method, rule.rule, url))
    return routes


def send(client: FlaskClient, method: str, url: str, body: bytes, **headers: str) -> Any:
    headers.setdefault("Content-Type", "application/json")
    return client.open(url, method=method, data=body, headers=headers)


def test_every_body_route_is_listed(app: Flask) -> None:
    assert NAMED.issubset((method, rule) for method, rule, _ in body_routes(app))


@pytest.mark.parametrize("deep", [DEEP_ARRAY, DEEP_OBJECT], ids=["array", "object"])
def test_every_route_answers_400_to_a_body_too_deep(
    app: Flask, client: FlaskClient, deep: bytes
) -> None:
    h = tenant(client)
    for method, rule, url in body_routes(app):
        for headers in (h, {}):  # with a valid credential, and without (public routes)
            resp = send(client, method, url, deep, **headers)
            err = assert_error(resp, 400, "bad_request")
            assert err["details"] == {"_body": [f"Nested deeper than {MAX_DEPTH} levels."]}, rule


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"{not json", "Invalid JSON body."),
        (b'{"a": 1', "Invalid JSON body."),
        (b"[" * (MAX_DEPTH + 1), "Invalid JSON body."),
        (b"[" * 50_000, f"Nested deeper than {MAX_DEPTH} levels."),
        (b'{"a": "\xff\xfe"}', "Not UTF-8."),
        ('{"a": 1}'.encode("utf-16"), "Not UTF-8."),
    ],
    ids=["garbage", "truncated", "unclosed", "unclosed-deep", "latin-1", "utf-16"],
)
def test_every_route_answers_400_to_a_malformed_body(
    app: Flask, client: FlaskClient, body: bytes, detail: str
) -> None:
    h = tenant(client)
    for method, rule, url in body_routes(app):
        err = assert_error(send(client, method, url, body, **h), 400, "bad_request")
        assert err["details"] == {"_body": [detail]}, rule


def test_every_route_answers_415_to_a_body_not_sent_as_json(
    app: Flask, client: FlaskClient
) -> None:
    h = tenant(client)
    for method, rule, url in body_routes(app):
        for content_type in ("text/plain", "application/x-www-form-urlencoded"):
            resp = send(client, method, url, b"a=1", **h, **{"Content-Type": content_type})
            assert resp.status_code == 415, rule
            assert_error(resp, 415, "unsupported_media_type")


@pytest.mark.parametrize("value", [[1], "text", 5, True, None])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/auth/register"),
        ("POST", "/v1/auth/login"),
        ("PUT", "/v1/secrets/API_KEY"),
        ("POST", "/v1/neo/actions"),
        ("POST", "/v1/triggers"),
    ],
)
def test_a_top_level_value_that_is_not_an_object_is_422(
    client: FlaskClient, method: str, path: str, value: Any
) -> None:
    h = {**tenant(client), "Idempotency-Key": "k1"}
    resp = send(client, method, path, json.dumps(value).encode(), **h)
    assert_error(resp, 422, "validation_error")


def test_invoke_a_real_function_with_a_deep_input(client: FlaskClient) -> None:
    h = tenant(client)
    fn = created(client, h)
    url = f"/v1/functions/{fn['id']}/invoke"
    # The body is level 1, so its input may nest MAX_DEPTH - 1 levels: a generous limit.
    ok = client.post(url, json={"input": nested(MAX_DEPTH - 1)}, headers=h)
    assert ok.status_code == 202, ok.get_json()
    too_deep = client.post(url, json={"input": nested(MAX_DEPTH)}, headers=h)
    assert_error(too_deep, 400, "bad_request")
    attack = b'{"input": ' + DEEP_ARRAY + b"}"
    assert_error(send(client, "POST", url, attack, **h), 400, "bad_request")
    # Brackets inside strings are data, not nesting.
    text = client.post(url, json={"input": "[{" * 10_000}, headers=h)
    assert text.status_code == 202, text.get_json()


@pytest.mark.parametrize(
    ("body", "details"),
    [
        (b'{"a": "x\\u0000"}', {"a": ["Holds U+0000, which cannot be stored."]}),
        (
            b'{"a": {"b": ["ok", "\\udc00"]}}',
            {"a.b.1": ["Not valid Unicode text (lone surrogate)."]},
        ),
        (b'{"a": {"\\u0000": 1}}', {"a": ["A key: Holds U+0000, which cannot be stored."]}),
        (b'["\\ud800"]', {"0": ["Not valid Unicode text (lone surrogate)."]}),
        (b'"\\u0000"', {"_body": ["Holds U+0000, which cannot be stored."]}),
    ],
    ids=["nul", "lone-surrogate", "key", "array", "top"],
)
def test_every_route_answers_422_to_a_string_that_cannot_be_stored(
    app: Flask, client: FlaskClient, body: bytes, details: dict[str, list[str]]
) -> None:
    # PostgreSQL stores neither U+0000 nor half a surrogate pair, in text or jsonb: refused
    # before any route, naming where, instead of failing at the database (a 500).
    h = tenant(client)
    for method, rule, url in body_routes(app):
        err = assert_error(send(client, method, url, body, **h), 422, "validation_error")
        assert err["details"] == details, rule


def test_text_that_only_looks_unstorable_is_accepted(client: FlaskClient) -> None:
    h = tenant(client)
    fn = created(client, h)
    # An escaped backslash before "u0000", and a surrogate pair (one emoji): ordinary text.
    body = b'{"input": ["\\\\u0000", "\\ud83d\\ude00"]}'
    resp = send(client, "POST", f"/v1/functions/{fn['id']}/invoke", body, **h)
    assert resp.status_code == 202, resp.get_json()


def test_a_signed_delivery_of_a_deep_body_is_400_and_fires_nothing(client: FlaskClient) -> None:
    h = tenant(client)
    fn = created(client, h)
    resp = client.post(
        "/v1/triggers",
        json={"name": "hook", "function_id": fn["id"], "trigger_type": "webhook"},
        headers=h,
    )
    trigger = resp.get_json()
    stamp = int(time.time())
    for body in (DEEP_ARRAY, json.dumps(nested(MAX_DEPTH + 1)).encode(), b"{not json"):
        # Genuinely signed over the raw bytes: the body alone is refused.
        header = f"t={stamp},v1={sign(trigger['webhook_secret'], stamp, body)}"
        resp = send(
            client, "POST", f"/v1/hooks/{trigger['id']}", body, **{"X-NSL-Signature": header}
        )
        assert_error(resp, 400, "bad_request")
    events = client.get(f"/v1/triggers/{trigger['id']}/events", headers=h).get_json()
    assert events["items"] == []
    # A body at the limit is delivered, its signature checked on the very bytes sent.
    body = json.dumps(nested(MAX_DEPTH)).encode()
    header = f"t={stamp},v1={sign(trigger['webhook_secret'], stamp, body)}"
    resp = send(client, "POST", f"/v1/hooks/{trigger['id']}", body, **{"X-NSL-Signature": header})
    assert resp.status_code == 202, resp.get_json()


@pytest.mark.parametrize(
    ("value", "depth"),
    [
        ({}, 1),
        ([[], {}], 2),
        ({"a": [{"b": [1]}]}, 4),
        (nested(MAX_DEPTH), MAX_DEPTH),
        (nested(MAX_DEPTH + 1), MAX_DEPTH + 1),
        ({"s": "]]]]" * 40 + '\\"[[[' * 40, "t": nested(MAX_DEPTH - 1)}, MAX_DEPTH),
        ([["\\"] * 100] * 3, 2),
    ],
)
def test_depth_is_exact_for_valid_json(value: Any, depth: int) -> None:
    data = json.dumps(value).encode()
    assert jsonbody.too_deep(data) is (depth > MAX_DEPTH)
    assert jsonbody.too_deep(data, limit=depth) is False
    if depth > 1:
        assert jsonbody.too_deep(data, limit=depth - 1) is True


def depth_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    return 0


def random_json(rng: random.Random, budget: int) -> Any:
    """A random value whose strings are full of what a scanner could trip on."""
    kind = rng.randrange(5 if budget > 0 else 3)
    if kind == 0:
        return "".join(
            rng.choice(['"', "\\", "[", "]", "{", "}", "a", "\u00e9", "\n"]) for _ in range(6)
        )
    if kind == 1:
        return rng.choice([0, -1.5, True, None])
    if kind == 2:
        return rng.choice(["", "\\", '"', "\\\\"])
    if kind == 3:
        return [random_json(rng, budget - 1) for _ in range(rng.randrange(4))]
    return {random_json(rng, 0) if rng.random() < 0.5 else "k": random_json(rng, budget - 1)}


def test_depth_matches_the_parsed_value_on_random_bodies() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        value = random_json(rng, rng.randrange(12))
        data = json.dumps(value, ensure_ascii=rng.random() < 0.5).encode()
        depth = depth_of(value)
        for limit in range(1, 13):
            assert jsonbody.too_deep(data, limit) is (depth > limit), (data, limit)


@pytest.mark.parametrize(
    "hostile",
    [
        b"[" * 65 + b'"' + b'\\"' * 500_000,  # every quote escaped: no string ever ends
        b"[" * 65 + b'"\\' * 500_000,
        b"[" * 65 + b'"' * 1_000_000,
        b"[]," * 350_000,
        b"[" * 500_000 + b"]" * 500_000,
    ],
    ids=["escaped-quotes", "quote-backslash", "quotes", "flat", "deep"],
)
def test_the_depth_check_is_linear_on_hostile_bodies(hostile: bytes) -> None:
    started = time.perf_counter()
    jsonbody.too_deep(hostile)
    assert time.perf_counter() - started < 1.0
