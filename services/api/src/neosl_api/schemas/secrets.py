"""Tenant secrets: a value goes in, only its name, version and times come out."""

from __future__ import annotations

import marshmallow as ma

from neosl.functions.secretbox import MAX_NAME_LENGTH, MAX_VALUE_BYTES, NAME_PATTERN, utf8
from neosl_api.schemas.common import StrictSchema

NAME_RULE = f"1-{MAX_NAME_LENGTH} characters of letters, digits and '_'."
VALUE_RULE = f"At most {MAX_VALUE_BYTES} bytes (UTF-8)."

# The `{name}` of a secret's URL, for the route's `parameters`: the document states the rule
# the service checks (a 422 outside it) instead of "any string".
NAME_PARAMETER = {
    "in": "path",
    "name": "name",
    "required": True,
    "description": NAME_RULE,
    "schema": {"type": "string", "pattern": NAME_PATTERN},
}


def _value_size(value: str) -> None:
    # Length() counts characters; the limit is on what is stored.
    raw = utf8(value)
    if raw is None:
        raise ma.ValidationError("Not valid Unicode text (lone surrogate).")
    if len(raw) > MAX_VALUE_BYTES:
        raise ma.ValidationError(VALUE_RULE)


class SecretValueSchema(StrictSchema):
    value = ma.fields.String(
        required=True,
        load_only=True,
        validate=_value_size,
        metadata={
            "description": f"The secret, stored encrypted and never shown again. {VALUE_RULE}",
            "maxLength": MAX_VALUE_BYTES,
        },
    )


class SecretSchema(ma.Schema):
    name = ma.fields.String(required=True, metadata={"pattern": NAME_PATTERN})
    version = ma.fields.Integer(
        required=True, metadata={"description": "1 when created; each PUT adds one."}
    )
    created_at = ma.fields.DateTime(required=True)
    updated_at = ma.fields.DateTime(required=True)
