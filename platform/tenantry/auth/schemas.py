from __future__ import annotations

import uuid
from typing import Annotated, Literal

import msgspec

from tenantry.lib.schemas import Email, Password


class LoginRequest(msgspec.Struct):
    email: Email
    password: Password


class SignupRequest(msgspec.Struct):
    email: Email
    password: Password


class RefreshRequest(msgspec.Struct):
    refresh_token: str


class TokenResponse(msgspec.Struct, omit_defaults=True):
    access_token: str
    expires_in: int
    token_type: Literal["bearer"]
    refresh_token: str | None = None  # tenant logins only


class TenantSummary(msgspec.Struct):
    id: uuid.UUID
    slug: str
    name: str


class MeResponse(msgspec.Struct):
    id: uuid.UUID
    email: str
    role: str
    display_name: str | None
    tenant: TenantSummary


class MePatch(msgspec.Struct, forbid_unknown_fields=True):
    display_name: Annotated[str, msgspec.Meta(max_length=200)] | None


class AcceptInvitation(msgspec.Struct):
    token: Annotated[str, msgspec.Meta(max_length=200)]
    password: Password


class ForgotPassword(msgspec.Struct):
    email: Email


class ResetPassword(msgspec.Struct):
    token: Annotated[str, msgspec.Meta(max_length=200)]
    password: Password


class ChangePassword(msgspec.Struct):
    current_password: Password
    new_password: Password


class Accepted(msgspec.Struct):
    status: Literal["accepted"] = "accepted"
