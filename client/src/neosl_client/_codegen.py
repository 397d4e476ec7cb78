"""Writes ``neosl_client.models`` from the API's OpenAPI document.

    python -m neosl_client._codegen openapi.json > client/src/neosl_client/models.py

Each schema of ``components.schemas`` becomes a ``TypedDict`` with the same name: required
properties plain, the others ``NotRequired``; ``nullable`` adds ``| None``; an enum of strings
is a ``Literal``; a property without a type is ``Any``. The project's tests render the
document the API serves and compare it with the committed module, so the two cannot drift.
"""

from __future__ import annotations

import json
import keyword
import sys
from collections.abc import Mapping
from typing import Any

_HEADER = '''"""The API's request and answer bodies, as typed dictionaries.

Written by ``python -m neosl_client._codegen`` from the API's OpenAPI document: do not edit.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict
'''

_SCALARS = {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}


def render_models(spec: Mapping[str, Any]) -> str:
    """The source of ``neosl_client.models`` for the OpenAPI document ``spec``."""
    schemas: Mapping[str, Any] = spec.get("components", {}).get("schemas", {})
    classes = [_render_class(name, schemas[name]) for name in sorted(schemas)]
    return _HEADER + "\n\n" + "\n\n\n".join(classes) + "\n"


def _render_class(name: str, schema: Mapping[str, Any]) -> str:
    properties: Mapping[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    lines = [f"class {name}(TypedDict):"]
    doc = schema.get("description")
    if doc:
        lines.append(f'    """{_doc(doc)}"""')
        if properties:
            lines.append("")
    if not properties:
        if not doc:
            lines.append("    pass")
        return "\n".join(lines)
    for prop in sorted(properties):
        if not prop.isidentifier() or keyword.iskeyword(prop):
            raise ValueError(f"{name}.{prop} is not a Python identifier")
        annotation = _annotation(properties[prop])
        if prop not in required:
            annotation = f"NotRequired[{annotation}]"
        lines.append(f"    {prop}: {annotation}")
    return "\n".join(lines)


def _annotation(schema: Mapping[str, Any]) -> str:
    if "$ref" in schema:
        base = str(schema["$ref"]).rsplit("/", 1)[-1]
    elif "anyOf" in schema or "oneOf" in schema:
        options = [_annotation(s) for s in schema.get("anyOf", schema.get("oneOf", []))]
        base = " | ".join(dict.fromkeys(options)) or "Any"
    elif "enum" in schema and schema.get("type") == "string":
        values = [v for v in schema["enum"] if v is not None]
        base = "Literal[" + ", ".join(json.dumps(v) for v in values) + "]"
    else:
        kind = schema.get("type")
        if kind in _SCALARS:
            base = _SCALARS[kind]
        elif kind == "array":
            base = f"list[{_annotation(schema.get('items', {}))}]"
        elif kind == "object":
            extra = schema.get("additionalProperties")
            value = _annotation(extra) if isinstance(extra, dict) and extra else "Any"
            base = f"dict[str, {value}]"
        else:
            base = "Any"
    if schema.get("nullable") and base != "Any":
        base = f"{base} | None"
    # One member each, None last.
    members = list(dict.fromkeys(_top_level_members(base)))
    if "None" in members:
        members = [m for m in members if m != "None"] + ["None"]
    return " | ".join(members)


def _top_level_members(union: str) -> list[str]:
    """The members of ``a | b[c | d] | e``: a, b[c | d], e."""
    members, depth, start = [], 0, 0
    for i, char in enumerate(union):
        depth += char == "["
        depth -= char == "]"
        if depth == 0 and union.startswith(" | ", i):
            members.append(union[start:i])
            start = i + 3
    members.append(union[start:])
    return members


def _doc(text: str) -> str:
    return " ".join(str(text).split()).replace('"""', "'''").replace("\\", "\\\\")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m neosl_client._codegen OPENAPI.json", file=sys.stderr)
        return 2
    with open(args[0], encoding="utf-8") as f:
        sys.stdout.write(render_models(json.load(f)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
