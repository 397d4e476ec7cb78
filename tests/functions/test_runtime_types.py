"""The editor types of the function runtime (examples/functions/neosl-runtime.d.ts) against the
runtime itself: every name the .d.ts declares exists, and every name a function can reach
is declared.

The names on the runtime's side come from two places:

- the code, read without running it: the preludes (``prelude*.js``) for the host API's
  globals, the members of ``neo``, ``console``, a fetch response and its headers, and the
  Neo type tags; the code that builds a ``RunRequest`` for ``ctx``; the trigger firing for
  ``ctx.trigger`` and the causes a trigger passes;
- a real sandbox, which lists the globals and members a function sees.

JavaScript and TypeScript are read with a small tokenizer (comments skipped; strings,
template and regular expression literals kept whole; brackets matched), Python with ``ast``.
A form the readers do not know fails the test instead of being skipped.

What a tenant does not see, by rule rather than by a list of names:

- a key or member starting with ``_`` (``__proto__: null`` gives an object no prototype, it
  is no member);
- of a prelude part's exports, only the one named after the part becomes the global
  (``part(name)[name]`` in prelude.js); the others (console's ``failure``) serve prelude.js;
- a ``define(globalThis, name, ...)`` whose name is not a literal is the setter of a global
  defined by literal (``lazy``), so it adds none; the sandbox test would see one it did add;
- a namespace of the .d.ts that declares no value (``NeoSL``: types only) is no global;
- ``main`` is the function's own; the language's globals (ECMA-262's global object, its
  Annex B and the explicit resource management proposal the engine ships) are declared by
  TypeScript's library, not by the .d.ts.
"""

from __future__ import annotations

import ast
import functools
import importlib.resources
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import pytest

from neosl.functions.netguard import Fetcher
from neosl.functions.sandbox import LOG_LEVELS, Limits, RunRequest, SandboxPool
from neosl.neo import params
from tests.serving import serving

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "functions"
DTS = EXAMPLES / "neosl-runtime.d.ts"
SANDBOX = importlib.resources.files("neosl.functions.sandbox")
# Where the services' code lives (ctx and the triggers' causes are read from it).
SOURCE_ROOTS = ("shared/src", "services/*/src", "cli/src")

# The global object of ECMAScript 2025 (ECMA-262 §19.1-19.4) and Annex B, and the globals of
# explicit resource management (ESNext in TypeScript's library). The engine's own
# additions are not here: the .d.ts must declare them.
ECMASCRIPT_GLOBALS = frozenset(
    {
        # Value properties.
        "globalThis",
        "Infinity",
        "NaN",
        "undefined",
        # Function properties.
        "eval",
        "isFinite",
        "isNaN",
        "parseFloat",
        "parseInt",
        "decodeURI",
        "decodeURIComponent",
        "encodeURI",
        "encodeURIComponent",
        # Constructor properties.
        "AggregateError",
        "Array",
        "ArrayBuffer",
        "BigInt",
        "BigInt64Array",
        "BigUint64Array",
        "Boolean",
        "DataView",
        "Date",
        "Error",
        "EvalError",
        "FinalizationRegistry",
        "Float16Array",
        "Float32Array",
        "Float64Array",
        "Function",
        "Int8Array",
        "Int16Array",
        "Int32Array",
        "Iterator",
        "Map",
        "Number",
        "Object",
        "Promise",
        "Proxy",
        "RangeError",
        "ReferenceError",
        "RegExp",
        "Set",
        "SharedArrayBuffer",
        "String",
        "Symbol",
        "SyntaxError",
        "TypeError",
        "Uint8Array",
        "Uint8ClampedArray",
        "Uint16Array",
        "Uint32Array",
        "URIError",
        "WeakMap",
        "WeakRef",
        "WeakSet",
        # Other properties.
        "Atomics",
        "JSON",
        "Math",
        "Reflect",
        # Annex B.
        "escape",
        "unescape",
        # Explicit resource management.
        "AsyncDisposableStack",
        "DisposableStack",
        "SuppressedError",
    }
)


# Reading JavaScript and TypeScript.


@dataclass(frozen=True)
class Token:
    kind: Literal["name", "string", "number", "regex", "punct"]
    # A string's value without its quotes; otherwise the token as written.
    text: str


