"""yamllint over the deployment YAML, with the repository's .yamllint.yaml (Helm templates are
left to it to ignore: they are YAML only once rendered, and test_chart.py lints the output)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.deploy.conftest import CHART, REPO, VALUE_SETS

LINTED = [
    REPO / ".yamllint.yaml",
    REPO / "docker-compose.yml",
    CHART / "Chart.yaml",
    CHART / "values.yaml",
    *VALUE_SETS,
]


def _yamllint(*paths: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "yamllint", "--strict", "-c", REPO / ".yamllint.yaml", *paths],
        cwd=REPO,
        capture_output=True,
        text=True,
    )


def test_deployment_yaml_is_lint_clean() -> None:
    result = _yamllint(*LINTED)
    assert result.returncode == 0, result.stdout


def test_the_whole_repository_is_lint_clean_with_templates_ignored() -> None:
    # Relative: the config's ignore patterns are matched against relative paths.
    result = _yamllint(".")
    assert result.returncode == 0, result.stdout


def test_lint_catches_a_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("services:\n  api:\n    image: a\n    image: b\n")
    result = _yamllint(bad)
    assert result.returncode != 0
    assert "duplication of key" in result.stdout
