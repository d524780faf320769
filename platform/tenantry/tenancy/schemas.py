"""A tenant's settings and branding as typed values (stored as JSON on the tenant's row)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

import msgspec

from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.lib.schemas import Email, convert_or_invalid
from tenantry.lib.timezones import known_zones

Color = Annotated[str, msgspec.Meta(pattern=r"^#[0-9a-fA-F]{6}$")]
DisplayName = Annotated[str, msgspec.Meta(max_length=200)]

# A theme holds plain values a front end reads (`{"font": "Inter", "radius": 8}`), never CSS:
# text refuses what could close a declaration or open a rule, markup, escapes and control
# characters, and the CSS functions that load or run something. Case-insensitive by character
# classes, so that the pattern is also a valid JSON Schema (ECMA-262) pattern.
MAX_THEME_KEYS = 32
ThemeKey = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
ThemeText = Annotated[
    str,
    msgspec.Meta(
        max_length=200,
        pattern=r"^(?![^\x00]*(?:[uU][rR][lL]\(|[eE][xX][pP][rR][eE][sS][sS][iI][oO][nN]\("
        r"|@[iI][mM][pP][oO][rR][tT]))[^;{}<>\\\x00-\x1f\x7f]*$",
    ),
]
ThemeValue = (
    ThemeText
    | Annotated[int, msgspec.Meta(ge=-1_000_000, le=1_000_000)]
    | Annotated[float, msgspec.Meta(ge=-1_000_000, le=1_000_000)]
    | bool
)
Theme = Annotated[dict[ThemeKey, ThemeValue], msgspec.Meta(max_length=MAX_THEME_KEYS)]
# A theme in answers: JSON has one kind of number, and the document's `oneOf` over integer and
# number would refuse every integer.
ThemeOut = dict[str, str | float | bool]
THEME_RULE = (
    "keys are lowercase names (a letter, then letters, digits or _; at most 32 characters); "
    "values are numbers (at most 1,000,000 either way), booleans or text of at most 200 "
    "characters without CSS or markup "
    "(no ; { } < > \\, control characters, url( expression( or @import)"
)


Origin = Annotated[
    str, msgspec.Meta(max_length=300, pattern=r"^https?://[a-z0-9.-]+(:[0-9]{1,5})?$")
]
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
    # Browser origins allowed beyond the tenant's own host and verified domains.
    cors_origins: Annotated[list[Origin], msgspec.Meta(max_length=20)] = msgspec.field(
        default_factory=list
    )

    def __post_init__(self) -> None:
        if self.usage_timezone not in known_zones():
            raise ValueError(f"usage_timezone: not an IANA time zone name: {self.usage_timezone}")


class Branding(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The plain values of a tenant's brand, which its admins and the operator set."""

    display_name: DisplayName | None = None
    primary_color: Color = "#1f6feb"
    accent_color: Color = "#f59e0b"
    # An external logo, set by the operator; an uploaded logo (`StoredBranding.logo`) wins.
    # Front ends put it in an <img src>: web addresses only (no javascript: or data: tricks).
    logo_url: Annotated[str, msgspec.Meta(max_length=2048, pattern=r"^https?://[^\s]+$")] | None = (
        None
    )
    support_email: Email | None = None
    theme: Theme = msgspec.field(default_factory=dict)


LogoType = Literal["image/png", "image/jpeg", "image/webp", "image/svg+xml"]
SVG: Final = "image/svg+xml"
# The logo's field in `tenants.branding`.
LOGO_FIELD = "logo"


class LogoInfo(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The record of an uploaded logo (its bytes are in the store, under `logo_key`)."""

    content_type: LogoType
    size: int
    sha256: str

    @property
    def version(self) -> str:
        """What logo URLs carry (`?v=`): changes with the bytes, so caches may keep each long."""
        return self.sha256[:16]


class StoredBranding(Branding):
    """`tenants.branding` as stored: the plain values and the uploaded logo's record. The
    record changes only with an upload or a removal, never through the plain values' edits."""

    logo: LogoInfo | None = None


def stored_branding(raw: Mapping[str, Any]) -> StoredBranding:
    return msgspec.convert(raw, StoredBranding)


def plain_branding(raw: Mapping[str, Any]) -> Branding:
    return msgspec.convert(_without_logo(raw), Branding)


def edit_branding(
    raw: Mapping[str, Any], changes: Mapping[str, object], *, prefix: str = ""
) -> dict[str, Any]:
    """The stored branding with `changes` to its plain values (422 naming a field that is not
    acceptable, `logo` included); the uploaded logo's record is kept as it is."""
    check_theme(changes.get("theme"), prefix=prefix)
    edited = convert_or_invalid({**_without_logo(raw), **changes}, Branding, prefix=prefix)
    kept = {LOGO_FIELD: raw[LOGO_FIELD]} if raw.get(LOGO_FIELD) is not None else {}
    return {**msgspec.to_builtins(edited), **kept}


def check_theme(theme: object, *, prefix: str = "") -> None:
    """422 naming the theme entry that is not a plain value (`theme.font`): msgspec names
    only the whole object when one of its values fails."""
    if not isinstance(theme, dict):
        return
    for key, value in theme.items():
        try:
            msgspec.convert({key: value}, Theme, strict=False)
        except msgspec.ValidationError as exc:
            field = ".".join(part for part in (prefix, "theme", str(key)) if part)
            raise DomainError(
                ErrorCode.INVALID_FIELD, f"{field}: {THEME_RULE}", field=field
            ) from exc


def _without_logo(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in raw.items() if key != LOGO_FIELD}


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
