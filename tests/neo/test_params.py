"""Contract-call arguments from sandbox JSON: mapping, errors, limits and the scripts they make."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from neo3.api.noderpc import _ContractParameter
from neo3.core.cryptography import ECPoint
from neo3.core.types import UInt160, UInt256
from neo3.vm import ScriptBuilder

from neosl.neo.params import (
    MAX_ARGS,
    MAX_BYTES,
    MAX_DEPTH,
    MAX_ITEMS,
    Param,
    ParamError,
    parse_args,
    to_json,
    to_python,
    to_rpc,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "neo"

GAS = UInt160.from_string("d2a4cff31913016155e38e474a2c06d08be276cf")
# From the recorded chain: an account, its script hash, and the committee's.
ADDRESS = "Na4BNjSyrBDRGESC877KoKD45yg5GWUxuW"
HASH = "0x291bff0f48bf68ca4e023953fb065fb984431f9b"
COMMITTEE_HASH = "0x56c989e76f9a2ca05bb5caa6c96f524d905accd8"
TX_HASH = "0xfd9aef3b4d77425fcf729145a988a97dc42070609c5a22f84ff07c538104f651"
# A MainNet validator's key (compressed secp256r1).
PUBLIC_KEY = "03b209fd4f53a7170ea4444e0cb0a6bb6a53c2bd016926989cf85f9b0fba17a70c"


def recorded(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def tag(kind: str, value: object) -> dict[str, object]:
    return {"$neo": kind, "value": value}


def one(arg: object) -> Param:
    (param,) = parse_args([arg])
    return param


def error(args: object) -> str:
    with pytest.raises(ParamError) as info:
        parse_args(args)
    return str(info.value)


def script(args: list[Any], method: str = "m") -> bytes:
    builder = ScriptBuilder()  # type: ignore[no-untyped-call]
    return bytes(builder.emit_contract_call_with_args(GAS, method, args).to_array())


# -- plain JSON ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        (0, Param("Integer", 0)),
        (-7, Param("Integer", -7)),
        (2**53 - 1, Param("Integer", 2**53 - 1)),
        (-(2**53 - 1), Param("Integer", -(2**53 - 1))),
        (3.0, Param("Integer", 3)),
        (-0.0, Param("Integer", 0)),
        (1e15, Param("Integer", 10**15)),
        ("", Param("String", "")),
        ("héllo ✓", Param("String", "héllo ✓")),
        (True, Param("Boolean", True)),
        (False, Param("Boolean", False)),
        (None, Param("Any", None)),
        ([], Param("Array", ())),
        (
            [1, ["a", None], False],
            Param(
                "Array",
                (
                    Param("Integer", 1),
                    Param("Array", (Param("String", "a"), Param("Any", None))),
                    Param("Boolean", False),
                ),
            ),
        ),
    ],
)
def test_plain_values(arg: object, expected: Param) -> None:
    assert one(arg) == expected
    # bool is an int in Python: the type must not be mixed up.
    assert type(one(arg).value) is type(expected.value)


def test_no_arguments() -> None:
    assert parse_args([]) == []


# -- tagged values ------------------------------------------------------------------------


def test_hash160_from_address_or_hex() -> None:
    expected = Param("Hash160", UInt160.from_string(HASH[2:]))
    assert one(tag("Hash160", ADDRESS)) == expected
    assert one(tag("Hash160", HASH)) == expected
    assert one(tag("Hash160", HASH.upper().replace("0X", "0x"))) == expected


def test_hash256() -> None:
    assert one(tag("Hash256", TX_HASH)) == Param("Hash256", UInt256.from_string(TX_HASH[2:]))
    assert one(tag("Hash256", "0x" + TX_HASH[2:].upper())).value == UInt256.from_string(TX_HASH[2:])


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0a0B", b"\x0a\x0b"), ("0x0a0b", b"\x0a\x0b"), ("", b""), ("0x", b"")],
)
def test_byte_array(value: str, expected: bytes) -> None:
    assert one(tag("ByteArray", value)) == Param("ByteArray", expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0),
        ("-0", 0),
        ("007", 7),
        ("-123", -123),
        (str(2**53), 2**53),
        (str(2**255 - 1), 2**255 - 1),
        (str(-(2**255)), -(2**255)),
    ],
)
def test_big_integer(value: str, expected: int) -> None:
    assert one(tag("Integer", value)) == Param("Integer", expected)


def test_public_key() -> None:
    assert one(tag("PublicKey", PUBLIC_KEY)) == Param("PublicKey", bytes.fromhex(PUBLIC_KEY))
    assert one(tag("PublicKey", PUBLIC_KEY.upper())) == Param(
        "PublicKey", bytes.fromhex(PUBLIC_KEY)
    )


def test_tagged_string() -> None:
    assert one(tag("String", "0x12")) == Param("String", "0x12")
    assert one(tag("String", "")) == Param("String", "")


def test_tagged_values_nest_in_arrays() -> None:
    assert one([tag("Hash160", ADDRESS), [tag("Integer", "5")]]) == Param(
        "Array",
        (
            Param("Hash160", UInt160.from_string(HASH[2:])),
            Param("Array", (Param("Integer", 5),)),
        ),
    )


# -- errors, each with its place ----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "args: must be an array, got object"),
        ("x", "args: must be an array, got string"),
        (None, "args: must be an array, got null"),
        ((1, 2), "args: must be an array, got tuple"),
        ([0, 1.5], "args[1]: 1.5 is not an integer"),
        ([float("nan")], "args[0]: nan is not an integer"),
        ([float("inf")], "args[0]: inf is not an integer"),
        (
            [1e300],
            "args[0]: 1e+300 is beyond ±9007199254740991, the exact range of a JavaScript "
            'number (use neo.integer("…") for big values)',
        ),
        (
            [2**53],
            "args[0]: 9007199254740992 is beyond ±9007199254740991, the exact range of a "
            'JavaScript number (use neo.integer("…") for big values)',
        ),
        ([[1, [2, 0.5]]], "args[0][1][1]: 0.5 is not an integer"),
        ([b"\x00"], "args[0]: a bytes is not a JSON value"),
        ([(1,)], "args[0]: a tuple is not a JSON value"),
        (
            [1, {"value": "x"}],
            'args[1]: an object must be a tagged value like {"$neo": "Hash160", '
            '"value": "…"}, as made by the neo.* helpers',
        ),
        (
            [{}],
            'args[0]: an object must be a tagged value like {"$neo": "Hash160", '
            '"value": "…"}, as made by the neo.* helpers',
        ),
        (
            [tag("Map", "x")],
            'args[0].$neo: "Map" is not one of Hash160, Hash256, ByteArray, Integer, '
            "PublicKey, String",
        ),
        (
            [{"$neo": 5, "value": "x"}],
            "args[0].$neo: 5 is not one of Hash160, Hash256, ByteArray, Integer, PublicKey, String",
        ),
        (
            [{"$neo": "String", "value": "x", "extra": 1}],
            'args[0]: unexpected key "extra" (a String value has only "$neo" and "value")',
        ),
        ([{"$neo": "Integer"}], "args[0].value: missing"),
        ([tag("Integer", 5)], "args[0].value: must be a string, got number"),
        ([tag("Hash160", None)], "args[0].value: must be a string, got null"),
        ([1, 2, tag("Integer", "12x")], 'args[2].value: "12x" is not a decimal integer'),
        ([tag("Integer", "")], 'args[0].value: "" is not a decimal integer'),
        ([tag("Integer", "+1")], 'args[0].value: "+1" is not a decimal integer'),
        ([tag("Integer", "1e3")], 'args[0].value: "1e3" is not a decimal integer'),
        ([tag("Integer", " 1")], 'args[0].value: " 1" is not a decimal integer'),
        ([tag("Integer", "١٢")], 'args[0].value: "١٢" is not a decimal integer'),
        (
            [tag("Integer", str(2**255))],
            f'args[0].value: "{str(2**255)[:40]}…" is beyond Neo\'s 256-bit integer range',
        ),
        (
            [tag("Integer", "9" * 5000)],
            f'args[0].value: "{"9" * 40}…" is beyond Neo\'s 256-bit integer range',
        ),
        (
            [tag("Hash160", "0x1234")],
            'args[0].value: "0x1234" is not 0x + 40 hex digits',
        ),
        (
            [tag("Hash160", HASH[2:])],
            f'args[0].value: "{HASH[2:]}" is not a Neo N3 address (must be 34 characters: '
            "got 40) nor 0x + 40 hex digits",
        ),
        (
            [tag("Hash160", ADDRESS[:-1] + "v")],
            f'args[0].value: "{ADDRESS[:-1]}v" is not a Neo N3 address (bad checksum) nor '
            "0x + 40 hex digits",
        ),
        (
            [tag("Hash256", HASH)],
            f'args[0].value: "{HASH[:40]}…" is not 0x + 64 hex digits',
        ),
        (
            [tag("Hash256", TX_HASH[2:])],
            f'args[0].value: "{TX_HASH[2:42]}…" is not 0x + 64 hex digits',
        ),
        ([tag("ByteArray", "abc")], 'args[0].value: "abc" is not hex (pairs of 0-9, a-f)'),
        ([tag("ByteArray", "zz")], 'args[0].value: "zz" is not hex (pairs of 0-9, a-f)'),
        ([tag("ByteArray", "0a 0b")], 'args[0].value: "0a 0b" is not hex (pairs of 0-9, a-f)'),
        (
            [tag("PublicKey", "04" + "00" * 64)],
            f'args[0].value: "04{"0" * 38}…" is not a compressed public key (66 hex digits, '
            "starting 02 or 03)",
        ),
        (
            [tag("PublicKey", "0x" + PUBLIC_KEY)],
            'args[0].value: "0x03b209fd4f53a7170ea4444e0cb0a6bb6a53c2…" is not a compressed '
            "public key (66 hex digits, starting 02 or 03)",
        ),
        (
            [tag("PublicKey", "02" + "11" * 32)],
            'args[0].value: "0211111111111111111111111111111111111111…" is not a point on '
            "the secp256r1 curve",
        ),
        (
            [tag("PublicKey", "02" + "ff" * 32)],
            'args[0].value: "02ffffffffffffffffffffffffffffffffffffff…" is not a point on '
            "the secp256r1 curve",
        ),
        (
            [tag("String", "\ud800")],
            'args[0].value: "\\ud800" is not valid Unicode text',
        ),
        (["ok", "bad \udc80"], 'args[1]: "bad \\udc80" is not valid Unicode text'),
        (
            [[1, [tag("Hash160", "x")]]],
            'args[0][1][0].value: "x" is not a Neo N3 address (must be 34 characters: got 1) '
            "nor 0x + 40 hex digits",
        ),
    ],
)
def test_errors_name_the_place(args: object, message: str) -> None:
    assert error(args) == message


def test_param_error_is_a_value_error() -> None:
    assert issubclass(ParamError, ValueError)


# -- limits -------------------------------------------------------------------------------


def test_argument_count_limit() -> None:
    assert len(parse_args([1] * MAX_ARGS)) == MAX_ARGS
    assert error([1] * (MAX_ARGS + 1)) == (
        f"args: {MAX_ARGS + 1} arguments, at most {MAX_ARGS} are allowed"
    )


def nested(levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value


def test_depth_limit() -> None:
    assert parse_args([nested(MAX_DEPTH)])
    path = "args[0]" + "[0]" * MAX_DEPTH
    assert error([nested(MAX_DEPTH + 1)]) == f"{path}: arrays nested more than {MAX_DEPTH} deep"


def test_item_limit_counts_every_value() -> None:
    # The array counts as a value itself.
    assert parse_args([[0] * (MAX_ITEMS - 1)])
    assert error([[0] * MAX_ITEMS]) == (
        f"args[0][{MAX_ITEMS - 1}]: more than {MAX_ITEMS} values in all"
    )
    half = [0] * (MAX_ITEMS // 2 - 1)
    assert parse_args([half, half])
    assert error([half, half, 0]) == f"args[2]: more than {MAX_ITEMS} values in all"


def test_byte_limit_over_strings_and_bytes() -> None:
    assert parse_args(["a" * MAX_BYTES])
    assert error(["a" * (MAX_BYTES + 1)]) == (
        f"args[0]: strings and bytes exceed {MAX_BYTES} bytes in all"
    )
    # Counted as UTF-8: "é" is two bytes.
    assert parse_args(["é" * (MAX_BYTES // 2)])
    assert error(["é" * (MAX_BYTES // 2), "x"]) == (
        f"args[1]: strings and bytes exceed {MAX_BYTES} bytes in all"
    )
    full = "ab" * MAX_BYTES
    assert parse_args([tag("ByteArray", full)])
    assert error([tag("ByteArray", full), tag("String", "x")]) == (
        f"args[1].value: strings and bytes exceed {MAX_BYTES} bytes in all"
    )
    assert error([tag("ByteArray", full + "ab")]) == (
        f"args[0].value: strings and bytes exceed {MAX_BYTES} bytes in all"
    )
    # Hashes and keys count too.
    assert error(["a" * (MAX_BYTES - 19), tag("Hash160", ADDRESS)]) == (
        f"args[1].value: strings and bytes exceed {MAX_BYTES} bytes in all"
    )
    assert error([["a" * (MAX_BYTES - 32)], tag("PublicKey", PUBLIC_KEY)]) == (
        f"args[1].value: strings and bytes exceed {MAX_BYTES} bytes in all"
    )


# -- the forms out ------------------------------------------------------------------------

EVERY_KIND: list[object] = [
    tag("Hash160", ADDRESS),
    42,
    "text",
    tag("ByteArray", "0x00ff"),
    [1, [tag("Hash256", TX_HASH)], "x"],
    True,
    None,
    tag("Integer", str(-(2**200))),
    tag("Integer", "12"),
    tag("PublicKey", PUBLIC_KEY),
    tag("String", "tagged"),
    2.0,
]


def test_to_rpc() -> None:
    assert to_rpc(parse_args(EVERY_KIND)) == [
        {"type": "Hash160", "value": HASH},
        {"type": "Integer", "value": "42"},
        {"type": "String", "value": "text"},
        {"type": "ByteArray", "value": "AP8="},
        {
            "type": "Array",
            "value": [
                {"type": "Integer", "value": "1"},
                {"type": "Array", "value": [{"type": "Hash256", "value": TX_HASH}]},
                {"type": "String", "value": "x"},
            ],
        },
        {"type": "Boolean", "value": True},
        {"type": "Any"},
        {"type": "Integer", "value": str(-(2**200))},
        {"type": "Integer", "value": "12"},
        {"type": "PublicKey", "value": PUBLIC_KEY},
        {"type": "String", "value": "tagged"},
        {"type": "Integer", "value": "2"},
    ]


def test_to_rpc_matches_the_recorded_balance_of_request() -> None:
    request = recorded("invokefunction_balanceOf")["request"]
    assert to_rpc(parse_args([tag("Hash160", ADDRESS)])) == request["params"][2]


def test_to_rpc_matches_neo_mamba_for_every_typed_value() -> None:
    # neo-mamba's own invokefunction encoder (it has no form for Any/None).
    params = [p for p in parse_args(EVERY_KIND) if p.type != "Any"]
    expected = [_ContractParameter(v).to_json() for v in to_python(params)]
    assert to_rpc(params) == json.loads(json.dumps(expected, default=lambda o: o.to_json()))


def test_to_python() -> None:
    values = to_python(parse_args(EVERY_KIND))
    assert values[0] == UInt160.from_string(HASH[2:])
    assert values[1:4] == [42, "text", b"\x00\xff"]
    assert values[4] == [1, [UInt256.from_string(TX_HASH[2:])], "x"]
    assert values[5:9] == [True, None, -(2**200), 12]
    assert isinstance(values[9], ECPoint)
    assert values[9].to_array().hex() == PUBLIC_KEY
    assert values[10:] == ["tagged", 2]
    assert type(values[5]) is bool
    assert type(values[11]) is int


def test_to_json_is_canonical() -> None:
    assert to_json(parse_args(EVERY_KIND)) == [
        {"$neo": "Hash160", "value": HASH},
        42,
        "text",
        {"$neo": "ByteArray", "value": "00ff"},
        [1, [{"$neo": "Hash256", "value": TX_HASH}], "x"],
        True,
        None,
        {"$neo": "Integer", "value": str(-(2**200))},
        12,
        {"$neo": "PublicKey", "value": PUBLIC_KEY},
        "tagged",
        2,
    ]
    assert to_json(parse_args([tag("Integer", str(2**53 - 1)), tag("Integer", str(2**53))])) == [
        2**53 - 1,
        {"$neo": "Integer", "value": str(2**53)},
    ]


@pytest.mark.parametrize(
    "args",
    [
        EVERY_KIND,
        [],
        [tag("Hash160", HASH.upper().replace("0X", "0x")), tag("ByteArray", "ABCD")],
        [tag("Integer", str(2**255 - 1)), tag("Integer", str(-(2**255))), -(2**53 - 1)],
        [nested(MAX_DEPTH)],
        [[None] * (MAX_ITEMS - 1)],
        ["é" * (MAX_BYTES // 2)],
        [tag("ByteArray", ""), "", [], [[]]],
    ],
)
def test_round_trip(args: list[object]) -> None:
    params = parse_args(args)
    stored = to_json(params)
    # Through real JSON text, as the database and the API see it.
    assert parse_args(json.loads(json.dumps(stored))) == params
    assert to_json(parse_args(stored)) == stored


def test_params_are_immutable_and_hashable() -> None:
    params = parse_args(EVERY_KIND)
    assert len(set(params)) == len(params)
    with pytest.raises(AttributeError):
        params[0].value = None  # type: ignore[misc]


def test_repr_shows_hashes() -> None:
    assert repr(one(tag("Hash160", ADDRESS))) == f"Param('Hash160', {HASH})"
    assert repr(one(5)) == "Param('Integer', 5)"


# -- the script neo-mamba emits -----------------------------------------------------------


def test_script_is_the_same_as_a_direct_call() -> None:
    params = parse_args(
        [
            tag("Hash160", ADDRESS),
            tag("Integer", str(2**100)),
            "hello",
            tag("ByteArray", "0102"),
            [1, "a", [True]],
            True,
            None,
            tag("Hash256", TX_HASH),
            tag("PublicKey", PUBLIC_KEY),
            -1,
            16,
            17,
        ]
    )
    direct = [
        UInt160.from_string(HASH[2:]),
        2**100,
        "hello",
        b"\x01\x02",
        [1, "a", [True]],
        True,
        None,
        UInt256.from_string(TX_HASH[2:]),
        ECPoint.deserialize_from_bytes(bytes.fromhex(PUBLIC_KEY)),
        -1,
        16,
        17,
    ]
    assert script(to_python(params)) == script(direct)


def test_strings_and_hashes_are_pushed_as_their_bytes() -> None:
    # PUSHDATA1 <len> <bytes>: text as UTF-8, hashes little-endian, keys compressed.
    assert script(to_python(parse_args(["é"]))).startswith(b"\x0c\x02" + "é".encode())
    hash_le = bytes.fromhex(HASH[2:])[::-1]
    assert script(to_python(parse_args([tag("Hash160", ADDRESS)]))).startswith(
        b"\x0c\x14" + hash_le
    )
    assert script(to_python(parse_args([tag("PublicKey", PUBLIC_KEY)]))).startswith(
        b"\x0c\x21" + bytes.fromhex(PUBLIC_KEY)
    )
    # The same bytes as a String or a ByteArray make the same script.
    assert script(to_python(parse_args(["ab"]))) == script(
        to_python(parse_args([tag("ByteArray", "6162")]))
    )


def test_script_matches_the_one_neo_go_built_for_balance_of() -> None:
    pair = recorded("invokefunction_balanceOf")
    params = parse_args([tag("Hash160", ADDRESS)])
    assert to_rpc(params) == pair["request"]["params"][2]
    neo_go_script = base64.b64decode(pair["response"]["result"]["script"])
    assert script(to_python(params), "balanceOf") == neo_go_script


def test_script_matches_the_recorded_gas_transfer() -> None:
    recorded_script = base64.b64decode(recorded("invokescript")["request"]["params"][0])
    params = parse_args(
        [tag("Hash160", COMMITTEE_HASH), tag("Hash160", ADDRESS), 10_000_000_000, None]
    )
    assert script(to_python(params), "transfer") == recorded_script