_NAME = re.compile(r"[A-Za-z_$][\w$]*")
_NUMBER = re.compile(r"[0-9][\w.]*")
# After these, a "/" starts a regular expression rather than a division.
_BEFORE_EXPRESSION = frozenset(
    {"return", "typeof", "case", "do", "else", "in", "of", "new", "delete", "void", "throw"}
)
_CLOSING = {"(": ")", "[": "]", "{": "}"}


def tokenize(source: str) -> list[Token]:
    """The tokens of ``source``; single characters for punctuation.

    Raises:
        ValueError: an unterminated comment, string or regular expression, or a template
            literal with a substitution (whose insides would be code).
    """
    tokens: list[Token] = []
    i = 0
    while i < len(source):
        c = source[i]
        if c.isspace():
            i += 1
        elif source.startswith("//", i):
            end = source.find("\n", i)
            i = len(source) if end < 0 else end
        elif source.startswith("/*", i):
            end = source.find("*/", i + 2)
            if end < 0:
                raise ValueError(f"an unterminated comment at {i}")
            i = end + 2
        elif c in "\"'`":
            end = _string_end(source, i)
            if c == "`" and "${" in source[i:end]:
                raise ValueError(f"a template literal with a substitution at {i}")
            tokens.append(Token("string", source[i + 1 : end - 1]))
            i = end
        elif c == "/" and _regex_may_start(tokens):
            end = _regex_end(source, i)
            tokens.append(Token("regex", source[i:end]))
            i = end
        elif match := _NAME.match(source, i):
            tokens.append(Token("name", match[0]))
            i = match.end()
        elif match := _NUMBER.match(source, i):
            tokens.append(Token("number", match[0]))
            i = match.end()
        else:
            tokens.append(Token("punct", c))
            i += 1
    return tokens


def _string_end(source: str, start: int) -> int:
    quote = source[start]
    i = start + 1
    while i < len(source):
        if source[i] == "\\":
            i += 2
        elif source[i] == quote:
            return i + 1
        elif source[i] == "\n" and quote != "`":
            break
        else:
            i += 1
    raise ValueError(f"an unterminated string at {start}")


def _regex_may_start(tokens: list[Token]) -> bool:
    if not tokens:
        return True
    last = tokens[-1]
    if last.kind == "punct":
        return last.text not in ")]}"
    return last.kind == "name" and last.text in _BEFORE_EXPRESSION


