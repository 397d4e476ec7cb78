from __future__ import annotations

import pytest

from neosl.errors import InvalidInput
from neosl_api.pagination import decode_cursor, encode_cursor


def test_cursor_round_trip() -> None:
    for value in (1, 99, 2**40):
        assert decode_cursor(encode_cursor(value)) == value


@pytest.mark.parametrize(
    "junk", ["", "%%%", "aWQ6", "eDox", "aWQ6LTE", "\u00e9", encode_cursor(2**63), encode_cursor(0)]
)
def test_malformed_cursor_is_invalid_input(junk: str) -> None:
    with pytest.raises(InvalidInput):
        decode_cursor(junk)
