from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from litestar.datastructures import Headers

from tenantry.config import (
    PRODUCTION_REQUIRED,
    ConfigError,
    Settings,
    load_settings,
    with_dev_secrets,
)
from tenantry.db.engines import pooled_role_url, role_url, statement_cache_args
from tenantry.lib.errors import DomainError
from tenantry.lib.http import request_host
from tenantry.platform.services import normalize_domain

STRONG = "s" * 40


def _production(**overrides: str) -> dict[str, str]:
    env = {
        "TENANTRY_ENV": "production",
        "DATABASE_URL": "postgresql://admin:pw@db/tenantry",
        "TENANTRY_JWT_SECRET": STRONG,
        "TENANTRY_DB_OWNER_PASSWORD": "owner-" + STRONG,
        "TENANTRY_DB_APP_PASSWORD": "app-" + STRONG,
        "TENANTRY_DB_PLATFORM_PASSWORD": "platform-" + STRONG,
        "TENANTRY_BASE_DOMAIN": "media.example.com",
    }
    env.update(overrides)
    return {key: value for key, value in env.items() if value != "<unset>"}


def test_production_accepts_strong_settings(tmp_path: Path) -> None:
    settings = load_settings(_production(), dotenv=tmp_path / "none")
    assert settings.is_production
    assert settings.jwt_secret == STRONG


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TENANTRY_JWT_SECRET", "<unset>"),
        ("TENANTRY_JWT_SECRET", "secret"),
        ("TENANTRY_JWT_SECRET", "short-secret"),
        ("TENANTRY_DB_APP_PASSWORD", "<unset>"),
        ("TENANTRY_DB_PLATFORM_PASSWORD", "password"),
        ("DATABASE_URL", "<unset>"),
        ("TENANTRY_BASE_DOMAIN", "<unset>"),
    ],
)
def test_production_refuses_missing_or_default_secrets(
    tmp_path: Path, name: str, value: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_production(**{name: value}), dotenv=tmp_path / "none")
    assert name in str(caught.value)


def test_production_names_every_problem_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"TENANTRY_ENV": "production"}, dotenv=tmp_path / "none")
    heading, *lines = str(caught.value).splitlines()
    assert heading == f"{len(PRODUCTION_REQUIRED)} settings need a change:"
    assert [line.split()[0] for line in lines] == list(PRODUCTION_REQUIRED)


def test_every_invalid_value_is_named_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(
            {"TENANTRY_BCRYPT_ROUNDS": "many", "TENANTRY_SERVER_PORT": "http", "TENANTRY_ENV": "x"},
            dotenv=tmp_path / "none",
        )
    named = {line.split()[2].rstrip(":") for line in str(caught.value).splitlines()[1:]}
    assert named == {"TENANTRY_BCRYPT_ROUNDS", "TENANTRY_SERVER_PORT", "TENANTRY_ENV"}


def test_dotenv_is_read_and_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# comment\nTENANTRY_BASE_DOMAIN=example.test\nexport TENANTRY_BCRYPT_ROUNDS='10'\n"
    )
    settings = load_settings({"TENANTRY_BCRYPT_ROUNDS": "11"}, dotenv=dotenv)
    assert settings.base_domain == "example.test"
    assert settings.bcrypt_rounds == 11


