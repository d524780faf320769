"""Enumerated columns store their members' values (what the CHECK constraints allow), never
their names, and read back as members."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Enum
from sqlalchemy.dialects import postgresql

from tenantry.db.enums import Role
from tenantry.db.models import Base

DIALECT = postgresql.dialect()
ENUM_COLUMNS = [
    column
    for table in Base.metadata.sorted_tables
    for column in table.columns
    if isinstance(column.type, Enum)
]


def test_the_enumerated_columns() -> None:
    assert {f"{c.table.name}.{c.name}" for c in ENUM_COLUMNS} == {
        "tenants.status",
        "users.role",
        "files.status",
        "usage_events.kind",
        "usage_events.user_role",
        "file_stats.dimension",
        "usage_daily.dimension",
        "user_tokens.purpose",
        "api_keys.role",
        "audit_log.actor_type",
        "upload_sessions.state",
        "upload_sessions.protocol",
    }


@pytest.mark.parametrize("column", ENUM_COLUMNS, ids=lambda c: f"{c.table.name}.{c.name}")
def test_values_are_stored_and_read_back_as_members(column: Column[object]) -> None:
    enum_type = column.type
    assert isinstance(enum_type, Enum)
    assert enum_type.enum_class is not None
    bind = enum_type.bind_processor(DIALECT)
    result = enum_type.result_processor(DIALECT, None)
    assert bind is not None
    assert result is not None
    assert enum_type.length == 16
    assert not enum_type.native_enum
    for member in enum_type.enum_class:
        assert member.name != member.value  # so that storing a name would show
        assert bind(member) == member.value
        assert bind(member.value) == member.value  # plain strings still work
        read = result(member.value)
        assert read is member


def test_roles_rank_from_owner_down() -> None:
    ranks = [role.rank for role in Role]
    assert [role.value for role in Role] == ["owner", "admin", "editor", "viewer"]
    assert ranks == sorted(ranks, reverse=True)
    assert len(set(ranks)) == len(ranks)
    assert Role.EDITOR.rank > Role.VIEWER.rank
    assert Role("admin") == "admin"
