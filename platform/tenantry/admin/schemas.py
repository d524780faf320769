from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

# At least one non-blank character (msgspec patterns search, they do not anchor); the service
# trims, so "  Skills " is stored as "Skills" and a blank name never reaches the database.
TermName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"\S")]


class TermIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A category or audience to create, or its new name."""

    name: TermName


class TermOut(msgspec.Struct, kw_only=True):
    """A category or an audience: the two share one shape."""

    id: uuid.UUID
    name: str
    created_at: datetime
