from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

# At least one non-blank character (the services trim it).
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S")]
Description = Annotated[str, msgspec.Meta(max_length=5000)]
Language = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z]{2}$")]  # ISO 639-1, any case
Filename = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
ContentType = Annotated[str, msgspec.Meta(max_length=100)]
Audiences = Annotated[list[uuid.UUID], msgspec.Meta(max_length=50)]
FileSort = Literal["-created_at", "created_at", "title", "-title", "size", "-size"]


class FileMetadata(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What an uploader says about a file; the server measures the rest."""

    title: Title
    description: Description = ""
    category: uuid.UUID | None = None
    language: Language | None = None
    audiences: Audiences = msgspec.field(default_factory=list)


class PendingFileCreate(FileMetadata, kw_only=True, forbid_unknown_fields=True):
    """Step one of the raw two-step upload: the metadata and the original filename."""

    filename: Filename
    content_type: ContentType | None = None


# S3's limits, which every store keeps: at most 10 000 parts, numbered from 1.
MAX_PARTS = 10_000
# Sizes are exact byte counts the database stores as bigint.
Size = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
PartNumber = Annotated[int, msgspec.Meta(ge=1, le=MAX_PARTS)]
# A store's ETag for a part, quotes optional: letters, digits and the few marks stores use.
ETag = Annotated[str, msgspec.Meta(pattern=r'^"?[0-9A-Za-z+/=_-]{1,128}"?$')]


class DirectUploadCreate(FileMetadata, kw_only=True, forbid_unknown_fields=True):
    """A direct upload: the file's metadata, its name, declared type and exact size."""

    filename: Filename
    content_type: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    size: Size


class PartUrl(msgspec.Struct, kw_only=True):
    """PUT exactly `size` bytes (the part's slice of the file) to `url`; keep the answer's
    `ETag` for completing."""

    number: int
    url: str
    size: int


class DirectUploadOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    file_id: uuid.UUID
    part_size: int
    parts: list[PartUrl]
    expires_at: datetime


class PartDone(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    number: PartNumber
    etag: ETag


class DirectUploadComplete(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Every part, in order, with the ETag the store answered for it."""

    parts: Annotated[list[PartDone], msgspec.Meta(min_length=1, max_length=MAX_PARTS)]


class FilePatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Metadata changes; `null` clears category or language, absent fields stay as they are."""

    title: Title | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    category: uuid.UUID | msgspec.UnsetType | None = msgspec.UNSET
    language: Language | msgspec.UnsetType | None = msgspec.UNSET
    audiences: Audiences | msgspec.UnsetType = msgspec.UNSET


class FileOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    title: str
    description: str
    category: uuid.UUID | None
    language: str | None
    audiences: list[uuid.UUID]
    content_type: str | None
    size: int
    sha256: str | None
    filename: str
    status: str
    uploaded_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class PendingFileOut(msgspec.Struct, kw_only=True):
    file: FileOut
    upload_url: str


class DownloadLink(msgspec.Struct):
    url: str
    expires_at: datetime


class GroupStat(msgspec.Struct):
    """One group of a stats breakdown; `key` is null for files without that attribute."""

    key: str | None
    name: str | None
    files: int
    bytes: int


class FileStats(msgspec.Struct):
    files: int
    bytes: int
    by_category: list[GroupStat]
    by_language: list[GroupStat]
    by_audience: list[GroupStat]
    by_content_type: list[GroupStat]


def file_out(row: Mapping[str, Any]) -> FileOut:
    """The wire shape of a row of `repository.FILE_COLUMNS` (either driver's row)."""
    return FileOut(
        id=row["id"],
        title=row["title"],
        description=row["description"],
        category=row["category_id"],
        language=row["language"],
        audiences=list(row["audiences"]),
        content_type=row["content_type"],
        size=row["size"],
        sha256=row["sha256"],
        filename=row["original_filename"],
        status=row["status"],
        uploaded_by=row["uploaded_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
