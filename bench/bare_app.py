"""Floors for the API's benchmarks: a bare Flask app with two routes.

Served by gunicorn with the API's settings (``bare_app:create_app()``, with this folder on
the Python path). Its engine comes from ``neosl.db.make_engine`` like the API's, so the
pool, its size and its disconnect handling are the same: what differs is only what the API
does around its work (routing, authentication, the ORM, serialisation, the guarantees).

* ``GET /select1`` (``api_hot_path.py``): one ``SELECT 1``.
* ``POST /accept`` (``executions.py``, figure 1): what any service that queues work must do
  at the least: one INSERT of the request's JSON, a commit and one Celery publish of a job
  naming the new row (``send_task`` with ``ignore_result``, on the app ``make_celery``
  builds, onto ``BARE_QUEUE``, which nothing consumes: the bench empties it), answered 202.
  The bench makes its table (``BARE_TABLE_DDL``) before it starts the server.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from sqlalchemy import text

from neosl.celery_app import make_celery
from neosl.config import load_settings
from neosl.db import make_engine

_SELECT_1 = text("SELECT 1")
BARE_QUEUE = "bench-bare"
BARE_TASK = "bench.bare"
BARE_TABLE_DDL = "CREATE TABLE IF NOT EXISTS bench_accepted (id bigserial PRIMARY KEY, input jsonb)"
_INSERT = text("INSERT INTO bench_accepted (input) VALUES (CAST(:input AS jsonb)) RETURNING id")


def create_app() -> Flask:
    settings = load_settings()
    engine = make_engine(settings)
    producer = make_celery(settings, "bare_app")
    app = Flask("bare_app")

    @app.get("/select1")
    def select1() -> dict[str, Any]:
        with engine.connect() as conn:
            return {"value": conn.scalar(_SELECT_1)}

    @app.post("/accept")
    def accept() -> tuple[dict[str, Any], int]:
        with engine.begin() as conn:
            row_id = conn.scalar(_INSERT, {"input": request.get_data(as_text=True) or "null"})
        producer.send_task(
            BARE_TASK, kwargs={"row_id": row_id}, queue=BARE_QUEUE, ignore_result=True
        )
        return {"id": row_id}, 202

    return app
