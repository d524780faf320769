"""`tenantry tenants apply`: create or update from TOML, idempotently."""

from __future__ import annotations

import shutil
from pathlib import Path

import asyncpg

from tenantry.commands import apply_manifests
from tenantry.config import Settings
from tenantry.manifests import load_manifests


async def test_demo_manifests_apply_idempotently(
    settings: Settings,
    project_root: Path,
    platform_connection: asyncpg.Connection,
    clean_database: None,
) -> None:
    manifests = load_manifests(project_root / "tenants")
    assert {m.slug for m in manifests} == {"pack", "acme"}

    assert await apply_manifests(settings, manifests) == {"acme": "created", "pack": "created"}
    snapshot = await platform_connection.fetch("SELECT * FROM tenants ORDER BY slug")
    assert await apply_manifests(settings, manifests) == {"acme": "unchanged", "pack": "unchanged"}
    # "Unchanged" means untouched: not even updated_at moved.
    assert await platform_connection.fetch("SELECT * FROM tenants ORDER BY slug") == snapshot

    owners = await platform_connection.fetch(
        "SELECT t.slug, u.email, u.role FROM users u JOIN tenants t ON t.id = u.tenant_id ORDER BY t.slug"
    )
    assert [tuple(row) for row in owners] == [
        ("acme", "admin@acme.example", "owner"),
        ("pack", "admin@pack.example", "owner"),
    ]
    domains = await platform_connection.fetch("SELECT domain FROM tenant_domains ORDER BY domain")
    assert [row["domain"] for row in domains] == [
        "learn.acme.example",
        "media.pack-training.example",
    ]


async def test_changed_manifest_updates_the_tenant(
    settings: Settings,
    project_root: Path,
    tmp_path: Path,
    platform_connection: asyncpg.Connection,
    clean_database: None,
) -> None:
    shutil.copy(project_root / "tenants" / "acme.toml", tmp_path / "acme.toml")
    await apply_manifests(settings, load_manifests(tmp_path))
    text = (tmp_path / "acme.toml").read_text()
    text = text.replace('name = "Acme Learning"', 'name = "Acme Academy"')
    text = text.replace('domains = ["learn.acme.example"]', 'domains = ["academy.acme.example"]')
    (tmp_path / "acme.toml").write_text(text)

    assert await apply_manifests(settings, load_manifests(tmp_path)) == {"acme": "updated"}
    assert (
        await platform_connection.fetchval("SELECT name FROM tenants WHERE slug = 'acme'")
        == "Acme Academy"
    )
    domains = await platform_connection.fetch("SELECT domain FROM tenant_domains")
    assert [row["domain"] for row in domains] == ["academy.acme.example"]
    assert await apply_manifests(settings, load_manifests(tmp_path)) == {"acme": "unchanged"}
