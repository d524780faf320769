"""Wire types shared by several domains."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

import msgspec

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


Limit = Annotated[int, msgspec.Meta(ge=1, le=100)]
Offset = Annotated[int, msgspec.Meta(ge=0)]
