"""The closed sets of values the schema stores as strings (varchar with a CHECK constraint).

`StrEnum` members are `str`s that compare equal to their values, so code that still passes
plain strings keeps working; the database stores the values, never the member names.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A user's role in a tenant, highest first: each role may do all that the ones below may."""

    OWNER = "owner"
    ADMIN = "admin"
    EDITOR = "editor"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        """Higher is more privileged: `role.rank >= Role.EDITOR.rank` means editor or above."""
        members = list(Role)
        return len(members) - members.index(self)


class TenantStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DELETED = "deleted"


class FileStatus(StrEnum):
    """pending: row made, no content yet; uploading: a request is streaming it; ready: listed
    and counted; deleting: on its way out."""

    PENDING = "pending"
    UPLOADING = "uploading"
    READY = "ready"
    DELETING = "deleting"


class UploadState(StrEnum):
    """A direct upload's life: open while the client sends parts to the store; completing while
    one request verifies the object; completed once its file is ready."""

    OPEN = "open"
    COMPLETING = "completing"
    COMPLETED = "completed"


class UploadProtocol(StrEnum):
    """How an upload session's bytes arrive: direct (parts PUT to signed URLs) or tus (PATCHes
    to the API, appended to the store's staging)."""

    DIRECT = "direct"
    TUS = "tus"


class UsageKind(StrEnum):
    UPLOAD = "upload"
    DOWNLOAD = "download"
    DELETE = "delete"
    LOGIN = "login"
    SIGNUP = "signup"
    # Bytes the local store actually sent for a signed link (S3 serves its links itself).
    SERVE = "serve"


class StatsDimension(StrEnum):
    """The `file_stats` rollup's dimensions (see `tenantry.files.rollup`)."""

    TOTAL = "total"
    CATEGORY = "category"
    LANGUAGE = "language"
    CONTENT_TYPE = "content_type"
    AUDIENCE = "audience"


class UsageDimension(StrEnum):
    """What the usage rollup counts events under (see `tenantry.usage.rollups`)."""

    TOTAL = "total"
    CATEGORY = "category"
    LANGUAGE = "language"
    CONTENT_TYPE = "content_type"
    AUDIENCE = "audience"
    ROLE = "role"
    FILE = "file"


class UserTokenPurpose(StrEnum):
    INVITATION = "invitation"
    PASSWORD_RESET = "password_reset"


class ActorType(StrEnum):
    """Who did what the audit log records."""

    USER = "user"
    API_KEY = "api_key"
    OPERATOR = "operator"
    SYSTEM = "system"
