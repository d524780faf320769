"""Migrations that hold: they import no application code (a migration is history)."""

from __future__ import annotations

import ast

from tenantry.db.paths import MIGRATIONS_DIR


def test_migrations_import_no_application_code() -> None:
    files = sorted(MIGRATIONS_DIR.rglob("*.py"))
    assert MIGRATIONS_DIR / "env.py" in files
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                assert module.split(".")[0] != "tenantry", (path.name, module)
