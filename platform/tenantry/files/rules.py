"""Rules every path that writes file metadata applies (uploads and edits alike)."""

from __future__ import annotations

import uuid

from tenantry.files.languages import ISO_639_1
from tenantry.files.repository import FileRepository
from tenantry.lib.errors import DomainError, ErrorCode


def normalize_language(language: str | None) -> str | None:
    if language is None:
        return None
    code = language.lower()
    if code not in ISO_639_1:
        raise DomainError(
            ErrorCode.INVALID_LANGUAGE,
            f"'{language}' is not an ISO 639-1 language code",
            field="language",
        )
    return code


def clean_filename(filename: str) -> str:
    """The original name for Content-Disposition: no directories, no control characters."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:255] or "upload"


async def check_category(files: FileRepository, category: uuid.UUID | None) -> None:
    if await files.missing_category(category):
        raise DomainError(ErrorCode.UNKNOWN_CATEGORY, f"no category {category}", field="category")


async def check_audiences(files: FileRepository, audiences: list[uuid.UUID]) -> list[uuid.UUID]:
    """The audiences without duplicates, in order; an unknown one is 422."""
    wanted = list(dict.fromkeys(audiences))
    missing = await files.missing_audiences(wanted)
    if missing:
        raise DomainError(
            ErrorCode.UNKNOWN_AUDIENCE,
            f"no audience {', '.join(map(str, missing))}",
            field="audiences",
        )
    return wanted
