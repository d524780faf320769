"""The command line's surface: help and version on every command, a start without heavy imports."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from tenantry import __version__
from tenantry.__main__ import cli

HEAVY = ("litestar", "sqlalchemy", "asyncpg", "aioboto3", "pygal", "advanced_alchemy")
DATABASE_COMMANDS = [
    ("db", "bootstrap"),
    ("db", "upgrade"),
    ("platform-admin", "create"),
    ("tenants", "apply"),
    ("storage", "reconcile"),
    ("usage", "rollup"),
    ("usage", "rebuild"),
    ("usage", "seed"),
]


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


@pytest.mark.parametrize("command", _commands(cli), ids=" ".join)
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_every_command_has_help(command: tuple[str, ...], flag: str) -> None:
    result = CliRunner().invoke(cli, [*command, flag])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: cli {' '.join(command)}".rstrip())


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"tenantry, version {__version__}\n"


@pytest.mark.parametrize("command", DATABASE_COMMANDS, ids=" ".join)
def test_database_commands_take_the_data_dir_of_dev(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert "--data-dir DIRECTORY" in result.output


# The heavy libraries still loaded at the end: after the import alone, and after help.
PROBE = """
import sys
from tenantry.__main__ import cli
try:
    cli(sys.argv[1:])
except SystemExit:
    pass
print(" ".join(name for name in {heavy!r} if name in sys.modules))
"""


@pytest.mark.parametrize("args", [[], ["--help"], ["db", "upgrade", "-h"]], ids=" ".join)
def test_the_cli_starts_without_the_heavy_libraries(args: list[str]) -> None:
    probe = PROBE.format(heavy=HEAVY)
    result = subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.splitlines()[-1:] == [""]
