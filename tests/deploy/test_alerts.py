"""The Prometheus alerting rules and the Grafana dashboard in deploy/, checked without promtool
or Grafana.

The rule file is validated against a JSON schema of Prometheus rule files; every expression
(the rules' and the dashboard's) goes through a small PromQL checker: balanced brackets,
well-formed label matchers and ranges, known functions. Every ``neosl_*`` metric they use
must be one the services export (its name is a string literal in their sources), the gauges
that several replicas export alike are aggregated with ``max``/``min``, never summed, and each
condition an operator must act on has its alert.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "neosl-dashboard.json"
SOURCES = ("shared/src/**/*.py", "services/*/src/**/*.py", "cli/src/**/*.py")

# --- Metrics ------------------------------------------------------------------------------

# The suffixes the exposition adds to a metric's name: a counter ``x`` is scraped as
# ``x_total``, a histogram ``x`` as ``x_bucket``, ``x_sum`` and ``x_count``.
SUFFIXES = ("_bucket", "_sum", "_count", "_total")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

# Metrics other exporters provide, the only ones without the ``neosl_`` prefix we may use.
EXTERNAL_METRICS = {
    "up": "Prometheus itself",
    "kube_pod_container_status_restarts_total": "kube-state-metrics",
}

# Gauges read from PostgreSQL or Redis at scrape time: every replica that exports one reports
# the same global value, so a sum over replicas multiplies it. Counters and histograms that
# each process keeps for itself (tasks, HTTP requests, rounds, firings) are summed instead.
GLOBAL_GAUGES = frozenset(
    {
        "neosl_chain_follower_lag_blocks",
        "neosl_chain_follower_next_block",
        "neosl_chain_height",
        "neosl_chain_follower_update_age_seconds",
        "neosl_withdrawals_pending",
        "neosl_executions",
        "neosl_execution_duration_milliseconds",
        "neosl_sandbox_processes",
        "neosl_sandbox_restarts",
        "neosl_queue_length",
        "neosl_ledger_balance_gas",
        "neosl_ledger_transactions_gas",
        "neosl_ledger_mismatched_accounts",
        "neosl_hot_wallet_balance_gas",
        "neosl_relay_actions_in_flight",
        "neosl_triggers",
        "neosl_price_feeds",
        "neosl_price_feeds_stale",
        "neosl_price_publications_in_flight",
        "neosl_price_source_markets",
        "neosl_price_source_listing_age_seconds",
        "neosl_price_source_listing_failing",
    }
)
GLOBAL_AGGREGATIONS = frozenset({"max", "min"})


@cache
def exported_names() -> frozenset[str]:
    """Every ``neosl_*`` string literal in the services' and the shared library's sources."""
    names: set[str] = set()
    for pattern in SOURCES:
        for path in ROOT.glob(pattern):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and node.value.startswith("neosl_")
                ):
                    names.add(node.value)
    return frozenset(names)


def is_exported(metric: str, exported: frozenset[str]) -> bool:
    """Whether ``metric``, as scraped, is one of ``exported`` (names as the code spells them)."""
    candidates = {metric} | {metric.removesuffix(s) for s in SUFFIXES if metric.endswith(s)}
    return bool(candidates & exported)


def base_name(metric: str) -> str:
    for suffix in HISTOGRAM_SUFFIXES:
        if metric.endswith(suffix):
            return metric.removesuffix(suffix)
    return metric


# --- A small PromQL checker ---------------------------------------------------------------

AGGREGATIONS = frozenset(
    [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ]
)
FUNCTIONS = frozenset(
    [
        "abs",
        "absent",
        "absent_over_time",
        "avg_over_time",
        "ceil",
        "changes",
        "clamp",
        "clamp_max",
        "clamp_min",
        "count_over_time",
        "day_of_month",
        "day_of_week",
        "days_in_month",
        "delta",
        "deriv",
        "exp",
        "floor",
        "histogram_avg",
        "histogram_count",
        "histogram_quantile",
        "histogram_sum",
        "hour",
        "idelta",
        "increase",
        "irate",
        "label_join",
        "label_replace",
        "last_over_time",
        "ln",
        "log2",
        "log10",
        "max_over_time",
        "min_over_time",
        "minute",
        "month",
        "predict_linear",
        "present_over_time",
        "quantile_over_time",
        "rate",
        "resets",
        "round",
        "scalar",
        "sgn",
        "sort",
        "sort_desc",
        "sqrt",
        "stddev_over_time",
        "stdvar_over_time",
        "sum_over_time",
        "time",
        "timestamp",
        "vector",
        "year",
    ]
)
# Keywords followed by a list of label names in parentheses (group_left/right: optionally).
LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
BINARY_KEYWORDS = frozenset({"and", "or", "unless", "bool", "atan2", "offset"})
NUMBER_WORDS = frozenset({"inf", "nan"})

_DURATION = r"\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*"
# A Grafana variable: $__rate_interval, ${__range}.
_VARIABLE = r"\$(?:\{\w+\}|\w+)"
_SPACE = re.compile(r"\s+")
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|`[^`]*`')
_DURATION_LITERAL = re.compile(rf"{_DURATION}(?![\w.])")
_NUMBER = re.compile(r"(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?![\w.])")
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_OPERATOR = re.compile(r"==|!=|<=|>=|[-+*/%^<>@]")
_MATCH_OPERATOR = re.compile(r"=~|!~|!=|=")
_RANGE = re.compile(
    rf"\[\s*(?:{_DURATION}|{_VARIABLE})\s*(?::\s*(?:{_DURATION}|{_VARIABLE})?\s*)?\]"
)
_PAIRS = {")": "(", "]": "[", "}": "{"}


class PromQLError(ValueError):
    """An expression the checker rejects; the message says where and why."""


Matcher = tuple[str, str, str]


@dataclass(frozen=True)
class Selector:
    """A metric an expression selects, its label matchers, and the innermost aggregation
    around it (None outside any)."""

    metric: str
    matchers: tuple[Matcher, ...] = ()
    aggregation: str | None = None


def check_balanced(expr: str) -> None:
    """Raises PromQLError on an unbalanced (, [ or {, or an unterminated string."""
    stack: list[tuple[str, int]] = []
    pos = 0
    while pos < len(expr):
        char = expr[pos]
        if char in "\"'`":
            string = _STRING.match(expr, pos)
            if string is None:
                raise PromQLError(f"unterminated string at {pos}: {expr!r}")
            pos = string.end()
            continue
        if char in "([{":
            stack.append((char, pos))
        elif char in _PAIRS:
            if not stack or stack[-1][0] != _PAIRS[char]:
                raise PromQLError(f"unbalanced {char!r} at {pos}: {expr!r}")
            stack.pop()
        pos += 1
    if stack:
        char, at = stack[-1]
        raise PromQLError(f"unclosed {char!r} at {at}: {expr!r}")


def _skip_space(expr: str, pos: int) -> int:
    space = _SPACE.match(expr, pos)
    return space.end() if space else pos


def _expect(pattern: re.Pattern[str], expr: str, pos: int, what: str) -> re.Match[str]:
    found = pattern.match(expr, pos)
    if found is None:
        raise PromQLError(f"{what} expected at {pos}: {expr!r}")
    return found


def _matchers(expr: str, pos: int) -> tuple[tuple[Matcher, ...], int]:
    """The label matchers of ``{...}`` starting at ``pos``, and the position after them."""
    found: list[Matcher] = []
    pos = _skip_space(expr, pos + 1)
    while not expr.startswith("}", pos):
        label = _expect(_LABEL, expr, pos, "label name")
        op = _expect(_MATCH_OPERATOR, expr, _skip_space(expr, label.end()), "label matcher")
        value = _expect(_STRING, expr, _skip_space(expr, op.end()), "quoted label value")
        found.append((label.group(), op.group(), value.group()[1:-1]))
        pos = _skip_space(expr, value.end())
        if expr.startswith(",", pos):
            pos = _skip_space(expr, pos + 1)
        elif not expr.startswith("}", pos):
            raise PromQLError(f"',' or '}}' expected at {pos}: {expr!r}")
    return tuple(found), pos + 1


def _label_list(expr: str, pos: int) -> int:
    """The position after the ``(label, ...)`` starting at ``pos``."""
    pos = _skip_space(expr, pos + 1)
    while not expr.startswith(")", pos):
        label = _expect(_LABEL, expr, pos, "label name")
        pos = _skip_space(expr, label.end())
        if expr.startswith(",", pos):
            pos = _skip_space(expr, pos + 1)
        elif not expr.startswith(")", pos):
            raise PromQLError(f"',' or ')' expected at {pos}: {expr!r}")
    return pos + 1


def parse(expr: str) -> list[Selector]:
    """The metrics ``expr`` selects.

    Not a full PromQL parser: it checks what a typo breaks (brackets, matchers, ranges,
    function and keyword names, stray characters), not operand order or types.
    Raises PromQLError.
    """
    check_balanced(expr)
    selectors: list[Selector] = []
    frames: list[tuple[str, str]] = []  # per open "(": ("agg" | "call" | "group", name)
    opener: tuple[str, str] | None = None  # what the next "(" opens, after a name
    waiting_aggregation: str | None = None  # an aggregation whose body follows its "by (...)"

    def innermost_aggregation() -> str | None:
        return next((name for kind, name in reversed(frames) if kind == "agg"), None)

    pos = _skip_space(expr, 0)
    if pos == len(expr):
        raise PromQLError("empty expression")
    while pos < len(expr):
        char = expr[pos]
        if opener is not None and char != "(":
            kind, name = opener
            clause = _IDENTIFIER.match(expr, pos)
            if kind == "agg" and clause and clause.group() in ("by", "without"):
                pass  # max by (label) (...): the body comes after the clause
            elif kind == "labels" and name in ("group_left", "group_right"):
                opener = None
            else:
                raise PromQLError(f"'(' expected after {name!r} at {pos}: {expr!r}")
        if char == "(":
            if opener is not None and opener[0] == "labels":
                pos = _label_list(expr, pos)
                opener = ("agg", waiting_aggregation) if waiting_aggregation else None
                waiting_aggregation = None
            else:
                frames.append(opener or ("group", ""))
                opener = waiting_aggregation = None
                pos += 1
        elif char == ")":
            frames.pop()
            pos += 1
        elif char == ",":
            if not frames or frames[-1][0] == "group":
                raise PromQLError(f"',' outside a call's arguments at {pos}: {expr!r}")
            pos += 1
        elif char == "{":
            matchers, pos = _matchers(expr, pos)
            names = [value for label, op, value in matchers if label == "__name__" and op == "="]
            if not matchers:
                raise PromQLError(f"empty selector at {pos}: {expr!r}")
            selectors.append(Selector(names[0] if names else "", matchers, innermost_aggregation()))
        elif char == "[":
            pos = _expect(_RANGE, expr, pos, "a range [duration] or [duration:step]").end()
        elif char in "]}":
            raise PromQLError(f"unexpected {char!r} at {pos}: {expr!r}")
        elif found := (
            _STRING.match(expr, pos)
            or _DURATION_LITERAL.match(expr, pos)
            or _NUMBER.match(expr, pos)
        ):
            pos = found.end()
        elif found := _IDENTIFIER.match(expr, pos):
            word = found.group()
            pos = found.end()
            if word in AGGREGATIONS:
                opener, waiting_aggregation = ("agg", word), word
            elif word in FUNCTIONS:
                opener = ("call", word)
            elif word in LABEL_LIST_KEYWORDS:
                opener = ("labels", word)
            elif word in BINARY_KEYWORDS or word.lower() in NUMBER_WORDS:
                pass
            elif expr.startswith("(", _skip_space(expr, pos)):
                raise PromQLError(f"unknown function {word!r}: {expr!r}")
            else:
                matchers = ()
                after = _skip_space(expr, pos)
                if expr.startswith("{", after):
                    matchers, pos = _matchers(expr, after)
                selectors.append(Selector(word, matchers, innermost_aggregation()))
        elif found := _OPERATOR.match(expr, pos):
            pos = found.end()
        else:
            raise PromQLError(f"unexpected {char!r} at {pos}: {expr!r}")
        pos = _skip_space(expr, pos)
    if opener is not None and opener[0] != "labels":
        raise PromQLError(f"'(' expected after {opener[1]!r} at the end: {expr!r}")
    return selectors


def expression_problems(expr: str, exported: frozenset[str]) -> list[str]:
    """What is wrong with one expression: syntax, metrics nobody exports, global gauges summed."""
    try:
        selectors = parse(expr)
    except PromQLError as exc:
        return [str(exc)]
    problems: list[str] = []
    for selector in selectors:
        metric = selector.metric
        if metric.startswith("neosl_"):
            if not is_exported(metric, exported):
                problems.append(f"unknown metric {metric!r} (no service exports it)")
        elif metric not in EXTERNAL_METRICS:
            problems.append(f"unknown metric {metric!r} (not ours, not a known exporter's)")
        if base_name(metric) in GLOBAL_GAUGES and selector.aggregation not in GLOBAL_AGGREGATIONS:
            problems.append(
                f"{metric} is the same on every replica: aggregate it with max or min, "
                f"not {selector.aggregation or 'nothing'}"
            )
    return problems


# --- The rule file ------------------------------------------------------------------------

# A Prometheus duration, as in `for:` (model.ParseDuration): units in decreasing order, or 0.
DURATION_PATTERN = r"^(?:0|(?=\d)(?:\d+y)?(?:\d+w)?(?:\d+d)?(?:\d+h)?(?:\d+m)?(?:\d+s)?(?:\d+ms)?)$"
SEVERITIES = ("page", "ticket")

RULE_FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["groups"],
    "additionalProperties": False,
    "properties": {
        "groups": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/group"}},
    },
    "$defs": {
        "duration": {"type": "string", "pattern": DURATION_PATTERN},
        "labels": {
            "type": "object",
            "propertyNames": {"pattern": r"^[a-zA-Z_][a-zA-Z0-9_]*$"},
            "additionalProperties": {"type": "string"},
        },
        "annotations": {
            "type": "object",
            "propertyNames": {"pattern": r"^[a-zA-Z_][a-zA-Z0-9_]*$"},
            "additionalProperties": {"type": "string", "minLength": 1},
        },
        "group": {
            "type": "object",
            "required": ["name", "rules"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "interval": {"$ref": "#/$defs/duration"},
                "query_offset": {"$ref": "#/$defs/duration"},
                "limit": {"type": "integer", "minimum": 0},
                "labels": {"$ref": "#/$defs/labels"},
                "rules": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/rule"}},
            },
        },
        "rule": {
            "type": "object",
            "required": ["expr"],
            "additionalProperties": False,
            "properties": {
                "alert": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
                "record": {"type": "string", "pattern": r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"},
                "expr": {"type": "string", "minLength": 1},
                "for": {"$ref": "#/$defs/duration"},
                "keep_firing_for": {"$ref": "#/$defs/duration"},
                "labels": {"$ref": "#/$defs/labels"},
                "annotations": {"$ref": "#/$defs/annotations"},
            },
            # Exactly one of alert and record.
            "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
            "if": {"required": ["alert"]},
            "then": {
                "required": ["for", "labels", "annotations"],
                "properties": {
                    "labels": {
                        "required": ["severity"],
                        "properties": {"severity": {"enum": list(SEVERITIES)}},
                    },
                    "annotations": {"required": ["summary", "description"]},
                },
            },
            "else": {
                "not": {
                    "anyOf": [
                        {"required": ["for"]},
                        {"required": ["keep_firing_for"]},
                        {"required": ["annotations"]},
                    ]
                }
            },
        },
    },
}


def schema_problems(document: Any) -> list[str]:
    validator = Draft202012Validator(RULE_FILE_SCHEMA)
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=str)
    ]


def rules(document: Any) -> Iterator[dict[str, Any]]:
    for group in document["groups"]:
        yield from group["rules"]


def alerts(document: Any) -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in rules(document) if "alert" in rule}


def template_problems(text: str) -> list[str]:
    """Unbalanced ``{{ }}`` in an annotation (Go templates)."""
    rest = re.sub(r"\{\{[^{}]*\}\}", "", text)
    return [f"unbalanced template braces: {text!r}"] if "{{" in rest or "}}" in rest else []


def rule_file_problems(document: Any, exported: frozenset[str]) -> list[str]:
    """Everything wrong with a rule file: schema, names, expressions, metrics, templates."""
    problems = schema_problems(document)
    if problems:
        return problems
    group_names = [group["name"] for group in document["groups"]]
    alert_names = [rule["alert"] for rule in rules(document) if "alert" in rule]
    for kind, names in (("group", group_names), ("alert", alert_names)):
        problems += [
            f"duplicate {kind} name {n!r}" for n in sorted(set(names)) if names.count(n) > 1
        ]
    for rule in rules(document):
        name = rule.get("alert") or rule["record"]
        problems += [f"{name}: {p}" for p in expression_problems(rule["expr"], exported)]
        for text in rule.get("annotations", {}).values():
            problems += [f"{name}: {p}" for p in template_problems(text)]
    return problems


def seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)(ms|[smhdwy])", duration))


@cache
def rule_file() -> Any:
    return yaml.safe_load(ALERTS.read_text())


# --- The dashboard ------------------------------------------------------------------------

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@cache
def dashboard() -> Any:
    return json.loads(DASHBOARD.read_text())


def panels(board: Any) -> list[dict[str, Any]]:
    """Every panel, rows and the panels collapsed rows hold included."""
    found: list[dict[str, Any]] = []
    for panel in board["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def graphs(board: Any) -> list[dict[str, Any]]:
    return [panel for panel in panels(board) if panel["type"] != "row"]


def dashboard_exprs(board: Any) -> list[str]:
    return [target["expr"] for panel in graphs(board) for target in panel["targets"]]


# --- What must be watched -----------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """Something an operator must act on: an alert selects ``metric`` with ``matchers``."""

    what: str
    metric: str
    matchers: tuple[Matcher, ...] = ()


REQUIRED_ALERTS = (
    Condition("chain follower lagging", "neosl_chain_follower_lag_blocks"),
    Condition("chain follower stalled", "neosl_chain_follower_update_age_seconds"),
    Condition("queue backlog", "neosl_queue_length"),
    Condition("hot wallet low", "neosl_hot_wallet_balance_gas"),
    Condition("ledger verify failing", "neosl_ledger_mismatched_accounts"),
    Condition(
        "executor restarts",
        "kube_pod_container_status_restarts_total",
        (("container", "=", "executor"),),
    ),
    Condition("sandbox restarts", "neosl_sandbox_restarts"),
    Condition("price feeds stale", "neosl_price_feeds_stale"),
    Condition("task failures", "neosl_task_runs_total", (("outcome", "=", "failed"),)),
    Condition("API 5xx ratio", "neosl_http_requests_total", (("status", "=~", "5.."),)),
    Condition("API p99 latency", "neosl_http_request_duration_seconds_bucket"),
    Condition("a target down", "up"),
    Condition("price publications stuck", "neosl_price_publications_in_flight"),
    Condition("relay actions failing", "neosl_relay_settled_total", (("outcome", "=", "failed"),)),
    Condition("trigger fire lag", "neosl_trigger_fire_lag_seconds_bucket"),
    Condition("market list not refreshed", "neosl_price_source_listing_failing"),
)

# Figures the dashboard must show (as base names: a histogram's or counter's own name).
REQUIRED_FIGURES = (
    "neosl_http_requests",
    "neosl_http_request_duration_seconds",
    "neosl_queue_length",
    "neosl_task_runs",
    "neosl_executions",
    "neosl_execution_duration_milliseconds",
    "neosl_chain_height",
    "neosl_chain_follower_next_block",
    "neosl_chain_follower_lag_blocks",
    "neosl_hot_wallet_balance_gas",
    "neosl_ledger_balance_gas",
    "neosl_ledger_mismatched_accounts",
    "neosl_relay_settled",
    "neosl_price_feeds_stale",
    "neosl_price_rounds",
    "neosl_price_publications_in_flight",
    "neosl_trigger_fire_lag_seconds",
)


def selects(selector: Selector, condition: Condition) -> bool:
    return selector.metric == condition.metric and set(condition.matchers) <= set(selector.matchers)


# --- The checker itself -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (
            'max by (queue) (neosl_queue_length{queue="executor"}) > 1000',
            [Selector("neosl_queue_length", (("queue", "=", "executor"),), "max")],
        ),
        (
            "histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))",
            [Selector("x_bucket", (), "sum")],
        ),
        (
            'sum(rate(x{a="b", c=~"d.*", e!="f", g!~"h",}[$__rate_interval])) by (a)',
            [
                Selector(
                    "x",
                    (("a", "=", "b"), ("c", "=~", "d.*"), ("e", "!=", "f"), ("g", "!~", "h")),
                    "sum",
                )
            ],
        ),
        (
            "max(x) by (a) / on (a) group_left y",
            [Selector("x", (), "max"), Selector("y", (), None)],
        ),
        (
            "sum(max by (status) (x)) > 2 * max(y offset 5m)",
            [Selector("x", (), "max"), Selector("y", (), "max")],
        ),
        ("max_over_time(x[1h:5m]) and x > bool 1e3", [Selector("x"), Selector("x")]),
        (
            'count(up{job=~"neosl-.*"} == 0) or vector(0)',
            [Selector("up", (("job", "=~", "neosl-.*"),), "count")],
        ),
    ],
)
def test_the_checker_reads_what_an_expression_selects(expr: str, expected: list[Selector]) -> None:
    assert parse(expr) == expected


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("max(x", "unclosed '('"),
        ("max(x))", "unbalanced ')'"),
        ("rate(x[5m)]", "unbalanced ')'"),
        ('x{a="b"', "unclosed '{'"),
        ('x{a="b}', "unterminated string"),
        ("x{a=b}", "quoted label value expected"),
        ('x{a=="b"}', "quoted label value expected"),
        ('x{="b"}', "label name expected"),
        ('x{a="b" c="d"}', "',' or '}' expected"),
        ('x{a~"b"}', "label matcher expected"),
        ("{}", "empty selector"),
        ("rate(x[5])", "a range"),
        ("rate(x[])", "a range"),
        ("rat(x[5m])", "unknown function 'rat'"),
        ("sum by le (x)", "'(' expected after 'by'"),
        ("max by (l e) (x)", "',' or ')' expected"),
        ("x = 1", "unexpected '='"),
        ("x, y", "',' outside"),
        ("", "empty expression"),
    ],
)
def test_the_checker_rejects_broken_expressions(expr: str, message: str) -> None:
    with pytest.raises(PromQLError, match=re.escape(message)):
        parse(expr)


def test_the_checker_wants_global_gauges_aggregated_with_max() -> None:
    exported = frozenset({"neosl_queue_length"})
    assert expression_problems("max by (queue) (neosl_queue_length)", exported) == []
    assert expression_problems("min(neosl_queue_length) > 0", exported) == []
    assert expression_problems("sum(neosl_queue_length)", exported) == [
        "neosl_queue_length is the same on every replica: aggregate it with max or min, not sum"
    ]
    assert expression_problems("neosl_queue_length > 5", exported) == [
        "neosl_queue_length is the same on every replica: aggregate it with max or min, not nothing"
    ]


def test_scraped_names_match_the_names_the_code_spells() -> None:
    exported = frozenset({"neosl_task_runs", "neosl_trigger_fire_lag_seconds", "neosl_x_total"})
    for name in (
        "neosl_task_runs_total",
        "neosl_trigger_fire_lag_seconds_bucket",
        "neosl_trigger_fire_lag_seconds_count",
        "neosl_x_total",
    ):
        assert is_exported(name, exported), name
    assert not is_exported("neosl_task_runs_failed", exported)
    assert not is_exported("neosl_trigger_fire_lag", exported)


# A rule that passes every check, and ways to break it.
GOOD_RULE_FILE: dict[str, Any] = {
    "groups": [
        {
            "name": "g",
            "rules": [
                {
                    "alert": "Lagging",
                    "expr": "max(neosl_chain_follower_lag_blocks) > 20",
                    "for": "5m",
                    "labels": {"severity": "page"},
                    "annotations": {"summary": "{{ $value }} behind", "description": "d"},
                },
                {"record": "neosl:lag:max", "expr": "max(neosl_chain_follower_lag_blocks)"},
            ],
        }
    ]
}


def broken(change: str) -> dict[str, Any]:
    document = copy.deepcopy(GOOD_RULE_FILE)
    alert = document["groups"][0]["rules"][0]
    match change:
        case "unbalanced paren":
            alert["expr"] = "max(neosl_chain_follower_lag_blocks > 20"
        case "unknown metric":
            alert["expr"] = "max(neosl_chain_follower_lag_block) > 20"
        case "foreign metric":
            alert["expr"] = "max(node_load1) > 20"
        case "missing severity":
            del alert["labels"]["severity"]
        case "other severity":
            alert["labels"]["severity"] = "critical"
        case "missing summary":
            del alert["annotations"]["summary"]
        case "bad duration":
            alert["for"] = "5 minutes"
        case "no for":
            del alert["for"]
        case "alert and record":
            alert["record"] = "neosl:lag"
        case "neither alert nor record":
            del alert["alert"]
        case "numeric expr":
            alert["expr"] = 1
        case "duplicate group":
            document["groups"].append(copy.deepcopy(document["groups"][0]))
        case "summed gauge":
            alert["expr"] = "sum(neosl_chain_follower_lag_blocks) > 20"
        case "broken template":
            alert["annotations"]["summary"] = "{{ $value behind"
        case "recording rule with for":
            document["groups"][0]["rules"][1]["for"] = "1m"
    return document


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ("unbalanced paren", r"^Lagging: unclosed '\('"),
        ("unknown metric", r"^Lagging: unknown metric 'neosl_chain_follower_lag_block' "),
        ("foreign metric", r"^Lagging: unknown metric 'node_load1' "),
        ("missing severity", r"^groups/0/rules/0/labels: 'severity' is a required property"),
        ("other severity", r"^groups/0/rules/0/labels/severity: 'critical' is not one of"),
        ("missing summary", r"^groups/0/rules/0/annotations: 'summary' is a required property"),
        ("bad duration", r"^groups/0/rules/0/for: '5 minutes' does not match"),
        ("no for", r"^groups/0/rules/0: 'for' is a required property"),
        ("alert and record", r"^groups/0/rules/0: .* is valid under each of"),
        ("neither alert nor record", r"^groups/0/rules/0: .* is not valid under any of"),
        ("numeric expr", r"^groups/0/rules/0/expr: 1 is not of type 'string'"),
        ("duplicate group", r"^duplicate group name 'g'$"),
        ("summed gauge", r"^Lagging: neosl_chain_follower_lag_blocks is the same on every"),
        ("broken template", r"^Lagging: unbalanced template braces"),
        ("recording rule with for", r"^groups/0/rules/1: .* should not be valid under"),
    ],
)
def test_the_checker_rejects_a_broken_rule(change: str, pattern: str) -> None:
    assert rule_file_problems(GOOD_RULE_FILE, exported_names()) == []
    problems = rule_file_problems(broken(change), exported_names())
    assert any(re.search(pattern, problem) for problem in problems), problems


# --- The rule file ------------------------------------------------------------------------


def test_the_schema_is_a_valid_json_schema() -> None:
    Draft202012Validator.check_schema(RULE_FILE_SCHEMA)


def test_the_rule_file_is_a_valid_prometheus_rule_file() -> None:
    assert schema_problems(rule_file()) == []


def test_group_and_alert_names_are_unique() -> None:
    groups = [group["name"] for group in rule_file()["groups"]]
    names = [rule["alert"] for rule in rules(rule_file())]
    assert len(groups) == len(set(groups)), groups
    assert len(names) == len(set(names)), names


def test_every_alert_expression_parses_and_aggregates_gauges_with_max() -> None:
    # Unknown metrics are the next test's: here only what the expressions are made of.
    problems = [
        f"{name}: {problem}"
        for name, rule in alerts(rule_file()).items()
        for problem in expression_problems(rule["expr"], exported_names())
        if not problem.startswith("unknown metric 'neosl_")
    ]
    assert problems == []


def test_every_annotation_template_is_balanced() -> None:
    problems = [
        f"{name}: {problem}"
        for name, rule in alerts(rule_file()).items()
        for text in rule["annotations"].values()
        for problem in template_problems(text)
    ]
    assert problems == []


def used_metrics(exprs: list[str]) -> set[str]:
    return {selector.metric for expr in exprs for selector in parse(expr)}


def label_values(exprs: list[str], label: str) -> set[str]:
    """The values the expressions match ``label`` against, each alternative of a regex
    (``a|b``) on its own: e.g. the queues of ``neosl_queue_length{queue="executor"}``."""
    return {
        alternative
        for expr in exprs
        for selector in parse(expr)
        for name, _, value in selector.matchers
        if name == label
        for alternative in value.split("|")
    }


def every_expr() -> list[str]:
    """The expressions of the rule file and of the dashboard."""
    return [rule["expr"] for rule in rules(rule_file())] + dashboard_exprs(dashboard())


def test_label_values_are_read_from_every_matcher() -> None:
    exprs = [
        'max by (queue) (neosl_queue_length{queue="executor"})',
        'sum(rate(neosl_task_runs_total{queue=~"scheduler|gasbank", task!="x"}[5m]))',
    ]
    assert label_values(exprs, "queue") == {"executor", "scheduler", "gasbank"}
    assert label_values(exprs, "task") == {"x"}
    assert label_values(exprs, "container") == set()


@pytest.mark.parametrize("where", ["alerts", "dashboard"])
def test_every_metric_used_is_exported(where: str) -> None:
    exprs = (
        [rule["expr"] for rule in rules(rule_file())]
        if where == "alerts"
        else dashboard_exprs(dashboard())
    )
    used = used_metrics(exprs)
    ours = {m for m in used if m.startswith("neosl_")}
    assert used - ours <= set(EXTERNAL_METRICS), used - ours
    missing = sorted(m for m in ours if not is_exported(m, exported_names()))
    assert missing == [], f"no service exports {missing}"


def test_the_sources_are_found() -> None:
    # A glob gone wrong would make every metric look unexported.
    assert {"neosl_task_runs", "neosl_chain_height", "neosl_executions"} <= exported_names()


@pytest.mark.parametrize("condition", REQUIRED_ALERTS, ids=lambda c: c.what)
def test_every_required_condition_has_an_alert(condition: Condition) -> None:
    covering = [
        name
        for name, rule in alerts(rule_file()).items()
        if any(selects(selector, condition) for selector in parse(rule["expr"]))
    ]
    assert covering, f"no alert selects {condition.metric} with {condition.matchers}"


def test_a_ledger_mismatch_pages_at_once() -> None:
    (rule,) = [
        rule
        for rule in alerts(rule_file()).values()
        if "neosl_ledger_mismatched_accounts" in used_metrics([rule["expr"]])
    ]
    assert rule["labels"]["severity"] == "page"
    assert seconds(rule["for"]) <= 60


def test_the_queue_backlog_alerts_per_queue() -> None:
    backlog = [
        rule["expr"]
        for rule in alerts(rule_file()).values()
        if "neosl_queue_length" in used_metrics([rule["expr"]])
    ]
    assert backlog
    assert all(re.search(r"\bby\s*\(\s*queue\s*\)", expr) for expr in backlog), backlog


def test_both_severities_are_used_and_every_alert_waits_a_stated_time() -> None:
    found = alerts(rule_file())
    assert {rule["labels"]["severity"] for rule in found.values()} == set(SEVERITIES)
    assert all(re.fullmatch(DURATION_PATTERN, rule["for"]) for rule in found.values())


# --- The dashboard ------------------------------------------------------------------------


def test_the_dashboard_is_the_overview_with_a_datasource_variable() -> None:
    board = dashboard()
    assert board["uid"] == "neosl-overview"
    assert board["title"] == "Neo N3 Service Layer"
    assert board["schemaVersion"] >= 36
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"


def test_every_panel_has_a_unique_id_and_a_place_of_its_own() -> None:
    ids = [panel["id"] for panel in panels(dashboard())]
    assert len(ids) == len(set(ids)), ids
    taken: set[tuple[int, int]] = set()
    for panel in panels(dashboard()):
        box = panel["gridPos"]
        assert all(isinstance(box[k], int) for k in ("h", "w", "x", "y")), panel["title"]
        assert box["w"] > 0, panel["title"]
        assert box["h"] > 0, panel["title"]
        assert box["x"] + box["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(box["x"], box["x"] + box["w"])
            for y in range(box["y"], box["y"] + box["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_every_panel_queries_the_datasource_variable() -> None:
    for panel in graphs(dashboard()):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource", DATASOURCE) == DATASOURCE, panel["title"]
            assert isinstance(target["expr"], str), panel["title"]


def test_every_dashboard_expression_parses_and_aggregates_gauges_with_max() -> None:
    problems = [
        f"{expr}: {problem}"
        for expr in dashboard_exprs(dashboard())
        for problem in expression_problems(expr, exported_names())
        if not problem.startswith("unknown metric 'neosl_")
    ]
    assert problems == []


def test_the_dashboard_shows_every_figure() -> None:
    shown = {
        candidate
        for metric in used_metrics(dashboard_exprs(dashboard()))
        for candidate in (metric, *(metric.removesuffix(s) for s in SUFFIXES))
    }
    assert sorted(set(REQUIRED_FIGURES) - shown) == []
