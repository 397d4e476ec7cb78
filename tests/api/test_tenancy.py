from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from neosl.errors import NotFound
from neosl.models import Function
from neosl_api.tenancy import get_owned, owned_by
from tests.factories import make_function, make_user


def test_owner_gets_the_row(db: Session) -> None:
    alice = make_user(db)
    fn = make_function(db, alice)
    assert get_owned(db, Function, fn.id, alice.id) is fn


def test_other_tenant_gets_the_same_404_as_a_missing_row(db: Session) -> None:
    alice, mallory = make_user(db), make_user(db)
    fn = make_function(db, alice)
    with pytest.raises(NotFound) as theirs:
        get_owned(db, Function, fn.id, mallory.id)
    with pytest.raises(NotFound) as missing:
        get_owned(db, Function, fn.id + 1000, mallory.id)
    assert str(theirs.value).replace(str(fn.id), "N") == str(missing.value).replace(
        str(fn.id + 1000), "N"
    )
    assert theirs.value.status == 404


def test_owned_by_lists_only_the_callers_rows(db: Session) -> None:
    alice, bob = make_user(db), make_user(db)
    mine = {make_function(db, alice).id for _ in range(3)}
    make_function(db, bob)
    assert {f.id for f in db.scalars(owned_by(Function, alice.id))} == mine


def test_get_owned_for_update_locks_the_row(db: Session) -> None:
    alice = make_user(db)
    fn = make_function(db, alice)
    assert get_owned(db, Function, fn.id, alice.id, for_update=True).id == fn.id


@pytest.mark.parametrize("row_id", [0, -1, 2**31, 2**70])
def test_ids_no_row_can_have_are_not_found(db: Session, row_id: int) -> None:
    alice = make_user(db)
    with pytest.raises(NotFound, match=f"function {row_id} not found"):
        get_owned(db, Function, row_id, alice.id)
