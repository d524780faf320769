"""What the deployment tests share: the repository's files, the names of real settings, the
image's own environment, and the two real tools they check with (helm, docker-compose).

A missing tool fails the test that needs it, naming how to get it: these tests never skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import msgspec
import pytest
from dockerfile_parse import DockerfileParser

from tenantry.config import S3Settings, Settings
from tenantry.manifests import load_manifests

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "tenantry"
VALUES_DIR = Path(__file__).parent / "values"
VALUE_SETS = sorted(VALUES_DIR.glob("*.yaml"))
TOOLS_BIN = (
    Path(os.environ.get("TENANTRY_TOOLS_DIR", Path.home() / ".cache" / "tenantry-tools")) / "bin"
)


def known_env_names() -> frozenset[str]:
    """Every environment name the application reads: its settings, S3's, the admin URL, and the
    admin passwords the tenant manifests name (`password_env`)."""
    settings = {
        f"TENANTRY_{field.name.upper()}"
        for field in msgspec.structs.fields(Settings)
        if field.name not in {"database_url", "s3"}
    }
    s3 = {f"TENANTRY_S3_{field.name.upper()}" for field in msgspec.structs.fields(S3Settings)}
    manifests = {manifest.admin.password_env for manifest in load_manifests(REPO / "tenants")}
    return frozenset(settings | s3 | manifests | {"DATABASE_URL"})


def image_environment() -> dict[str, str]:
    """The ENV of the Dockerfile's final stage: what every container of the image starts with."""
    parser = DockerfileParser(path=str(REPO / "Dockerfile"))
    return dict(parser.envs)


def _find_or_install_helm() -> Path:
    found = shutil.which("helm")
    if found:
        return Path(found)
    if not (TOOLS_BIN / "helm").is_file():
        result = subprocess.run(
            ["bash", str(REPO / ".ci" / "install-helm")], capture_output=True, text=True
        )
        if result.returncode != 0:
            pytest.fail(
                "helm is not on PATH and .ci/install-helm could not install it:\n" + result.stderr
            )
    return TOOLS_BIN / "helm"


@pytest.fixture(scope="session")
def helm() -> Path:
    path = _find_or_install_helm()
    version = subprocess.run([path, "version", "--short"], capture_output=True, text=True)
    assert version.stdout.startswith("v3."), f"{path} is not helm 3: {version.stdout}"
    return path


@pytest.fixture(scope="session")
def docker_compose() -> Path:
    found = shutil.which("docker-compose")
    if not found:
        pytest.fail(
            "docker-compose is missing: `apt-get install docker-compose` (.ci/run does it); "
            "its `config` validates the compose file without a Docker engine"
        )
    return Path(found)
