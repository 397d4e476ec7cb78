"""Parsing a JSON request body safely: UTF-8, valid, nested at most ``MAX_DEPTH`` deep, and
text that can be stored.

Python's parser, marshmallow, ``json.dumps`` and the database driver all recurse once per
level, so a body of ``[[[[…`` 50,000 deep would end in a ``RecursionError`` somewhere past
parsing. The depth is bounded on the raw bytes, before any of them runs: a linear scan that
skips strings and counts brackets (tens of ms for 1 MB of brackets), and costs two
``bytes.count`` calls for the usual body (one with fewer brackets than the limit cannot be too
deep).

JSON's ``\\u`` escapes can also spell U+0000 and unpaired surrogates (``\\ud800``): valid JSON,
but not text PostgreSQL can store (neither ``text`` nor ``jsonb`` takes them) nor UTF-8 can
encode (RFC 7493 §2.1 forbids both). A string holding one is refused here as an invalid
field (422, naming it), before it reaches a column; only a body with such an escape is walked.

Every body goes through here once, before authentication and any view (``neosl_api.bodies``);
a webhook delivery is parsed here again by its service, after its signature has been checked
on the raw bytes.
"""

from __future__ import annotations

import json
from itertools import accumulate
from typing import Any, NoReturn

from neosl.errors import InvalidInput, ServiceError

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
        InvalidInput: a string (a value or a key) holds U+0000 or an unpaired surrogate;
            the details name where.
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
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise _malformed("not valid JSON", "Invalid JSON body.") from None
    # Only an escape can bring either in: raw control characters are invalid JSON, and raw
    # surrogates invalid UTF-8.
    if b"\\u0000" in data or b"\\ud" in data or b"\\uD" in data:
        _check_text(value)
    return value


def _check_text(value: Any) -> None:
    """Raises: InvalidInput, naming a string no column can store by its dotted path (a
    key by its object's; ``_body`` at the top)."""
    pending: list[tuple[str, Any]] = [("", value)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, dict):
            for key, inner in item.items():
                problem = _text_problem(key)
                if problem is not None:
                    _invalid(path, f"A key: {problem}")
                pending.append((f"{path}.{key}" if path else key, inner))
        elif isinstance(item, list):
            pending.extend((f"{path}.{i}" if path else str(i), v) for i, v in enumerate(item))
        elif isinstance(item, str):
            problem = _text_problem(item)
            if problem is not None:
                _invalid(path, problem)


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "Holds U+0000, which cannot be stored."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "Not valid Unicode text (lone surrogate)."
    return None


def _invalid(path: str, problem: str) -> NoReturn:
    raise InvalidInput(
        "a string holds U+0000 or an unpaired surrogate", {path or "_body": [problem]}
    )