def test_behind_a_pooler_the_pooled_roles_go_there_without_prepared_statements(
    tmp_path: Path,
) -> None:
    direct = load_settings(
        {
            "DATABASE_URL": "postgresql://postgres:@/tenantry?host=/run/pg",
            "TENANTRY_DB_APP_PASSWORD": "app-pw",
        },
        dotenv=tmp_path / "none",
    )
    assert direct.keeps_prepared_statements and statement_cache_args(direct) == {}
    assert pooled_role_url(direct, "app") == role_url(direct, "app")
    pooled = load_settings(
        {
            "DATABASE_URL": "postgresql://postgres:@/tenantry?host=/run/pg",
            "TENANTRY_DB_APP_PASSWORD": "app-pw",
            "TENANTRY_DB_POOLER_URL": "postgresql://pgbouncer:6432",
        },
        dotenv=tmp_path / "none",
    )
    url = pooled_role_url(pooled, "app")
    # The pooler's host and port (not the admin URL's socket), the role's name, password and
    # database; the LISTEN connection's URL stays direct.
    assert (url.host, url.port, url.query) == ("pgbouncer", 6432, {})
    assert (url.username, url.password, url.database) == ("tenantry_app", "app-pw", "tenantry")
    assert role_url(pooled, "app").query == {"host": "/run/pg"}
    assert statement_cache_args(pooled) == {"statement_cache_size": 0}
    # PgBouncer 1.21 and later can keep them (max_prepared_statements): the switch says so.
    keeping = msgspec.structs.replace(pooled, db_prepared_statements=True)
    assert keeping.keeps_prepared_statements and statement_cache_args(keeping) == {}
    assert not load_settings(
        {"TENANTRY_DB_PREPARED_STATEMENTS": "false"}, dotenv=tmp_path / "none"
    ).keeps_prepared_statements


def test_data_dir_from_environment(tmp_path: Path) -> None:
    settings = load_settings({"TENANTRY_DATA_DIR": str(tmp_path)}, dotenv=tmp_path / "none")
    assert settings.data_dir == tmp_path


def test_invalid_value_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"TENANTRY_BCRYPT_ROUNDS": "many"}, dotenv=tmp_path / "none")
    assert "bcrypt_rounds" in str(caught.value)


def test_dev_secrets_are_generated_once_and_kept(tmp_path: Path) -> None:
    first = with_dev_secrets(Settings(data_dir=tmp_path))
    second = with_dev_secrets(Settings(data_dir=tmp_path))
    assert len(first.jwt_secret) >= 32
    assert first.jwt_secret == second.jwt_secret
    assert first.db_app_password == second.db_app_password != first.db_platform_password
    assert (tmp_path / "secrets.json").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("Acme.Localhost:8000", "acme.localhost"),
        ("acme.localhost.", "acme.localhost"),
        ("127.0.0.1:8000", "127.0.0.1"),
        ("[::1]:8000", "[::1]"),
        ("", ""),
    ],
)
def test_request_host(host: str, expected: str) -> None:
    scope = {"type": "http", "headers": [(b"host", host.encode())], "client": ("10.0.0.1", 1)}
    assert request_host(scope, Headers.from_scope(scope), ()) == expected  # type: ignore[arg-type]


def test_forwarded_host_only_from_trusted_proxies() -> None:
    headers = [(b"host", b"internal:8000"), (b"x-forwarded-host", b"acme.localhost")]
    untrusted = {"type": "http", "headers": headers, "client": ("203.0.113.9", 1)}
    trusted = {"type": "http", "headers": headers, "client": ("10.0.0.2", 1)}
    assert request_host(untrusted, Headers.from_scope(untrusted), ("10.0.0.2",)) == "internal"  # type: ignore[arg-type]
    assert request_host(trusted, Headers.from_scope(trusted), ("10.0.0.2",)) == "acme.localhost"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("domain", "ok"),
    [
        ("Learn.Acme.Example.", True),
        ("media.pack-training.example", True),
        ("localhost", False),
        ("acme.localhost", False),
        ("-bad.example", False),
        ("under_score.example", False),
        ("10.0.0.1", False),
        ("nodot", False),
    ],
)
def test_domain_rules(domain: str, ok: bool) -> None:
    if ok:
        assert normalize_domain(domain, Settings()) == domain.lower().rstrip(".")
    else:
        with pytest.raises(DomainError) as caught:
            normalize_domain(domain, Settings())
        assert caught.value.code == "invalid_domain"


def test_invalid_values_and_production_rules_are_named_in_one_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(
            _production(TENANTRY_SERVER_WORKERS="two", TENANTRY_JWT_SECRET="short"),
            dotenv=tmp_path / "none",
        )
    heading, *lines = str(caught.value).splitlines()
    assert heading == "2 settings need a change:"
    assert "TENANTRY_SERVER_WORKERS" in lines[0] and "TENANTRY_JWT_SECRET" in lines[1]
