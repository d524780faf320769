"""The README's walkthrough, run as a reader runs it: its ```bash blocks, in order, as one
`set -euo pipefail` script, with nothing but bash, curl and jq, against a fresh `tenantry dev`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.dev_server import DevServer

SECTION = "## Walkthrough (curl)"
FENCE = re.compile(r"^```(\w*)$", re.MULTILINE)
BASH_BLOCK = re.compile(r"^```bash\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def walkthrough_section(readme: str) -> str:
    """From the walkthrough's heading up to the next section's."""
    return readme.split(SECTION, 1)[1].split("\n## ", 1)[0]


def walkthrough_script(readme: str) -> str:
    return "set -euo pipefail\n" + "\n".join(BASH_BLOCK.findall(walkthrough_section(readme)))


def test_every_block_of_the_walkthrough_is_bash(project_root: Path) -> None:
    section = walkthrough_section((project_root / "README.md").read_text())
    fences = FENCE.findall(section)
    # Opening fences name the language, closing ones nothing: a ```sh block would be skipped.
    assert set(fences[0::2]) == {"bash"}, fences
    assert set(fences[1::2]) == {""}, fences
    assert len(BASH_BLOCK.findall(section)) == len(fences) // 2 >= 4


@pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("jq")), reason="the walkthrough needs curl and jq"
)
def test_the_readme_walkthrough_runs_as_written(project_root: Path, tmp_path: Path) -> None:
    script = walkthrough_script((project_root / "README.md").read_text())
    data_dir, out = tmp_path / "data", tmp_path / "out"
    out.mkdir()
    server = DevServer(data_dir, project_root)
    try:
        env = {
            **os.environ,
            "PORT": str(server.port),
            "DATA": str(data_dir),
            "OUT": str(out),
            # Loopback only, whatever proxy the environment names.
            "NO_PROXY": "*",
        }
        result = subprocess.run(
            ["bash", "-c", script],
            cwd=project_root,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        server.stop()
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    lines = result.stdout.splitlines()
    # The upload came back, byte for byte, through the link the API returned.
    guide = (project_root / "examples" / "guide.pdf").read_bytes()
    assert (out / "guide.pdf").read_bytes() == guide
    assert f"downloaded: {out}/guide.pdf, the bytes uploaded" in lines
    # The steps expected to fail did, with the status and code the comments promise.
    assert any('"code":"tenant_mismatch"' in line and line.endswith("-> 403") for line in lines)
    assert any('"code":"tenant_suspended"' in line and line.endswith("-> 403") for line in lines)
    assert any(line.endswith("-> 401") for line in lines)  # a disabled user's token
    # Suspended, refused, resumed, served; the ETag answered 304.
    steps = ["suspended", "active", "Globex"]
    assert [line for line in lines if line in steps] == steps
    assert "304" in lines
    assert (out / "logo.svg").read_bytes().startswith(b"<svg")
    assert (out / "usage.csv").read_text().startswith("period,role,")
    assert "<svg" in (out / "report.html").read_text()
