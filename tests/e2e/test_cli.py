"""The admin commands as a user runs them: against the embedded Postgres of a data dir that
`tenantry dev` made, without knowing its URL; and one line, never a traceback, without one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenantry.db.embedded import start_embedded_postgres
from tests.e2e.dev_server import free_port, postmaster_running, run_tenantry, user_env


def test_no_database_is_one_line(tmp_path: Path) -> None:
    result = run_tenantry("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == (
        "Error: no database: set DATABASE_URL, or run `tenantry dev` first "
        f"(data dir {tmp_path.resolve() / '.tenantry'})\n"
    )
    assert list(tmp_path.iterdir()) == []  # nothing made on the way (no secrets, no data dir)


@pytest.mark.parametrize(
    "command",
    [("db", "bootstrap"), ("db", "upgrade"), ("tenants", "apply", "tenants"), ("usage", "rollup")],
    ids=" ".join,
)
def test_a_database_that_refuses_is_one_line(project_root: Path, command: tuple[str, ...]) -> None:
    port = free_port()  # nothing listens there
    env = user_env(DATABASE_URL=f"postgresql://postgres:pw@127.0.0.1:{port}/tenantry")
    result = run_tenantry(*command, cwd=project_root, env=env)
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: cannot connect to the database: [Errno 111] Connect call failed "
        f"('127.0.0.1', {port})\n"
    )


def test_admin_commands_find_the_embedded_postgres_of_the_data_dir(
    tmp_path: Path, project_root: Path
) -> None:
    data_dir = tmp_path / "data"
    # The Postgres `tenantry dev` leaves under its data dir, running as while dev runs.
    server, _ = start_embedded_postgres(data_dir / "postgres")
    try:

        def tenantry(*args: str) -> str:
            result = run_tenantry(*args, "--data-dir", str(data_dir), cwd=project_root)
            assert result.returncode == 0, result.stderr
            return result.stdout

        assert tenantry("db", "bootstrap") == "roles ready\n"
        tenantry("db", "upgrade")
        assert tenantry("tenants", "apply", "tenants") == "acme: created\npack: created\n"
        assert tenantry("tenants", "apply", "tenants") == "acme: unchanged\npack: unchanged\n"
        assert postmaster_running(data_dir), "a command stopped the server it attached to"
    finally:
        server.cleanup()
    assert not postmaster_running(data_dir)
    # Not running: a command starts it for itself, and stops it again.
    result = run_tenantry("usage", "rollup", "--data-dir", str(data_dir), cwd=project_root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("rolled up ")
    assert not postmaster_running(data_dir)
