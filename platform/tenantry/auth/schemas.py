from __future__ import annotations

import uuid
from typing import Literal

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


class UserOut(msgspec.Struct):
    id: uuid.UUID
    email: str
    role: str


class MeResponse(msgspec.Struct):
    id: uuid.UUID
    email: str
    role: str
    tenant: TenantSummary
