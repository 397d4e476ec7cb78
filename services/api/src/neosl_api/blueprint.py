"""The Blueprint every resource uses: flask-smorest's, with strict argument parsing."""

from __future__ import annotations

import flask_smorest
from webargs.flaskparser import FlaskParser


class StrictParser(FlaskParser):
    # webargs drops unknown query-string arguments by default; we let the schema's
    # Meta.unknown (RAISE) decide everywhere, so a mistyped "limt=5" is a 422, not ignored.
    DEFAULT_UNKNOWN_BY_LOCATION = dict.fromkeys(FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION)


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]  # flask-smorest ships no type hints
    ARGUMENTS_PARSER = StrictParser()
