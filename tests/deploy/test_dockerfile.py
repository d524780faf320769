"""The Dockerfile, parsed (no Docker engine here to build it): what it copies exists and reaches
the build context, and the runtime stage is the non-root, read-only-friendly server image."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser

from tests.deploy.conftest import REPO, image_environment, known_env_names

Instruction = dict[str, Any]


def _stages() -> list[list[Instruction]]:
    """The instructions of each build stage, in order (each starts with its FROM)."""
    stages: list[list[Instruction]] = []
    for instruction in DockerfileParser(path=str(REPO / "Dockerfile")).structure:
        if instruction["instruction"] == "FROM":
            stages.append([])
        if stages and instruction["instruction"] != "COMMENT":
            stages[-1].append(instruction)
    return stages


def _runtime() -> list[Instruction]:
    return _stages()[-1]


def _values(stage: list[Instruction], name: str) -> list[str]:
    return [i["value"] for i in stage if i["instruction"] == name]


def _context_sources() -> list[str]:
    """COPY/ADD sources taken from the build context (not from another stage or image)."""
    sources = []
    for stage in _stages():
        for instruction in stage:
            if instruction["instruction"] not in {"COPY", "ADD"}:
                continue
            words = shlex.split(instruction["value"])
            if any(word.startswith("--from=") for word in words):
                continue
            paths = [word for word in words if not word.startswith("--")]
            sources.extend(paths[:-1])  # the last one is the destination
    return sources


def _dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether `.dockerignore` keeps `path` (or a directory above it) out of the context."""
    parts = Path(path).parts
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    for pattern in patterns:
        tail = pattern.removeprefix("**/")
        for candidate in candidates:
            if fnmatch.fnmatchcase(candidate, pattern) or (
                tail != pattern and fnmatch.fnmatchcase(Path(candidate).name, tail)
            ):
                return True
    return False


def test_dockerignore_matcher_understands_the_patterns_used() -> None:
    patterns = _dockerignore_patterns()
    # Exceptions (`!pattern`) would need Docker's full rules; the matcher here has none.
    assert not [pattern for pattern in patterns if pattern.startswith("!")]
    assert _ignored(".venv/bin/python", patterns)
    assert _ignored("platform/tenantry/__pycache__/app.cpython-311.pyc", patterns)
    assert _ignored(".env", patterns)
    assert not _ignored("platform/tenantry/app.py", patterns)


@pytest.mark.parametrize("source", _context_sources())
def test_every_copied_path_exists_and_reaches_the_context(source: str) -> None:
    assert (REPO / source).exists(), f"COPY {source}: no such path in the repository"
    assert not _ignored(source, _dockerignore_patterns()), f"COPY {source}: .dockerignore drops it"


def test_the_wheel_build_inputs_are_all_copied() -> None:
    # hatchling needs the readme pyproject names and the migrations it force-includes.
    sources = set(_context_sources())
    assert {"pyproject.toml", "uv.lock", "README.md", "platform", "migrations"} <= sources


def test_builder_installs_the_locked_production_environment() -> None:
    builder = _stages()[0]
    image = next(
        word.removeprefix("--from=")
        for value in _values(builder, "COPY")
        for word in value.split()
        if word.startswith("--from=ghcr.io/astral-sh/uv")
    )
    assert re.fullmatch(r"ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+", image), f"uv not pinned: {image}"
    syncs = [value for value in _values(builder, "RUN") if "uv sync" in value]
    # First the dependencies alone (a cached layer), then the project as a wheel.
    assert len(syncs) == 2
    assert all("--locked" in sync and "--no-dev" in sync for sync in syncs)
    assert "--no-install-project" in syncs[0]
    assert "--no-editable" in syncs[1]


def test_runtime_stage_is_slim_and_non_root() -> None:
    runtime = _runtime()
    assert runtime[0]["value"].split()[0] == "python:3.11-slim"
    users = _values(runtime, "USER")
    assert users, "the runtime stage sets no USER: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert user.isdigit(), "a numeric uid lets Kubernetes check runAsNonRoot"


def test_entrypoint_is_the_cli_serving_by_default() -> None:
    runtime = _runtime()
    assert json.loads(_values(runtime, "ENTRYPOINT")[-1]) == ["tenantry"]
    assert json.loads(_values(runtime, "CMD")[-1]) == ["serve"]
    assert _values(runtime, "EXPOSE") == ["8000"]


def test_healthcheck_asks_liveness_with_python() -> None:
    healthchecks = _values(_runtime(), "HEALTHCHECK")
    assert healthchecks, "no HEALTHCHECK"
    assert "/health/live" in healthchecks[-1]
    assert 'CMD ["python"' in healthchecks[-1]  # slim has no curl


def test_environment_is_production_writing_only_to_the_data_volume() -> None:
    env = image_environment()
    assert env["TENANTRY_ENV"] == "production"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["TMPDIR"] == "/tmp"
    volumes = json.loads(_values(_runtime(), "VOLUME")[-1])
    assert env["TENANTRY_DATA_DIR"] in volumes
    unknown = {name for name in env if name.startswith("TENANTRY_")} - known_env_names()
    assert not unknown, f"not settings: {unknown}"
