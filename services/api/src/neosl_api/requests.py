"""Every request: its id, its access log line and its metrics.

The id is the client's ``X-Request-ID`` when it is a plain short token, else a new one; it
is answered in ``X-Request-ID``, carried by every log record of the request and by the jobs
the request queues (``neosl.logs``). The access line names the route template, never the
path as sent (no ids or tokens from URLs in the logs), and the query string is left out.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

from neosl import logs
from neosl_api.metrics import HttpMetrics

log = logging.getLogger("neosl_api.access")

_HEADER = "X-Request-ID"


def init_app(app: Flask, metrics: HttpMetrics) -> None:
    @app.before_request
    def start() -> None:
        g.nsl_started = time.perf_counter()
        g.nsl_request_id = logs.request_id(request.headers.get(_HEADER))
        g.nsl_log_token = logs.bind(request_id=g.nsl_request_id)

    @app.after_request
    def finish(response: Response) -> Response:
        started = g.get("nsl_started")
        if started is None:  # a request that failed before our first hook
            return response
        seconds = time.perf_counter() - started
        rule = request.url_rule
        route = rule.rule if rule is not None else "unmatched"
        metrics.observe(request.method, route, response.status_code, seconds)
        response.headers[_HEADER] = g.nsl_request_id
        log.info(
            "%s %s %d %.1f ms",
            request.method,
            route,
            response.status_code,
            seconds * 1000,
        )
        return response

    @app.teardown_request
    def unbind(_exc: BaseException | None) -> None:
        token = g.pop("nsl_log_token", None)
        if token is not None:
            logs.unbind(token)
