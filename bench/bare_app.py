"""The floor for ``api_hot_path.py``: a bare Flask app whose one route runs ``SELECT 1``.

Served by gunicorn with the API's settings (``bare_app:create_app()``, with this folder on
the Python path). Its engine comes from ``neosl.db.make_engine`` like the API's, so the
pool, its size and its disconnect handling are the same: what differs is only what the API
does around its one query (routing, authentication, the ORM, serialisation).
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import text

from neosl.config import load_settings
from neosl.db import make_engine

_SELECT_1 = text("SELECT 1")


def create_app() -> Flask:
    engine = make_engine(load_settings())
    app = Flask("bare_app")

    @app.get("/select1")
    def select1() -> dict[str, Any]:
        with engine.connect() as conn:
            return {"value": conn.scalar(_SELECT_1)}

    return app
