"""Wire types shared by several domains."""

from __future__ import annotations

import re
from typing import Annotated, Generic, TypeVar

import msgspec
from litestar.params import QueryParameter

from tenantry.lib.errors import DomainError, ErrorCode

T = TypeVar("T")

Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]
# Length limits live in `validate_password` (it reports bytes, which bcrypt cares about).
Password = Annotated[str, msgspec.Meta(max_length=1024)]


def normalize_email(email: str) -> str:
    return email.strip().lower()


class Page(msgspec.Struct, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


# Query parameters: Litestar validates these bounds (msgspec.Meta is not applied to queries).
Limit = Annotated[int, QueryParameter(ge=1, le=100, description="page size (at most 100)")]
# Bounded so that no offset reaches Postgres out of its integer range (that was a 500).
MAX_OFFSET = 2**31 - 1
Offset = Annotated[
    int, QueryParameter(ge=0, le=MAX_OFFSET, description=f"items to skip (at most {MAX_OFFSET})")
]


_FIELD_PATH = re.compile(r"at `\$\.?([^`]*)`")
_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]*)`")


def convert_or_invalid(data: object, type_: type[T], *, prefix: str = "") -> T:
    """msgspec.convert, with a failure as 422 naming the field (`$.title` -> `title`; an
    unknown field by its own name)."""
    try:
        return msgspec.convert(data, type_, strict=False)
    except msgspec.ValidationError as exc:
        match = _FIELD_PATH.search(str(exc))
        unknown = _UNKNOWN_FIELD.search(str(exc))
        path = match.group(1) if match else ""
        parts = (prefix, path, unknown.group(1) if unknown else "")
        field = ".".join(part for part in parts if part) or "body"
        message = _FIELD_PATH.sub("", str(exc)).rstrip(" -")
        raise DomainError(ErrorCode.INVALID_FIELD, f"{field}: {message}", field=field) from exc


def decode_json_or_invalid(body: bytes, type_: type[T]) -> T:
    """A JSON body as `type_`; malformed JSON is 400, a wrong field 422 naming it."""
    try:
        raw = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise DomainError(ErrorCode.INVALID_JSON, f"malformed JSON: {exc}", field="body") from exc
    return convert_or_invalid(raw, type_)
