"""The Blueprint every resource uses: flask-smorest's, with strict argument parsing."""

from __future__ import annotations

from typing import Any

import flask
import flask_smorest
from webargs.flaskparser import FlaskParser

from neosl_api import bodies


class StrictParser(FlaskParser):
    # webargs drops unknown query-string arguments by default; we let the schema's
    # Meta.unknown (RAISE) decide everywhere, so a mistyped "limt=5" is a 422, not ignored.
    DEFAULT_UNKNOWN_BY_LOCATION = dict.fromkeys(FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION)

    def _raw_load_json(self, req: flask.Request) -> Any:
        # The body was checked (depth, encoding) and parsed before the view: never parse the
        # bytes a second time, with a parser that has no depth limit.
        parsed = bodies.parsed()
        if parsed is not None:
            return parsed[0]
        return super()._raw_load_json(req)


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]  # flask-smorest ships no type hints
    ARGUMENTS_PARSER = StrictParser()
