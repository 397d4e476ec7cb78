"""Parsing a JSON request body safely: UTF-8, valid, and nested at most ``MAX_DEPTH`` deep.

Python's parser, marshmallow, ``json.dumps`` and the database driver all recurse once per
level, so a body of ``[[[[…`` 50,000 deep would end in a ``RecursionError`` somewhere past
parsing. The depth is bounded on the raw bytes, before any of them runs: a linear scan that
skips strings and counts brackets (tens of ms for 1 MB of brackets), and costs two
``bytes.count`` calls for the usual body (one with fewer brackets than the limit cannot be too
deep).

Every body goes through here once, before authentication and any view (``neosl_api.bodies``);
a webhook delivery is parsed here again by its service, after its signature has been checked
on the raw bytes.
"""

from __future__ import annotations

import json
from itertools import accumulate
from typing import Any

from neosl.errors import ServiceError

# Levels of arrays and objects, the outermost one being level 1. Generous for real data (a
# function's ``input`` sits at level 2, so it may nest 63 levels itself), far below the depth
# where any parser or serializer on the way would run out of stack.
MAX_DEPTH = 64

_BRACKETS_ONLY = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
_STEP = [0] * 256
_STEP[ord("[")], _STEP[ord("]")] = 1, -1


class MalformedBody(ServiceError):
    """The body is not UTF-8, not JSON, or nested deeper than ``MAX_DEPTH`` (400)."""

    status = 400
    code = "bad_request"


def _malformed(why: str, detail: str) -> MalformedBody:
    # The details' shape is that of webargs' own 400 for a body it cannot parse.
    return MalformedBody(f"malformed request body: {why}", {"_body": [detail]})


def too_deep(data: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON text ``data`` nests arrays and objects deeper than ``limit`` (≥ 1).

    Exact for valid JSON; for invalid JSON it may answer either way (parsing then refuses it).
    Linear, whatever the input: no regular expression (a string pattern backtracks on
    ``"\\"\\"\\"…``), only passes of ``bytes`` methods and one of ``itertools``.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    if b'"' in data:
        # Drop the strings, whose brackets are data. Escapes first: backslashes pair up from
        # the left as the lexer pairs them, and an odd one left escapes the quote after it.
        # Then the text between quotes alternates outside, inside, outside...
        if b"\\" in data:
            data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
        data = b"".join(data.split(b'"')[::2])
    brackets = data.translate(_BRACKETS_ONLY, _NOT_BRACKETS)
    # Innermost pairs go first (most of a usual body's brackets, in one C-speed pass): every
    # deepest point is inside one, so what is left is exactly one level shallower, and can
    # reach ``limit`` only with at least ``limit`` pairs.
    brackets = brackets.replace(b"[]", b"")
    if len(brackets) < 2 * limit:
        return False
    return max(accumulate(map(_STEP.__getitem__, brackets))) >= limit


def loads(data: bytes) -> Any:
    """The JSON value of a request body.

    Raises:
        MalformedBody: not UTF-8 (RFC 8259 §8.1), nested deeper than ``MAX_DEPTH``, or not
            valid JSON.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed("not UTF-8", "Not UTF-8.") from None
    if too_deep(data):
        raise _malformed(
            f"nested deeper than {MAX_DEPTH} levels", f"Nested deeper than {MAX_DEPTH} levels."
        )
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise _malformed("not valid JSON", "Invalid JSON body.") from None
