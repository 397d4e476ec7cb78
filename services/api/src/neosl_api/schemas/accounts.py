from __future__ import annotations

from typing import Any

import marshmallow as ma

from neosl_api.schemas.common import StrictSchema

USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,50}$"


class RegisterSchema(StrictSchema):
    username = ma.fields.String(
        required=True,
        validate=ma.validate.Regexp(
            USERNAME_PATTERN, error="3-50 characters of letters, digits, '_', '.' and '-'."
        ),
    )
    email = ma.fields.Email(required=True, validate=ma.validate.Length(max=255))
    password = ma.fields.String(
        required=True,
        load_only=True,
        # argon2 hashes anything; the cap only stops absurd bodies from costing CPU.
        validate=ma.validate.Length(min=10, max=1024),
    )


class LoginSchema(StrictSchema):
    username = ma.fields.String(validate=ma.validate.Length(min=1, max=255))
    email = ma.fields.String(validate=ma.validate.Length(min=1, max=255))
    password = ma.fields.String(
        required=True, load_only=True, validate=ma.validate.Length(max=1024)
    )

    @ma.validates_schema
    def one_identifier(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if ("username" in data) == ("email" in data):
            raise ma.ValidationError("Give either username or email.", "username")


class UserSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    username = ma.fields.String(required=True)
    email = ma.fields.String(required=True)
    is_active = ma.fields.Boolean(required=True)
    created_at = ma.fields.DateTime(required=True)


class RegisteredSchema(ma.Schema):
    user = ma.fields.Nested(UserSchema, required=True)
    api_key = ma.fields.String(
        required=True, metadata={"description": "Shown only in this response; store it now."}
    )


class ApiKeySchema(ma.Schema):
    api_key = ma.fields.String(
        required=True, metadata={"description": "Shown only in this response; store it now."}
    )


class TokenSchema(ma.Schema):
    access_token = ma.fields.String(required=True)
    token_type = ma.fields.String(required=True, metadata={"example": "Bearer"})
    expires_at = ma.fields.DateTime(required=True)
    expires_in = ma.fields.Integer(required=True, metadata={"description": "Seconds."})
