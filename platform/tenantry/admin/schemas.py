"""Tenant administration on the wire."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from tenantry.auth.one_time import Invitation
from tenantry.db.enums import Role
from tenantry.lib.schemas import Email, Password

DisplayName = Annotated[str, msgspec.Meta(max_length=200)]


class AdminUserOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    email: str
    role: Role
    display_name: str | None
    disabled: bool
    # False for an invited user who has not set a password yet.
    active: bool
    created_at: datetime


class UserCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A password, or none for an invitation (mailed when SMTP is set, else returned once)."""

    email: Email
    role: Role = Role.VIEWER
    password: Password | None = None
    display_name: DisplayName | None = None


class UserPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    role: Role | msgspec.UnsetType = msgspec.UNSET
    disabled: bool | msgspec.UnsetType = msgspec.UNSET
    display_name: DisplayName | msgspec.UnsetType | None = msgspec.UNSET


class UserCreated(msgspec.Struct, kw_only=True):
    user: AdminUserOut
    invitation: Invitation | None = None


class ApiKeyCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"\S")]
    # At most the creator's own role.
    role: Role = Role.VIEWER
    expires_at: datetime | None = None


class ApiKeyOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    name: str
    role: Role
    created_by: uuid.UUID | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(msgspec.Struct, kw_only=True):
    api_key: ApiKeyOut
    # Shown this once: only a keyed hash of it is kept.
    key: str


class TenantSettingsOut(msgspec.Struct, kw_only=True):
    allow_signup: bool
    signup_role: Literal["viewer", "editor"]
    accepted_content_types: list[str] | None
    max_file_bytes: int | None
    download_url_ttl_seconds: int
    cors_origins: list[str]
    # The plan's limits, set by the operator: the settings above stay within them.
    plan_content_types: list[str] | None
    plan_max_file_bytes: int


class TenantSettingsPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    allow_signup: bool | msgspec.UnsetType = msgspec.UNSET
    signup_role: Literal["viewer", "editor"] | msgspec.UnsetType = msgspec.UNSET
    # null: every type the plan allows.
    accepted_content_types: (
        Annotated[list[Annotated[str, msgspec.Meta(max_length=100)]], msgspec.Meta(max_length=50)]
        | msgspec.UnsetType
        | None
    ) = msgspec.UNSET
    # null: the plan's.
    max_file_bytes: Annotated[int, msgspec.Meta(ge=1)] | msgspec.UnsetType | None = msgspec.UNSET
    download_url_ttl_seconds: (
        Annotated[int, msgspec.Meta(ge=30, le=24 * 3600)] | msgspec.UnsetType
    ) = msgspec.UNSET
    # Exact origins (scheme, host, port) of the tenant's web apps on other hosts.
    cors_origins: (
        Annotated[
            list[
                Annotated[
                    str,
                    msgspec.Meta(max_length=300, pattern=r"^https?://[a-z0-9.-]+(:[0-9]{1,5})?$"),
                ]
            ],
            msgspec.Meta(max_length=20),
        ]
        | msgspec.UnsetType
    ) = msgspec.UNSET
