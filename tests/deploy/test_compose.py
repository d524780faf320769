"""docker-compose.yml, validated and resolved by a real Compose implementation (`docker-compose
config` needs no engine) with a .env made from .env.example, then checked against the settings
the application reads."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tenantry.config import PRODUCTION_REQUIRED, ConfigError, Settings, load_settings
from tests.deploy.conftest import REPO, image_environment, known_env_names

TENANTRY_SERVICES = ("migrate", "api")
STRONG = {
    "POSTGRES_PASSWORD": "pg-admin-strong-password",
    "DB_OWNER_PASSWORD": "owner-strong-password",
    "DB_APP_PASSWORD": "app-strong-password",
    "DB_PLATFORM_PASSWORD": "platform-strong-password",
    "JWT_SECRET": "j" * 40,
    "MINIO_ROOT_PASSWORD": "minio-strong-password",
    "PACK_ADMIN_PASSWORD": "pack-strong-password",
    "ACME_ADMIN_PASSWORD": "acme-strong-password",
}


def _env_example() -> dict[str, str]:
    values = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def _config(
    docker_compose: Path, tmp_path: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` in a copy of the project, with `env` as its .env."""
    shutil.copy(REPO / "docker-compose.yml", tmp_path / "docker-compose.yml")
    (tmp_path / ".env").write_text("".join(f"{name}={value}\n" for name, value in env.items()))
    return subprocess.run(
        [docker_compose, "--project-directory", tmp_path, "config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )


def _resolved(docker_compose: Path, tmp_path: Path, env: dict[str, str]) -> dict[str, Any]:
    result = _config(docker_compose, tmp_path, env)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


@pytest.fixture
def example(docker_compose: Path, tmp_path: Path) -> dict[str, Any]:
    """The compose file resolved with .env.example as it stands."""
    return _resolved(docker_compose, tmp_path, _env_example())


def _environment(config: dict[str, Any], service: str) -> dict[str, str]:
    return {name: str(value) for name, value in config["services"][service]["environment"].items()}


def _settings(config: dict[str, Any], service: str) -> Settings:
    """The settings the service's container would start with (the image's ENV under compose's)."""
    return load_settings(
        {**image_environment(), **_environment(config, service)}, dotenv=Path("/nonexistent")
    )


@pytest.mark.parametrize("service", TENANTRY_SERVICES)
def test_services_provide_every_production_requirement(
    example: dict[str, Any], service: str
) -> None:
    environment = _environment(example, service)
    missing = [name for name in PRODUCTION_REQUIRED if not environment.get(name)]
    assert not missing, f"{service} lacks {missing}"


@pytest.mark.parametrize("service", TENANTRY_SERVICES)
def test_services_set_only_real_settings(example: dict[str, Any], service: str) -> None:
    unknown = set(_environment(example, service)) - known_env_names()
    assert not unknown, f"{service} sets names the application never reads: {unknown}"


@pytest.mark.parametrize("service", TENANTRY_SERVICES)
def test_placeholders_are_refused_by_production(example: dict[str, Any], service: str) -> None:
    with pytest.raises(ConfigError) as refused:
        _settings(example, service)
    for name in ("TENANTRY_JWT_SECRET", "TENANTRY_DB_OWNER_PASSWORD", "TENANTRY_DB_APP_PASSWORD"):
        assert name in str(refused.value)


@pytest.mark.parametrize("service", TENANTRY_SERVICES)
def test_changed_secrets_make_a_complete_production_configuration(
    docker_compose: Path, tmp_path: Path, service: str
) -> None:
    config = _resolved(docker_compose, tmp_path, {**_env_example(), **STRONG})
    settings = _settings(config, service)
    assert settings.is_production
    assert settings.database_url == (
        "postgresql://postgres:pg-admin-strong-password@postgres:5432/tenantry"
    )
    assert settings.base_domain == "tenantry.localhost"
    assert settings.s3 is not None
    assert settings.s3.endpoint_url == "http://minio:9000"
    assert settings.s3.secret_access_key == "minio-strong-password"


def test_a_missing_secret_stops_compose_with_its_message(
    docker_compose: Path, tmp_path: Path
) -> None:
    env = _env_example()
    del env["JWT_SECRET"]
    result = _config(docker_compose, tmp_path, env)
    assert result.returncode != 0
    assert "set JWT_SECRET in .env" in result.stderr


def test_env_example_documents_exactly_what_compose_reads() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    read = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    assert read == set(_env_example()), "compose variables and .env.example differ"
    # `tenantry dev` reads .env too: no name in it may be one of its settings.
    settings = {name for name in read if name.startswith("TENANTRY_") or name == "DATABASE_URL"}
    assert not settings, f".env would change tenantry dev's settings: {settings}"


def _conditions(config: dict[str, Any], service: str) -> dict[str, str]:
    return {
        name: dependency["condition"]
        for name, dependency in config["services"][service]["depends_on"].items()
    }


def test_start_order_waits_for_health_bucket_and_migrations(example: dict[str, Any]) -> None:
    services = example["services"]
    assert _conditions(example, "api") == {
        "postgres": "service_healthy",
        "minio-bucket": "service_completed_successfully",
        "migrate": "service_completed_successfully",
    }
    assert _conditions(example, "migrate")["postgres"] == "service_healthy"
    assert _conditions(example, "minio-bucket") == {"minio": "service_healthy"}
    for service in ("postgres", "minio", "api"):
        assert services[service]["healthcheck"]["test"], f"{service} has no healthcheck"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "/health/live" in " ".join(services["api"]["healthcheck"]["test"])


def test_migrate_prepares_the_database_and_tenants(example: dict[str, Any]) -> None:
    migrate = example["services"]["migrate"]
    script = " ".join(migrate["entrypoint"] + migrate["command"])
    steps = ["tenantry db bootstrap", "tenantry db upgrade", "tenantry tenants apply tenants/"]
    assert all(step in script for step in steps)
    assert [script.index(step) for step in steps] == sorted(script.index(step) for step in steps)


def test_the_bucket_made_is_the_bucket_used(example: dict[str, Any]) -> None:
    bucket = example["services"]["minio-bucket"]
    assert bucket["entrypoint"][-1] == "local/" + _environment(example, "api")["TENANTRY_S3_BUCKET"]


@pytest.mark.parametrize("service", TENANTRY_SERVICES)
def test_tenantry_services_run_on_a_read_only_root(example: dict[str, Any], service: str) -> None:
    spec = example["services"][service]
    assert spec["read_only"] is True
    assert "/tmp" in spec["tmpfs"]
    assert ("tenantry-data", image_environment()["TENANTRY_DATA_DIR"]) in _mounts(spec)


def _mounts(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each volume, in Compose v1's short form or v2's long one."""
    return [
        (volume["source"], volume["target"])
        if isinstance(volume, dict)
        else tuple(volume.split(":")[:2])
        for volume in spec["volumes"]
    ]


def test_data_lives_in_named_volumes(example: dict[str, Any]) -> None:
    services = example["services"]
    assert ("postgres-data", "/var/lib/postgresql/data") in _mounts(services["postgres"])
    assert ("minio-data", "/data") in _mounts(services["minio"])
    assert {"postgres-data", "minio-data", "tenantry-data"} <= set(example["volumes"])
