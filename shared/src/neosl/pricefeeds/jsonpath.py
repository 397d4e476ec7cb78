"""The small part of JSONPath that picks one value out of a JSON answer.

A generic price source (``neosl.pricefeeds.definitions``) names where the price is in its
answer with a path: ``$`` (the whole answer), then any number of steps, each ``.key``,
``["key"]`` / ``['key']`` or ``[index]`` (a non-negative integer): ``$.data.price``,
``$.result[0].last``, ``$["USD"]["rate"]``. A ``.key`` is letters, digits, ``_`` and ``-``; any
other key takes the bracket form, whose quotes escape their own quote character and ``\\`` with
a backslash. No wildcards, slices, filters or recursive descent: a path picks exactly one value
or none.

The API validates paths with ``parse`` when a feed is saved; the pricefeed worker parses them
again and reads answers with ``JsonPath.find``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

MAX_PATH_CHARS = 256
MAX_STEPS = 32

Step = str | int

_DOT_KEY = re.compile(r"\.([A-Za-z0-9_-]+)")
# Seven digits: an index beyond that is a mistake, not a place in a ticker.
_INDEX = re.compile(r"\[(0|[1-9][0-9]{0,6})\]")


@dataclass(frozen=True)
class JsonPath:
    steps: tuple[Step, ...]

    def __str__(self) -> str:
        return render(self.steps)

    def find(self, document: object) -> object:
        """The value at this path in ``document`` (as ``json.loads`` returns it).

        Raises:
            LookupError: there is no value there. The message names the path up to the step
                that failed and the kind of value found, never the value itself, so it is
                safe to show however untrusted the document is.
        """
        value = document
        for i, step in enumerate(self.steps):
            where = render(self.steps[:i])
            if isinstance(step, int):
                if not isinstance(value, list):
                    raise LookupError(f"{where} is {_kind(value)}, not a list")
                if step >= len(value):
                    raise LookupError(f"{where} has no item {step}")
                value = value[step]
            else:
                if not isinstance(value, dict):
                    raise LookupError(f"{where} is {_kind(value)}, not an object")
                if step not in value:
                    raise LookupError(f"{where} has no key {json.dumps(step)}")
                value = value[step]
        return value


def parse(text: object) -> JsonPath:
    """``text`` read as a path.

    Raises:
        ValueError: not a path in the subset described above; the message says where.
    """
    if not isinstance(text, str) or not text.startswith("$"):
        raise ValueError('a path starting with $, such as $.data.price or $["USD"]')
    if len(text) > MAX_PATH_CHARS:
        raise ValueError(f"at most {MAX_PATH_CHARS} characters")
    steps: list[Step] = []
    pos = 1
    while pos < len(text):
        if len(steps) == MAX_STEPS:
            raise ValueError(f"at most {MAX_STEPS} steps")
        dot = _DOT_KEY.match(text, pos)
        index = _INDEX.match(text, pos)
        if dot is not None:
            steps.append(dot.group(1))
            pos = dot.end()
        elif index is not None:
            steps.append(int(index.group(1)))
            pos = index.end()
        elif text.startswith(("['", '["'), pos):
            key, pos = _quoted(text, pos + 1)
            if not text.startswith("]", pos):
                raise ValueError(f"expected ] at character {pos + 1}")
            steps.append(key)
            pos += 1
        else:
            raise ValueError(
                f"unexpected {text[pos]!r} at character {pos + 1}: "
                'each step is .key, ["key"] or [index]'
            )
    return JsonPath(tuple(steps))


def render(steps: tuple[Step, ...]) -> str:
    """``steps`` written as a path that ``parse`` reads back to the same steps."""
    parts = ["$"]
    for step in steps:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif _DOT_KEY.fullmatch(f".{step}"):
            parts.append(f".{step}")
        else:
            escaped = step.replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'["{escaped}"]')
    return "".join(parts)


def _quoted(text: str, start: int) -> tuple[str, int]:
    """The key quoted at ``text[start]`` and the position after its closing quote.

    Raises:
        ValueError: the quotes do not close, or a backslash escapes anything else.
    """
    quote = text[start]
    key: list[str] = []
    pos = start + 1
    while pos < len(text):
        char = text[pos]
        if char == quote:
            return "".join(key), pos + 1
        if char == "\\":
            following = text[pos + 1 : pos + 2]
            if following not in (quote, "\\"):
                raise ValueError(f"at character {pos + 1}: a backslash escapes only {quote} or \\")
            key.append(following)
            pos += 2
            continue
        key.append(char)
        pos += 1
    raise ValueError(f"the key quoted at character {start + 1} does not end")


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"
