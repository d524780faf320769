"""Wire types shared by several domains."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

import msgspec
from litestar.params import QueryParameter

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
Offset = Annotated[int, QueryParameter(ge=0, description="items to skip")]
