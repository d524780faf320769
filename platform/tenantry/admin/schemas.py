"""Tenant administration on the wire."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

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
