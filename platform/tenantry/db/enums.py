"""The closed sets of values the schema stores as text (each with a CHECK in the migrations)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A tenant user's role, lowest first: each role may do what the ones before it may."""

    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"
    OWNER = "owner"


class TenantStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DELETED = "deleted"


class FileStatus(StrEnum):
    PENDING = "pending"  # two-step upload: the row waits for its content
    UPLOADING = "uploading"  # a request has claimed the row and is streaming its content
    READY = "ready"
    DELETING = "deleting"


class UsageKind(StrEnum):
    UPLOAD = "upload"
    DOWNLOAD = "download"
    DELETE = "delete"
    LOGIN = "login"
    SIGNUP = "signup"


class StatsDimension(StrEnum):
    """The dimensions of the file stats rollup."""

    TOTAL = "total"
    CATEGORY = "category"
    LANGUAGE = "language"
    CONTENT_TYPE = "content_type"
    AUDIENCE = "audience"
