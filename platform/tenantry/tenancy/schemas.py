"""A tenant's settings and branding as typed values (stored as JSON on the tenant's row)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from tenantry.lib.schemas import Email
from tenantry.lib.timezones import known_zones

Color = Annotated[str, msgspec.Meta(pattern=r"^#[0-9a-fA-F]{6}$")]


UsageTimezone = Annotated[str, msgspec.Meta(max_length=64, pattern=r"^[A-Za-z0-9_+\-/]+$")]


class TenantSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    allow_signup: bool = False
    signup_role: Literal["viewer", "editor"] = "viewer"
    download_url_ttl_seconds: Annotated[int, msgspec.Meta(ge=10, le=7 * 24 * 3600)] = 300
    # None: every type the platform can sniff.
    # The IANA zone whose days usage reports count in (see tenantry.usage.rollups).
    usage_timezone: UsageTimezone = "UTC"
    allowed_content_types: (
        Annotated[list[Annotated[str, msgspec.Meta(max_length=100)]], msgspec.Meta(max_length=50)]
        | None
    ) = None

    def __post_init__(self) -> None:
        if self.usage_timezone not in known_zones():
            raise ValueError(f"usage_timezone: not an IANA time zone name: {self.usage_timezone}")


class Branding(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    display_name: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    primary_color: Color = "#1f6feb"
    accent_color: Color = "#f59e0b"
    # Front ends put it in an <img src>: web addresses only (no javascript: or data: tricks).
    logo_url: Annotated[str, msgspec.Meta(max_length=2048, pattern=r"^https?://[^\s]+$")] | None = (
        None
    )
    support_email: Email | None = None
