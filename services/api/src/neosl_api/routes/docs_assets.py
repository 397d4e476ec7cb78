"""Swagger UI's JavaScript and CSS, served from the installed package.

/docs then works on machines without internet access, and loads no third-party script.
"""

from __future__ import annotations

from flask import Blueprint, Response, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from neosl_api.auth import public

ASSETS_URL = "/docs-assets/"

blp = Blueprint("docs_assets", __name__)


@blp.route(f"{ASSETS_URL}<path:filename>")
@public
def asset(filename: str) -> Response:
    return send_from_directory(swagger_ui_path, filename, max_age=86400)
