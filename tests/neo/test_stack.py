"""Stack items to JSON, over hand-written items and answers recorded from neo-go."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from neosl.neo.stack import (
    MAX_DEPTH,
    MAX_ITEMS,
    StackError,
    decode,
    decode_stack,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "neo"

# From the recorded chain: the account the committee funded, the committee multisig, the
# validator's own account and the price-feed contract deployed there.
FUNDED = {
    "address": "Na4BNjSyrBDRGESC877KoKD45yg5GWUxuW",
    "hash": "0x291bff0f48bf68ca4e023953fb065fb984431f9b",
}
COMMITTEE = {
    "address": "NfgHwwTi3wHAS8aFAN243C5vGbkYDpqLHP",
    "hash": "0x56c989e76f9a2ca05bb5caa6c96f524d905accd8",
}
VALIDATOR = {
    "address": "Nhfg3TbpwogLvDGVvAvqyThbsHgoSUKwtn",
    "hash": "0xb248508f4ef7088e10c48f14d04be3272ca29eee",
}
PRICE_FEED = {
    "address": "NfeT5cuVUYbZirpv1a1kyhRt3UKvtdNdbf",
    "hash": "0x2ab58f70f3dc3bdf522247569f8c37a22b2573d8",
}


def recorded_result(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())["response"]["result"]


def integer(n: int | str) -> dict[str, Any]:
    return {"type": "Integer", "value": str(n)}


def byte_string(raw: bytes, kind: str = "ByteString") -> dict[str, Any]:
    return {"type": kind, "value": base64.b64encode(raw).decode()}


def array(*items: dict[str, Any], kind: str = "Array") -> dict[str, Any]:
    return {"type": kind, "value": list(items)}


def map_of(*pairs: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
    return {"type": "Map", "value": [{"key": k, "value": v} for k, v in pairs]}


# -- recorded answers ---------------------------------------------------------------------


def test_symbol_is_text() -> None:
    assert decode_stack(recorded_result("invokefunction_symbol")["stack"]) == ["GAS"]


def test_balance_is_a_number() -> None:
    assert decode_stack(recorded_result("invokefunction_balanceOf")["stack"]) == [8475278890]


def test_transfer_notification_has_addresses_and_amount() -> None:
    execution = recorded_result("getapplicationlog_tx_Transfer")["executions"][0]
    assert decode_stack(execution["stack"]) == [True]
    (notification,) = execution["notifications"]
    assert decode(notification["state"]) == [COMMITTEE, FUNDED, 10000000000]


def test_transfer_notification_with_raw_bytes() -> None:
    execution = recorded_result("getapplicationlog_tx_Transfer")["executions"][0]
    state = execution["notifications"][0]["state"]
    assert decode(state, bytes_as="hex") == [
        "d8cc5a904d526fc9a6cab55ba02c9a6fe789c956",
        "9b1f4384b95f06fb5339024eca68bf480fff1b29",
        10000000000,
    ]


def test_mint_and_burn_sides_are_null() -> None:
    result = json.loads((FIXTURES / "getblocknotifications.response.json").read_text())["result"]
    decoded = {
        trigger: [decode(n["state"]) for n in notifications]
        for trigger, notifications in result.items()
    }
    assert decoded == {
        "onpersist": [[FUNDED, None, 11209270], [None, VALIDATOR, 1231520]],
        "application": [
            [
                FUNDED,
                {
                    "address": "NVq2zZcUtxw6uG87gFPtXVCbZ5zSnXta86",
                    "hash": "0xb47f425804b84802922c0a943f79e0c4205bc26c",
                },
                500000000,
            ]
        ],
        "postpersist": [[None, VALIDATOR, 50000000]],
    }


def test_contract_event_with_text_and_numbers() -> None:
    execution = recorded_result("getapplicationlog_tx_PriceUpdated")["executions"][0]
    state = execution["notifications"][0]["state"]
    assert decode(state) == ["NEO/USD", 1234567890, 1700000000000]


def test_deploy_result_structs_maps_and_binary() -> None:
    execution = recorded_result("getapplicationlog_tx_Deploy")["executions"][0]
    # Typed loosely: the test knows the shape the decoder returns.
    contract: Any
    (contract,) = decode_stack(execution["stack"])
    contract_id, update_counter, contract_hash, nef, manifest = contract
    assert (contract_id, update_counter, contract_hash) == (1, 0, PRICE_FEED)
    # The NEF's header holds NUL padding: not text, so hex.
    assert isinstance(nef, str)
    assert nef.startswith(b"NEF3neo3-boa by COZ-1.5.0\x00".hex())
    assert manifest[0] == "price_feed"
    assert manifest[2] == {}  # the (empty) Map of features
    methods, events = manifest[4]
    assert methods[1] == [
        "update_price",
        [["pair", 19], ["price", 17], ["timestamp", 17]],
        16,
        0,
        False,
    ]
    assert events == [["PriceUpdated", [["pair", 19], ["price", 17], ["timestamp", 17]]]]
    assert manifest[-1] == "null"  # the manifest's "extra", a JSON text
    (deploy,) = execution["notifications"]
    assert decode(deploy["state"]) == [PRICE_FEED]


# -- scalars ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0),
        ("-0", 0),
        ("42", 42),
        ("-42", -42),
        (str(2**53 - 1), 2**53 - 1),
        (str(-(2**53 - 1)), -(2**53 - 1)),
        (str(2**53), "9007199254740992"),
        (str(-(2**53)), "-9007199254740992"),
        (str(2**255 - 1), str(2**255 - 1)),
        (str(-(2**255)), str(-(2**255))),
        ("000000000000000000000000000000000000000000000000000000000000000000000000000000007", 7),
    ],
)
def test_integers(value: str, expected: int | str) -> None:
    assert decode(integer(value)) == expected


def test_integer_as_json_number_is_accepted() -> None:
    assert decode({"type": "Integer", "value": 5}) == 5


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("12x", "item.value: '12x' is not a decimal integer"),
        ("", "item.value: '' is not a decimal integer"),
        ("+1", "item.value: '+1' is not a decimal integer"),
        ("1.0", "item.value: '1.0' is not a decimal integer"),
        (" 1", "item.value: ' 1' is not a decimal integer"),
        (True, "item.value: boolean is not a decimal integer"),
        (None, "item.value: null is not a decimal integer"),
        (str(2**255), "item.value: integer beyond Neo's 256-bit range"),
        (str(-(2**255) - 1), "item.value: integer beyond Neo's 256-bit range"),
        ("9" * 5000, "item.value: integer beyond Neo's 256-bit range"),
    ],
)
def test_bad_integers(value: object, message: str) -> None:
    with pytest.raises(StackError) as info:
        decode({"type": "Integer", "value": value})
    assert str(info.value) == message


def test_boolean_any_pointer() -> None:
    assert decode({"type": "Boolean", "value": True}) is True
    assert decode({"type": "Boolean", "value": False}) is False
    assert decode({"type": "Any"}) is None
    assert decode({"type": "Any", "value": None}) is None
    assert decode({"type": "Pointer", "value": 17}) == 17
    assert decode({"type": "Pointer", "value": "17"}) == 17


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"type": "Boolean", "value": "true"}, "item.value: a Boolean needs true or false"),
        ({"type": "Boolean"}, "item.value: a Boolean needs true or false"),
        ({"type": "Pointer", "value": -1}, "item.value: pointer -1 is not a script position"),
        ({"type": "Pointer", "value": 1.5}, "item.value: number is not a decimal integer"),
    ],
)
def test_bad_scalars(item: dict[str, Any], message: str) -> None:
    with pytest.raises(StackError) as info:
        decode(item)
    assert str(info.value) == message


def test_interop_interface() -> None:
    # A session iterator (neo-go and the C# node with sessions on): the id is dropped.
    session = {
        "type": "InteropInterface",
        "interface": "IIterator",
        "id": "fb9d4c36-6a8c-4d5a-9cf4-1b2b9c5c8b1a",
    }
    assert decode(session) == {"interface": "IIterator"}
    # Expanded in place (sessions off).
    expanded = {
        "type": "InteropInterface",
        "iterator": [byte_string(b"a"), integer(1)],
        "truncated": True,
    }
    assert decode(expanded) == {"interface": "IIterator", "values": ["a", 1], "truncated": True}
    assert decode({"type": "InteropInterface", "iterator": []}) == {
        "interface": "IIterator",
        "values": [],
        "truncated": False,
    }
    # Anything else the node does not describe.
    assert decode({"type": "InteropInterface"}) is None


def test_bad_interop_interface() -> None:
    with pytest.raises(StackError, match=r"item\.truncated: must be true or false"):
        decode({"type": "InteropInterface", "iterator": [], "truncated": "yes"})
    with pytest.raises(StackError, match=r"item\.iterator: must be a list, got object"):
        decode({"type": "InteropInterface", "iterator": {}})
    with pytest.raises(StackError, match=r"item\.interface: must be a string, got number"):
        decode({"type": "InteropInterface", "interface": 1})


# -- bytes --------------------------------------------------------------------------------

SCRIPT_HASH_LE = bytes.fromhex("9b1f4384b95f06fb5339024eca68bf480fff1b29")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", ""),
        (b"hello", "hello"),
        ("héllo ✓".encode(), "héllo ✓"),
        (b"tab\there\nnew line\r\n", "tab\there\nnew line\r\n"),
        (b"nul\x00", "6e756c00"),
        (b"bell\x07", "62656c6c07"),
        (b"del\x7f", "64656c7f"),
        # U+0085 (a C1 control) in valid UTF-8.
        ("next\u0085line".encode(), "6e657874c2856c696e65"),
        (b"\xff\xfe", "fffe"),
        (SCRIPT_HASH_LE, FUNDED),
        # Printable 20 bytes stay text: the documented ambiguity.
        (b"abcdefghijklmnopqrst", "abcdefghijklmnopqrst"),
        (SCRIPT_HASH_LE + b"\x00", "9b1f4384b95f06fb5339024eca68bf480fff1b2900"),
        (SCRIPT_HASH_LE[:19], "9b1f4384b95f06fb5339024eca68bf480fff1b"),
    ],
)
@pytest.mark.parametrize("kind", ["ByteString", "Buffer"])
def test_bytes(raw: bytes, expected: object, kind: str) -> None:
    assert decode(byte_string(raw, kind)) == expected


@pytest.mark.parametrize(
    "raw", [b"", b"hello", SCRIPT_HASH_LE, b"abcdefghijklmnopqrst", b"\x00\x01"]
)
def test_bytes_as_hex(raw: bytes) -> None:
    assert decode(byte_string(raw), bytes_as="hex") == raw.hex()
    assert decode(byte_string(raw, "Buffer"), bytes_as="hex") == raw.hex()


def test_bytes_as_must_be_known() -> None:
    with pytest.raises(ValueError, match='bytes_as must be "auto" or "hex"'):
        decode(integer(1), bytes_as="base64")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match='bytes_as must be "auto" or "hex"'):
        decode_stack([], bytes_as="raw")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not base64!", "item.value: 'not base64!' is not valid base64"),
        ("YWJj=", "item.value: 'YWJj=' is not valid base64"),
        ("éé", "item.value: 'éé' is not valid base64"),
        (None, "item.value: bytes must be a base64 string, got null"),
        ([1], "item.value: bytes must be a base64 string, got array"),
    ],
)
def test_bad_bytes(value: object, message: str) -> None:
    with pytest.raises(StackError) as info:
        decode({"type": "ByteString", "value": value})
    assert str(info.value) == message


# -- containers ---------------------------------------------------------------------------


def test_arrays_and_structs_are_lists() -> None:
    item = array(
        integer(1),
        array(byte_string(b"x"), {"type": "Any"}, kind="Struct"),
        array(),
    )
    assert decode(item) == [1, ["x", None], []]


def test_map_keys_become_strings() -> None:
    item = map_of(
        (byte_string(b"name"), byte_string(b"GAS")),
        (integer(7), integer(2**60)),
        (integer(2**60), {"type": "Boolean", "value": True}),
        ({"type": "Boolean", "value": False}, {"type": "Any"}),
        (byte_string(SCRIPT_HASH_LE), integer(100)),
        (byte_string(b"\x00\x01"), array(integer(1))),
        (byte_string(b"nested"), map_of((byte_string(b"k"), byte_string(b"v")))),
    )
    assert decode(item) == {
        "name": "GAS",
        "7": "1152921504606846976",
        "1152921504606846976": True,
        "false": None,
        FUNDED["address"]: 100,
        "0001": [1],
        "nested": {"k": "v"},
    }


def test_map_keys_as_hex() -> None:
    item = map_of((byte_string(SCRIPT_HASH_LE), integer(1)), (byte_string(b"a"), integer(2)))
    assert decode(item, bytes_as="hex") == {SCRIPT_HASH_LE.hex(): 1, "61": 2}


def test_colliding_map_keys_keep_the_later_value() -> None:
    item = map_of((integer(1), byte_string(b"number")), (byte_string(b"1"), byte_string(b"text")))
    assert decode(item) == {"1": "text"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({}, "item.value: must be a list, got object"),
        ([1], "item.value[0]: a map entry must be an object with key and value"),
        (
            [{"key": integer(1)}],
            "item.value[0]: a map entry must be an object with key and value",
        ),
        (
            [{"key": array(), "value": integer(1)}],
            "item.value[0].key: a map key must be a Boolean, Integer or ByteString item",
        ),
        (
            [{"key": {"type": "Any"}, "value": integer(1)}],
            "item.value[0].key: a map key must be a Boolean, Integer or ByteString item",
        ),
        (
            [{"key": integer(1), "value": {"type": "Nope"}}],
            "item.value[0].value.type: unknown stack item type 'Nope'",
        ),
    ],
)
def test_bad_maps(value: object, message: str) -> None:
    with pytest.raises(StackError) as info:
        decode({"type": "Map", "value": value})
    assert str(info.value) == message


# -- malformed items and limits -----------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("Integer", "item: a stack item must be an object, got string"),
        (None, "item: a stack item must be an object, got null"),
        ({}, "item.type: unknown stack item type 'null'"),
        ({"type": "Float", "value": "1.5"}, "item.type: unknown stack item type 'Float'"),
        ({"type": 7}, "item.type: unknown stack item type 'number'"),
        ({"type": "Array", "value": "x"}, "item.value: must be a list, got string"),
        ({"type": "Array"}, "item.value: must be a list, got null"),
    ],
)
def test_malformed_items(item: object, message: str) -> None:
    with pytest.raises(StackError) as info:
        decode(item)
    assert str(info.value) == message


def test_error_names_the_place_in_the_stack() -> None:
    stack = [integer(1), array(integer(2), array(byte_string(b"ok"), integer("x")))]
    with pytest.raises(StackError) as info:
        decode_stack(stack)
    assert str(info.value) == "stack[1].value[1].value[1].value: 'x' is not a decimal integer"


def test_stack_error_is_a_value_error() -> None:
    assert issubclass(StackError, ValueError)


def test_decode_stack_needs_a_list() -> None:
    with pytest.raises(StackError, match="stack: must be a list of stack items, got object"):
        decode_stack({"type": "Array", "value": []})


def nested(levels: int) -> dict[str, Any]:
    item: dict[str, Any] = integer(1)
    for _ in range(levels):
        item = array(item)
    return item


def test_depth_limit() -> None:
    assert decode(nested(MAX_DEPTH)) == json.loads("[" * MAX_DEPTH + "1" + "]" * MAX_DEPTH)
    with pytest.raises(StackError, match=f"nested more than {MAX_DEPTH} deep"):
        decode(nested(MAX_DEPTH + 1))


def test_depth_counts_maps_and_iterators() -> None:
    inner = nested(MAX_DEPTH - 1)
    assert decode(map_of((integer(0), inner))) is not None
    with pytest.raises(StackError, match="nested more than"):
        decode(map_of((integer(0), array(inner))))
    iterator = {"type": "InteropInterface", "iterator": [inner]}
    assert decode(iterator) is not None
    with pytest.raises(StackError, match="nested more than"):
        decode({"type": "InteropInterface", "iterator": [array(inner)]})


def test_item_limit() -> None:
    # The array itself counts as one item.
    assert len(decode(array(*[integer(1)] * (MAX_ITEMS - 1)))) == MAX_ITEMS - 1  # type: ignore[arg-type]
    with pytest.raises(StackError, match=f"more than {MAX_ITEMS} stack items"):
        decode(array(*[integer(1)] * MAX_ITEMS))


def test_item_limit_counts_map_keys() -> None:
    pairs = [(integer(i), integer(i)) for i in range(MAX_ITEMS // 2)]
    with pytest.raises(StackError, match="more than"):
        decode(map_of(*pairs))
    assert len(decode(map_of(*pairs[:-1]))) == MAX_ITEMS // 2 - 1  # type: ignore[arg-type]


def test_item_limit_spans_the_whole_stack() -> None:
    half = array(*[integer(1)] * (MAX_ITEMS // 2 - 1))
    assert len(decode_stack([half, half])) == 2
    with pytest.raises(StackError, match=r"stack\[2\]: more than"):
        decode_stack([half, half, integer(1)])
    # Each call starts afresh.
    assert decode(half) == decode(half)
