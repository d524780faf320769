"""The dependency rule (pyproject's [tool.importlinter]) holds, and a forbidden import breaks it.

lint-imports only reads source files, so this needs no I/O beyond the temporary copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(package_root: Path, config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(package_root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(config), "--no-cache"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_the_tree_keeps_the_contracts() -> None:
    result = _lint(ROOT / "platform", ROOT / "pyproject.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("lib/errors.py", "tenantry.config"),  # lib imports no settings object
        ("db/models.py", "tenantry.tenancy.cache"),  # nothing imports upwards
        ("files/services.py", "tenantry.platform.services"),  # domains are independent
        ("storage/keys.py", "tenantry.auth.tokens"),  # storage and auth are siblings
    ],
)
def test_a_forbidden_import_breaks_them(tmp_path: Path, module: str, forbidden: str) -> None:
    shutil.copytree(ROOT / "platform" / "tenantry", tmp_path / "src" / "tenantry")
    target = tmp_path / "src" / "tenantry" / module
    target.write_text(target.read_text() + f"\nimport {forbidden}  # noqa\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    result = _lint(tmp_path / "src", tmp_path / "pyproject.toml")
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert forbidden in result.stdout
