"""`tenantry tenants import`: thousands of tenants at once, owners invited, reruns resume."""

from __future__ import annotations

import json
import time

import asyncpg
import pytest

from tenantry.commands import IMPORT_BATCH, TenantLinesError, import_tenants, parse_tenant_lines
from tenantry.config import Settings


def _line(n: int, **extra: object) -> bytes:
    body = {"slug": f"bulk-{n:05d}", "name": f"Bulk {n}", "admin": {"email": f"o{n}@bulk.example"}}
    return json.dumps({**body, **extra}).encode()


def test_every_bad_line_is_named_before_anything_is_written() -> None:
    lines = [
        _line(1),
        b"not json",
        _line(2, plan="Not A Plan"),
        b"",
        _line(1),
        _line(3, admin={"email": "o3@bulk.example", "password": "short"}),
    ]
    with pytest.raises(TenantLinesError) as caught:
        parse_tenant_lines(lines)
    heading, *problems = str(caught.value).splitlines()
    assert heading == "3 lines are not tenants:"
    assert [problem.split(":")[0].strip() for problem in problems] == ["line 2", "line 3", "line 5"]
    assert "again (line 1)" in problems[2]


async def test_thousands_of_invited_tenants_import_and_a_rerun_skips_them(
    settings: Settings, clean_database: None, platform_connection: asyncpg.Connection
) -> None:
    count = 2 * IMPORT_BATCH + 17
    tenants = parse_tenant_lines([_line(n) for n in range(count)])
    out: list[dict[str, object]] = []
    started = time.perf_counter()
    created, existing = await import_tenants(
        settings, tenants, lambda line: out.append(json.loads(line))
    )
    elapsed = time.perf_counter() - started
    print(f"imported {count} tenants in {elapsed:.1f} s ({elapsed / count * 1000:.1f} ms each)")
    assert (created, existing) == (count, 0)
    assert [entry["outcome"] for entry in out] == ["created"] * count
    invitation = out[0]["owner_invitation"]
    assert isinstance(invitation, dict) and invitation["mailed"] is False and invitation["token"]
    assert await platform_connection.fetchval("SELECT count(*) FROM tenants") == count
    assert (
        await platform_connection.fetchval(
            "SELECT count(*) FROM users WHERE role = 'owner' AND password_hash = ''"
        )
        == count
    )

    again = parse_tenant_lines([_line(n) for n in range(count + 3)])
    out.clear()
    assert await import_tenants(settings, again, lambda line: out.append(json.loads(line))) == (
        3,
        count,
    )
    assert [entry["slug"] for entry in out if entry["outcome"] == "created"] == [
        f"bulk-{n:05d}" for n in range(count, count + 3)
    ]
