"""A tenant's settings and branding as typed values (stored as JSON on the tenant's row)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from tenantry.lib.schemas import Email
from tenantry.lib.timezones import known_zones

Color = Annotated[str, msgspec.Meta(pattern=r"^#[0-9a-fA-F]{6}$")]


ContentTypes = Annotated[
    list[Annotated[str, msgspec.Meta(max_length=100)]], msgspec.Meta(max_length=50)
]
UsageTimezone = Annotated[str, msgspec.Meta(max_length=64, pattern=r"^[A-Za-z0-9_+\-/]+$")]


class TenantSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    allow_signup: bool = False
    signup_role: Literal["viewer", "editor"] = "viewer"
    download_url_ttl_seconds: Annotated[int, msgspec.Meta(ge=10, le=7 * 24 * 3600)] = 300
    # The IANA zone whose days usage reports count in (see tenantry.usage.rollups).
    usage_timezone: UsageTimezone = "UTC"
    # The plan's types, set by the operator; None: every type the platform can sniff.
    allowed_content_types: ContentTypes | None = None
    # The tenant's own choices within the plan (its admins set them): the types it accepts
    # (None: all the plan allows) and its largest file (None: the plan's `max_file_bytes`).
    accepted_content_types: ContentTypes | None = None
    max_file_bytes: Annotated[int, msgspec.Meta(ge=1, le=2**62)] | None = None

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


def effective_upload_limits(
    settings: dict[str, object], plan_max_file_bytes: int
) -> tuple[list[str] | None, int]:
    """(types accepted, largest file) for uploads: the tenant's choices within the plan's."""
    plan = settings.get("allowed_content_types")
    accepted = settings.get("accepted_content_types")
    types: list[str] | None = None
    if isinstance(plan, list):
        types = [t for t in plan if not isinstance(accepted, list) or t in accepted]
    elif isinstance(accepted, list):
        types = list(accepted)
    own = settings.get("max_file_bytes")
    largest = min(plan_max_file_bytes, own) if isinstance(own, int) else plan_max_file_bytes
    return types, largest