def _regex_end(source: str, start: int) -> int:
    i = start + 1
    in_class = False
    while i < len(source) and source[i] != "\n":
        c = source[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            in_class = True
        elif c == "]":
            in_class = False
        elif c == "/" and not in_class:
            match = _NAME.match(source, i + 1)
            return match.end() if match else i + 1
        i += 1
    raise ValueError(f"an unterminated regular expression at {start}")


def _texts(tokens: list[Token]) -> str:
    return " ".join(t.text for t in tokens)


def close_of(tokens: list[Token], open_index: int) -> int:
    """The index of the bracket that closes ``tokens[open_index]`` (one of ``([{``).

    Raises:
        ValueError: the brackets are not balanced.
    """
    stack: list[str] = []
    for i in range(open_index, len(tokens)):
        token = tokens[i]
        if token.kind != "punct":
            continue
        if token.text in "([{":
            stack.append(_CLOSING[token.text])
        elif stack and token.text == stack[-1]:
            stack.pop()
            if not stack:
                return i
        elif token.text in ")]}":
            raise ValueError(f"unbalanced {token.text!r} at token {i}")
    raise ValueError(f"{tokens[open_index].text!r} at token {open_index} is never closed")


def split_top(tokens: list[Token], separators: str) -> list[list[Token]]:
    """``tokens`` cut at each separator outside brackets; empty parts are dropped."""
    parts: list[list[Token]] = [[]]
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.kind == "punct" and token.text in "([{":
            end = close_of(tokens, i)
            parts[-1].extend(tokens[i : end + 1])
            i = end + 1
            continue
        if token.kind == "punct" and token.text in separators:
            parts.append([])
        else:
            parts[-1].append(token)
        i += 1
    return [part for part in parts if part]


def find(tokens: list[Token], *texts: str, start: int = 0) -> Iterator[int]:
    """The indices where the tokens ``texts`` follow each other."""
    n = len(texts)
    for i in range(start, len(tokens) - n + 1):
        if all(tokens[i + k].text == texts[k] for k in range(n)):
            yield i


def statement_end(tokens: list[Token], start: int) -> int:
    """The index of the ``;`` that ends the statement starting at ``start`` (or the end)."""
    i = start
    while i < len(tokens):
        token = tokens[i]
        if token.kind == "punct" and token.text in "([{":
            i = close_of(tokens, i) + 1
            continue
        if token.kind == "punct" and token.text == ";":
            return i
        i += 1
    return len(tokens)


def find_one(tokens: list[Token], *texts: str, start: int = 0) -> int:
    found = list(find(tokens, *texts, start=start))
    if len(found) != 1:
        raise ValueError(f"{' '.join(texts)!r} occurs {len(found)} times, not once")
    return found[0]


# The runtime's side: the preludes.


@functools.cache
def prelude(name: str) -> list[Token]:
    return tokenize(SANDBOX.joinpath(name).read_text())


def tenants(names: set[str]) -> set[str]:
    """``names`` without those internal by rule (a leading ``_``)."""
    return {name for name in names if not name.startswith("_")}


def object_entries(tokens: list[Token], open_index: int) -> dict[str, list[Token]]:
    """The entries of the object literal opening at ``open_index``: key → value tokens (a
    method's are its parameters and body; a shorthand's its own name).

    Raises:
        ValueError: an entry that is neither ``key: value``, ``key``, nor ``key() {...}``
            (a spread, a computed key, an accessor), whose key cannot be told.
    """
    close = close_of(tokens, open_index)
    entries: dict[str, list[Token]] = {}
    for entry in split_top(tokens[open_index + 1 : close], ","):
        key = entry[0]
        if key.kind not in ("name", "string") or (len(entry) > 1 and entry[1].text not in ":("):
            raise ValueError(f"cannot tell the key of the object entry {_texts(entry)!r}")
        entries[key.text] = [key] if len(entry) == 1 else entry[2 if entry[1].text == ":" else 1 :]
    return entries


def _initializer(tokens: list[Token], variable: str) -> list[Token]:
    """What ``const variable = …;`` assigns."""
    start = find_one(tokens, "const", variable, "=") + 3
    return tokens[start : statement_end(tokens, start)]


def _array_strings(tokens: list[Token], variable: str) -> list[str]:
    value = _initializer(tokens, variable)
    if value[0].text != "[" or close_of(value, 0) != len(value) - 1:
        raise ValueError(f"{variable} is not an array literal: {_texts(value)!r}")
    items = split_top(value[1:-1], ",")
    if not all(len(item) == 1 and item[0].kind == "string" for item in items):
        raise ValueError(f"{variable} is not an array of strings: {_texts(value)!r}")
    return [item[0].text for item in items]


def object_members(tokens: list[Token], value: list[Token]) -> set[str]:
    """The members of the object ``value`` makes: an object literal (in ``freeze(…)`` or
    not), or a variable holding one, with the members ``define(variable, name, …)`` and
    ``variable.name = …`` add (a name may be ``array[i]``: each string of that array)."""
    for i, token in enumerate(value):
        if token.text == "{":
            return tenants(set(object_entries(value, i)))
        if token.text not in ("P", ".", "freeze", "("):
            break
    if len(value) != 1 or value[0].kind != "name":
        raise ValueError(f"cannot tell the members of {_texts(value)!r}")
    variable = value[0].text
    members = set()
    initial = _initializer(tokens, variable)
    if initial[0].text == "{":
        members |= set(object_entries(initial, 0))
    for i in find(tokens, "define", "(", variable, ","):
        name = tokens[i + 4]
        if name.kind == "string":
            members.add(name.text)
        elif name.kind == "name" and tokens[i + 5].text == "[":
            members |= set(_array_strings(tokens, name.text))
        else:
            raise ValueError(f"cannot tell the name {variable} gets at token {i}")
    for i in find(tokens, variable, "."):
        if tokens[i + 3].text == "=" and tokens[i + 4].text != "=":
            members.add(tokens[i + 2].text)
    return tenants(members)


def function_body(tokens: list[Token], start: int) -> list[Token]:
    """The body, braces included, of the function whose ``function`` keyword (or whose
    name) is at ``start``."""
    params = next(i for i in range(start, len(tokens)) if tokens[i].text == "(")
    open_index = close_of(tokens, params) + 1
    if tokens[open_index].text != "{":
        raise ValueError(f"no function body after {_texts(tokens[start : open_index + 1])!r}")
    return tokens[open_index : close_of(tokens, open_index) + 1]


def returned(body: list[Token]) -> list[Token]:
    """What the last ``return`` of a function ``body`` returns (not one of a nested
    function)."""
    inside = body[1:-1]
    last = None
    i = 0
    while i < len(inside):
        if inside[i].kind == "punct" and inside[i].text in "([{":
            i = close_of(inside, i) + 1
            continue
        if inside[i].text == "return":
            last = i
        i += 1
    if last is None:
        raise ValueError("the function returns nothing")
    return inside[last + 1 : statement_end(inside, last)]


def part_export(name: str) -> list[Token]:
    """What the part prelude_<name>.js gives as the global ``name``: its export of that name
    (the part's source is one function, which returns its exports)."""
    tokens = prelude(f"prelude_{name}.js")
    assert _texts(tokens[:2]) == "( function", f"prelude_{name}.js is not one function"
    exports = returned(function_body(tokens, 1))
    open_index = next(i for i, t in enumerate(exports) if t.text == "{")
    return object_entries(exports, open_index)[name]


def prelude_globals() -> set[str]:
    """The globals the preludes define. Every use of ``globalThis`` must be a form read here.

    Raises:
        ValueError: another use of ``globalThis``.
    """
    names: set[str] = set()
    parts = sorted(p.name for p in SANDBOX.iterdir() if re.fullmatch(r"prelude\w*\.js", p.name))
    assert "prelude.js" in parts, parts
    for part in parts:
        tokens = prelude(part)
        for i, token in enumerate(tokens):
            if token.text != "globalThis":
                continue
            after = tokens[i + 1 : i + 4]
            if _texts(tokens[i - 2 : i]) == "define (" and after[0].text == ",":
                # A literal name defines a global; a computed one is lazy's setter.
                if after[1].kind == "string":
                    names.add(after[1].text)
                elif after[1].kind != "name":
                    raise ValueError(f"{part}: cannot tell what define(globalThis, …) names")
            elif after[0].text == "." and after[2].text == "=":
                names.add(after[1].text)
            else:
                raise ValueError(f"{part}: cannot tell what {_texts(tokens[i - 2 : i + 4])!r} does")
    return tenants(names)


def prelude_tags() -> set[str]:
    """The Neo types the helpers tag values with: ``tag("Hash160", value)``."""
    tokens = prelude("prelude_neo.js")
    return {tokens[i + 2].text for i in find(tokens, "tag", "(") if tokens[i + 2].kind == "string"}


def prelude_tagged_members() -> set[str]:
    """The members of a tagged value, as ``tag(type, value)`` makes it."""
    tokens = prelude("prelude_neo.js")
    return object_members(
        tokens, returned(function_body(tokens, find_one(tokens, "function", "tag")))
    )


def prelude_response_members() -> set[str]:
    """What a fetch resolves to: the object ``response(r)`` returns in prelude_fetch.js."""
    tokens = prelude("prelude_fetch.js")
    return object_members(tokens, returned(_response_body(tokens)))


def prelude_headers_methods() -> set[str]:
    """The methods a response's headers get from their prototype (``headersProto``)."""
    tokens = prelude("prelude_fetch.js")
    body = _response_body(tokens)
    # The response's headers: ``headers`` is ``create(headersProto)``.
    assert _texts(object_entries(returned(body), 0)["headers"]) == "headers"
    assert _texts(_initializer(body, "headers")) == "create ( headersProto )"
    return object_members(tokens, [Token("name", "headersProto")])


def _response_body(tokens: list[Token]) -> list[Token]:
    return function_body(tokens, find_one(tokens, "function", "response"))


# The runtime's side: the services' Python code.


def _source_files() -> Iterator[tuple[Path, str]]:
    for pattern in SOURCE_ROOTS:
        for path in sorted(path for root in ROOT.glob(pattern) for path in root.rglob("*.py")):
            yield path, path.read_text()


def _assigned_dicts(module: ast.Module) -> dict[str, ast.Dict]:
    return {
        target.id: node.value
        for node in ast.walk(module)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def _flat_dict(node: ast.Dict, names: dict[str, ast.Dict]) -> tuple[dict[str, ast.expr], bool]:
    """A dict literal's literal keys → values, with ``**name`` expanded where ``name`` is a
    dict literal assigned in the same module; and whether every key could be read."""
    flat: dict[str, ast.expr] = {}
    complete = True
    for key, value in zip(node.keys, node.values, strict=True):
        if key is None and isinstance(value, ast.Name) and value.id in names:
            inner, inner_complete = _flat_dict(names[value.id], names)
            flat.update(inner)
            complete = complete and inner_complete
        elif isinstance(key, ast.Constant) and isinstance(key.value, str):
            flat[key.value] = value
        else:
            complete = False
    return flat, complete


def code_contexts() -> dict[str, set[str]]:
    """The keys of each ``ctx`` a ``RunRequest`` is built with (a ``ctx=`` keyword or a dict
    assigned to ``ctx``, in a module that makes a RunRequest), by where it is built."""
    found: dict[str, set[str]] = {}
    for path, text in _source_files():
        if "RunRequest(" not in text:
            continue
        module = ast.parse(text, str(path))
        names = _assigned_dicts(module)
        for node in ast.walk(module):
            passed = isinstance(node, ast.keyword) and node.arg == "ctx"
            assigned = isinstance(node, ast.Assign) and any(
                isinstance(target, ast.Name) and target.id == "ctx" for target in node.targets
            )
            value = getattr(node, "value", None)
            if (passed or assigned) and isinstance(value, ast.Dict):
                keys, complete = _flat_dict(value, names)
                assert complete, f"{path}:{value.lineno}: a key of ctx cannot be read"
                found[f"{path.relative_to(ROOT)}:{value.lineno}"] = set(keys)
    return found


def code_trigger_keys() -> set[str]:
    """The keys of ``ctx.trigger``: the jsonb_build_object the executions' INSERT stores."""
    text = importlib.resources.files("neosl.triggers").joinpath("firing.py").read_text()
    built = re.compile(r"jsonb_build_object\((.*?)\)", re.DOTALL).search(
        text, text.index("INSERT INTO executions")
    )
    assert built is not None, "firing.py no longer builds ctx.trigger with jsonb_build_object"
    return set(re.findall(r"'(\w+)'\s*,", built[1]))


def code_causes() -> dict[str, set[str]]:
    """The keys of each kind of cause, by its ``type``: every dict literal in the services'
    code with a literal ``type`` and a ``trigger_id`` is a cause (the keys of several of one
    type are joined)."""
    causes: dict[str, set[str]] = {}
    for path, text in _source_files():
        if "trigger_id" not in text:
            continue
        module = ast.parse(text, str(path))
        names = _assigned_dicts(module)
        for node in ast.walk(module):
            if not isinstance(node, ast.Dict):
                continue
            flat, complete = _flat_dict(node, names)
            kind = flat.get("type")
            if not (isinstance(kind, ast.Constant) and isinstance(kind.value, str)):
                continue
            if "trigger_id" in flat:
                assert complete, f"{path}:{node.lineno}: a key of a cause cannot be read"
                causes.setdefault(kind.value, set()).update(flat)
    return causes


# The .d.ts side.


@dataclass
class Declarations:
    # Runtime globals: name → ("const" | "function" | "class" | "namespace", type tokens: a
    # variable's type, a function's return type).
    globals: dict[str, tuple[str, list[Token]]] = field(default_factory=dict)
    # Interfaces (member → type tokens; a method's: its signature) and type aliases.
    interfaces: dict[str, dict[str, list[Token]]] = field(default_factory=dict)
    aliases: dict[str, list[Token]] = field(default_factory=dict)

    def members(self, type_tokens: list[Token], seen: frozenset[str] = frozenset()) -> set[str]:
        """The members of a type: of each interface it names (through aliases, unions,
        intersections and type arguments) and of its object literal types."""
        members: set[str] = set()
        i = 0
        while i < len(type_tokens):
            token = type_tokens[i]
            if token.kind == "punct" and token.text == "{":
                end = close_of(type_tokens, i)
                members |= set(interface_members(type_tokens[i + 1 : end]))
                i = end
            elif token.kind == "name" and token.text in self.interfaces:
                members |= set(self.interfaces[token.text])
            elif token.kind == "name" and token.text in self.aliases and token.text not in seen:
                members |= self.members(self.aliases[token.text], seen | {token.text})
            i += 1
        return members

    def member_type(self, type_tokens: list[Token], member: str) -> list[Token]:
        """The type of ``member`` in the first interface ``type_tokens`` names that has it."""
        for token in type_tokens:
            if token.kind == "name" and member in self.interfaces.get(token.text, {}):
                return self.interfaces[token.text][member]
        raise AssertionError(f"no member {member} in {_texts(type_tokens)}")

    def literals(self, alias: str) -> set[str]:
        """The string literals a type alias is a union of."""
        return {token.text for token in self.aliases[alias] if token.kind == "string"}


def interface_members(body: list[Token]) -> dict[str, list[Token]]:
    """The named members of an interface's body → their types (a method's: its signature).
    Index, call and construct signatures have no name: they are left out.

    Raises:
        ValueError: a member of another form.
    """
    members: dict[str, list[Token]] = {}
    for member in split_top(body, ";"):
        if member[0].text == "readonly":
            member = member[1:]
        if member[0].text in ("[", "(", "<", "new"):
            continue
        name = member[0]
        rest = member[2:] if member[1].text == "?" else member[1:]
        if name.kind not in ("name", "string") or rest[0].text not in (":", "(", "<"):
            raise ValueError(f"cannot read the member {_texts(member)!r}")
        members[name.text] = rest[1:] if rest[0].text == ":" else rest
    return members


def returns(signature: list[Token]) -> list[Token]:
    """The return type of a method's or function's signature (``(…): type``)."""
    start = next(i for i, token in enumerate(signature) if token.text == "(")
    end = close_of(signature, start)
    if end + 1 >= len(signature) or signature[end + 1].text != ":":
        raise ValueError(f"no return type in {_texts(signature)!r}")
    return signature[end + 2 :]


def read_dts(text: str) -> Declarations:
    """The declarations of a .d.ts file.

    Raises:
        ValueError: a statement the reader does not know (anything but ``declare const|let|
            var|function|class|namespace``, ``interface`` and ``type``), or a variable or
            function without a type.
    """
    declarations = Declarations()
    _read_statements(tokenize(text), declarations, top=True)
    return declarations


def _read_statements(tokens: list[Token], declarations: Declarations, top: bool) -> bool:
    """Reads the statements ``tokens`` into ``declarations``; whether one declares a value.
    ``top``: the file's statements (``declare …``), else a namespace's."""
    has_value = False
    i = 0
    while i < len(tokens):
        if top:
            if tokens[i].text != "declare" and tokens[i].text not in ("interface", "type"):
                raise ValueError(f"cannot read the statement {_texts(tokens[i : i + 4])!r}")
            i += tokens[i].text == "declare"
        keyword, name = tokens[i].text, tokens[i + 1].text
        if keyword in ("interface", "class", "namespace"):
            open_index = next(k for k in range(i, len(tokens)) if tokens[k].text == "{")
            end = close_of(tokens, open_index)
            body = tokens[open_index + 1 : end]
            if keyword == "interface":
                declarations.interfaces[name] = interface_members(body)
            elif keyword == "class":
                has_value = True
                declarations.globals[name] = ("class", [])
            elif _read_statements(body, declarations, top=False):
                declarations.globals[name] = ("namespace", [])
            i = end + 1
            continue
        end = statement_end(tokens, i)
        statement = tokens[i + 2 : end]
        if keyword == "type":
            equals = next(k for k, token in enumerate(statement) if token.text == "=")
            declarations.aliases[name] = statement[equals + 1 :]
        elif keyword in ("const", "let", "var", "function"):
            has_value = True
            if keyword == "function":
                declarations.globals[name] = ("function", returns(statement))
            elif statement[:1] and statement[0].text == ":":
                declarations.globals[name] = ("const", statement[1:])
            else:
                raise ValueError(f"{name} is declared without a type")
        else:
            raise ValueError(f"cannot read the statement {_texts(tokens[i:end])!r}")
        i = end + 1
    return has_value


@functools.cache
def dts() -> Declarations:
    return read_dts(DTS.read_text())


def declared_type(name: str) -> list[Token]:
    """The declared type of the global ``name`` (a function's: its return type)."""
    assert name in dts().globals, f"{DTS.name} does not declare the global {name}"
    return dts().globals[name][1]


def declared_ctx() -> list[Token]:
    """The type of ``ctx``: the second parameter of ``NeoSL.Main``."""
    main = dts().aliases["Main"]
    parameters = split_top(main[1 : close_of(main, 0)], ",")
    assert len(parameters) == 2, f"Main takes {_texts(main)}, not (input, ctx)"
    return parameters[1][2:]


def declared_tagged() -> set[str]:
    """The members of what the helpers return (``neo.string``'s return type)."""
    return dts().members(returns(dts().member_type(declared_type("neo"), "string")))


def declared_causes() -> dict[str, set[str]]:
    """The members of each interface of ``NeoSL.Cause``, by the literal of its ``type``."""
    causes: dict[str, set[str]] = {}
    for token in dts().aliases["Cause"]:
        if token.kind == "name" and token.text in dts().interfaces:
            members = dts().interfaces[token.text]
            (kind,) = [t.text for t in members["type"] if t.kind == "string"]
            causes[kind] = set(members)
    return causes


# Comparing.


def compare(what: str, declared: set[str], provided: set[str], by: str) -> None:
    """Fails naming every name in one set and not the other (and when both are empty: a
    reader that found nothing proves nothing)."""
    assert declared or provided, f"no {what} found, neither in {DTS.name} nor in {by}"
    problems = []
    if missing := sorted(provided - declared):
        problems.append(f"{by} provides {what} that {DTS.name} does not declare: {missing}")
    if extra := sorted(declared - provided):
        problems.append(f"{DTS.name} declares {what} that {by} does not provide: {extra}")
    assert not problems, "\n".join(problems)


# What each check compares: (declared, provided, by whom).
Names = Callable[[], tuple[set[str], set[str], str]]
STATIC: dict[str, Names] = {
    "neo members": lambda: (
        dts().members(declared_type("neo")),
        object_members(prelude("prelude_neo.js"), part_export("neo")),
        "prelude_neo.js",
    ),
    "console methods": lambda: (
        dts().members(declared_type("console")),
        object_members(prelude("prelude_console.js"), part_export("console")),
        "prelude_console.js",
    ),
    "console levels": lambda: (
        dts().members(declared_type("console")),
        set(LOG_LEVELS),
        "LOG_LEVELS (the levels the sandbox keeps)",
    ),
    "fetch response members": lambda: (
        dts().members(declared_type("fetch")),
        prelude_response_members(),
        "prelude_fetch.js (response)",
    ),
    "fetch response headers methods": lambda: (
        dts().members(dts().member_type(declared_type("fetch"), "headers")),
        prelude_headers_methods(),
        "prelude_fetch.js (headersProto)",
    ),
    "Neo type tags": lambda: (dts().literals("NeoType"), prelude_tags(), "prelude_neo.js (tag)"),
    "Neo type tags mapped": lambda: (
        dts().literals("NeoType"),
        set(params._TAGGED),
        "neosl.neo.params (what neo.call and neo.invoke arguments may be tagged)",
    ),
    "tagged value members": lambda: (
        declared_tagged(),
        prelude_tagged_members(),
        "prelude_neo.js (tag)",
    ),
    "ctx.trigger members": lambda: (
        dts().members(dts().member_type(declared_ctx(), "trigger")),
        code_trigger_keys(),
        "neosl.triggers.firing",
    ),
}


@pytest.mark.parametrize("what", sorted(STATIC))
def test_the_code_and_the_declarations_name_the_same_members(what: str) -> None:
    declared, provided, by = STATIC[what]()
    compare(what, declared, provided, by)


def test_every_global_a_prelude_defines_is_declared() -> None:
    # One way only here: the .d.ts declares the engine's own globals too. The sandbox test
    # below checks both ways.
    defined = prelude_globals()
    assert defined, "no global found in the preludes"
    missing = sorted(defined - set(dts().globals))
    assert not missing, f"the preludes define globals that {DTS.name} does not declare: {missing}"


def test_ctx_is_declared_as_every_runner_builds_it() -> None:
    contexts = code_contexts()
    assert len(contexts) >= 2, f"expected the executor's and the CLI's ctx, found {contexts}"
    for where, keys in contexts.items():
        compare("ctx members", dts().members(declared_ctx()), keys, where)


def test_the_causes_of_triggers_are_declared() -> None:
    declared = declared_causes()
    provided = code_causes()
    compare("cause types", set(declared), set(provided), "the services' code")
    for kind, keys in provided.items():
        compare(f"members of a {kind} cause", declared[kind], keys, "the services' code")


def test_the_examples_are_checked_against_the_declarations() -> None:
    config = json.loads((EXAMPLES / "jsconfig.json").read_text())
    options = config["compilerOptions"]
    assert options["checkJs"] is True
    # The language's library only: console and fetch must come from the .d.ts, not the DOM.
    assert all(lib.lower().startswith("es") for lib in options["lib"]), options["lib"]
    assert options["types"] == [], "an @types package could declare globals the sandbox lacks"
    # Each example is a script defining main: as modules, they do not collide in one project.
    assert options["moduleDetection"] == "force"
    assert DTS.name in config["include"]
    assert "*.js" in config["include"]


# The sandbox's side: what a function really sees.

SEEN = """
async function main(input) {
  const names = (value) => Object.getOwnPropertyNames(value);
  const globals = {};
  for (const name of names(globalThis)) globals[name] = typeof globalThis[name];
  const members = {};
  for (const name of input.objects) members[name] = names(globalThis[name]);
  const response = await fetch(input.url);
  return {
    globals,
    members,
    response: names(response),
    headers: names(Object.getPrototypeOf(response.headers)),
    tagged: names(neo.string("x")),
  };
}
"""


class _Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def declared_objects() -> dict[str, set[str]]:
    """The globals declared as objects of an interface of the .d.ts, and its members."""
    objects = {
        name: dts().members(type_tokens)
        for name, (kind, type_tokens) in dts().globals.items()
        if kind == "const"
    }
    return {name: members for name, members in objects.items() if members}


@pytest.fixture(scope="module")
def seen() -> dict[str, Any]:
    """What a function run in a real sandbox sees (it fetches from a local server)."""
    with (
        serving(ThreadingHTTPServer(("127.0.0.1", 0), _Answer)) as server,
        Fetcher(allow=["127.0.0.1"]) as fetcher,
        SandboxPool(max_processes=1, fetcher=fetcher) as pool,
    ):
        job = {
            "objects": sorted(declared_objects()),
            "url": f"http://127.0.0.1:{server.server_port}/",
        }
        outcome = pool.run(RunRequest(SEEN, input=job, limits=Limits(timeout_seconds=10)))
    assert outcome.status == "succeeded", outcome.error
    result: dict[str, Any] = outcome.result
    return result


def test_the_sandbox_has_exactly_the_declared_globals(seen: dict[str, Any]) -> None:
    provided = set(seen["globals"]) - ECMASCRIPT_GLOBALS - {"main"}
    compare("globals", set(dts().globals), provided, "the sandbox")
    objects = declared_objects()
    for name, (kind, _type) in dts().globals.items():
        expected = "function" if kind in ("function", "class") else "object"
        if kind in ("function", "class") or name in objects:
            assert seen["globals"][name] == expected, f"{name} is a {seen['globals'][name]}"


def test_the_sandbox_objects_have_exactly_the_declared_members(seen: dict[str, Any]) -> None:
    for name, declared in declared_objects().items():
        compare(f"members of {name}", declared, set(seen["members"][name]), "the sandbox")


def test_a_fetch_response_has_exactly_the_declared_members(seen: dict[str, Any]) -> None:
    response = declared_type("fetch")
    compare("response members", dts().members(response), set(seen["response"]), "the sandbox")
    headers = dts().members(dts().member_type(response, "headers"))
    compare("response headers methods", headers, set(seen["headers"]), "the sandbox")


def test_a_tagged_value_has_exactly_the_declared_members(seen: dict[str, Any]) -> None:
    compare("tagged value members", declared_tagged(), set(seen["tagged"]), "the sandbox")
