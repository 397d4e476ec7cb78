"""The pagination convention: the helper on a real table, and the HTTP arguments."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from neosl.errors import InvalidInput
from neosl.models import Function, User
from neosl_api import context
from neosl_api.auth import public
from neosl_api.blueprint import Blueprint
from neosl_api.pagination import encode_cursor, paginate
from neosl_api.schemas.accounts import UserSchema
from neosl_api.schemas.common import PageArgsSchema, page_of
from neosl_api.tenancy import owned_by
from tests.api.test_basics import assert_error
from tests.factories import make_function, make_user


def test_pages_walk_newest_first_without_gaps_or_repeats(db: Session) -> None:
    user = make_user(db)
    ids = [make_function(db, user).id for _ in range(7)]
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        page = paginate(db, owned_by(Function, user.id), Function.id, limit=3, cursor=cursor)
        seen += [f.id for f in page.items]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == sorted(ids, reverse=True)
    assert pages == 3


def test_exact_multiple_has_no_empty_last_page(db: Session) -> None:
    user = make_user(db)
    for _ in range(4):
        make_function(db, user)
    first = paginate(db, owned_by(Function, user.id), Function.id, limit=2)
    second = paginate(
        db, owned_by(Function, user.id), Function.id, limit=2, cursor=first.next_cursor
    )
    assert len(second.items) == 2
    assert second.next_cursor is None


def test_rows_added_meanwhile_do_not_shift_later_pages(db: Session) -> None:
    user = make_user(db)
    for _ in range(4):
        make_function(db, user)
    first = paginate(db, owned_by(Function, user.id), Function.id, limit=2)
    make_function(db, user)
    second = paginate(
        db, owned_by(Function, user.id), Function.id, limit=2, cursor=first.next_cursor
    )
    assert max(f.id for f in second.items) < min(f.id for f in first.items)


@pytest.mark.parametrize("limit", [0, 101])
def test_limit_out_of_range(db: Session, limit: int) -> None:
    with pytest.raises(InvalidInput):
        paginate(db, owned_by(Function, 1), Function.id, limit=limit)


@pytest.fixture
def list_app(app: Flask) -> Flask:
    """A list endpoint built the way every resource's list endpoint is built."""
    blp = Blueprint("probe", __name__)

    @blp.route("/probe-list")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, page_of(UserSchema))
    @public
    def probe_list(args: dict[str, Any]) -> Any:
        return paginate(
            context.db(), select(User), User.id, limit=args["limit"], cursor=args["cursor"]
        )

    app.extensions["flask-smorest"]["apis"][""]["ext_obj"].register_blueprint(blp)
    return app


def test_http_list_convention(list_app: Flask, db: Session) -> None:
    for _ in range(3):
        make_user(db)
    db.commit()
    client = list_app.test_client()
    first = client.get("/probe-list?limit=2").get_json()
    assert len(first["items"]) == 2
    assert first["next_cursor"]
    second = client.get(f"/probe-list?limit=2&cursor={first['next_cursor']}").get_json()
    assert len(second["items"]) == 1
    assert second["next_cursor"] is None


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "cursor=%25%25", "sort=id"])
def test_http_list_bad_arguments_are_422(list_app: Flask, query: str) -> None:
    assert_error(list_app.test_client().get(f"/probe-list?{query}"), 422, "validation_error")


def test_cursor_for_a_missing_id_is_just_an_empty_page(list_app: Flask) -> None:
    resp = list_app.test_client().get(f"/probe-list?cursor={encode_cursor(1)}")
    assert resp.get_json() == {"items": [], "next_cursor": None}
