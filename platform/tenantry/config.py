"""Settings from the environment and `.env`, as one frozen msgspec Struct.

Every setting is read from `TENANTRY_<NAME>` (and `DATABASE_URL` for the admin connection).
Production refuses to start on a missing or default secret; dev generates the secrets once
and keeps them in the data dir, so restarts keep tokens and role passwords valid.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Literal

import msgspec

Environment = Literal["dev", "test", "production"]

DEV_PLATFORM_ADMIN_EMAIL = "operator@tenantry.localhost"
DEV_PLATFORM_ADMIN_PASSWORD = "operator-dev-password"
_INSECURE_VALUES = frozenset({"", "changeme", "change-me", "secret", "password", "postgres"})
_SECRET_NAMES = ("jwt_secret", "db_owner_password", "db_app_password", "db_platform_password")


class ConfigError(Exception):
    """A setting is missing or unsafe; the message names it."""


class S3Settings(msgspec.Struct, frozen=True):
    bucket: str
    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    part_size: int = 8 * 1024 * 1024
    # Seconds before a store that does not answer counts as down (503 storage_unavailable).
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    max_attempts: int = 3
    # Longest any one call (a part upload included) may take before the store counts as down.
    operation_timeout: float = 300.0


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    env: Environment = "dev"
    data_dir: Path = Path(".tenantry")
    # Admin connection (superuser or a role that can create roles). None: embedded Postgres.
    database_url: str | None = None
    db_owner_password: str = ""
    db_app_password: str = ""
    db_platform_password: str = ""
    # Connections per worker process (README: connection budget): the tenant ORM pool, the raw
    # read pool of the hot paths, the platform pool; plus one LISTEN connection.
    db_pool_size: int = 4
    db_read_pool_size: int = 16
    db_platform_pool_size: int = 2
    # Where the pooled role connections go (PgBouncer in transaction mode, README: PgBouncer):
    # e.g. "postgresql://pgbouncer:6432/tenantry", the roles' names and passwords unchanged.
    # Unset: straight to the database. Bootstrap, migrations and LISTEN always go direct.
    db_pooler_url: str | None = None
    # Server-side prepared statements kept per connection (asyncpg's and SQLAlchemy's caches).
    # Unset: on without a pooler, off with one (a transaction-mode pooler hands each transaction
    # any server connection; PgBouncer >= 1.21 with max_prepared_statements can keep them).
    db_prepared_statements: bool | None = None
    jwt_secret: str = ""
    jwt_issuer: str = "tenantry"
    access_token_ttl_seconds: int = 15 * 60
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    bcrypt_rounds: int = 12
    # Threads hashing passwords at once; more than the cores only adds queueing inside bcrypt.
    bcrypt_concurrency: int = max(1, os.cpu_count() or 1)
    base_domain: str = "localhost"
    # Hosts that carry no tenant of their own (a shared API host); the tenant then comes from
    # the token or, on public auth routes, from `X-Tenant`.
    shared_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "[::1]")
    trusted_proxies: tuple[str, ...] = ()
    # Scheme, host and port of download links (e.g. "https://media.example.com"); unset: the
    # origin the client called (from a trusted proxy's X-Forwarded-Proto/-Host when present).
    public_origin: str | None = None
    tenant_cache_ttl_seconds: float = 30.0
    tenant_cache_max_entries: int = 10_000
    # Users' token epochs and API keys held in memory (tenantry.auth.credentials).
    credential_cache_max_entries: int = 100_000
    platform_admin_email: str = DEV_PLATFORM_ADMIN_EMAIL
    platform_admin_password: str = DEV_PLATFORM_ADMIN_PASSWORD
    log_format: Literal["json", "console"] = "console"
    log_level: str = "INFO"
    s3: S3Settings | None = None
    # Storage reconciler: how often it runs in each replica (0: never) and when a pending
    # upload counts as dead.
    reconcile_interval_seconds: float = 600.0
    pending_upload_timeout_seconds: int = 24 * 3600
    # How long a direct upload's part URLs live; not completed by then, the reconciler aborts
    # it and releases its quota.
    direct_upload_ttl_seconds: int = 6 * 3600
    # Name servers that verify tenants' domains (none: the system's), and their port.
    dns_nameservers: tuple[str, ...] = ()
    dns_port: int = 53
    # Outgoing mail (invitations, password resets); no host: no mail, tokens go to the admin.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_tls: bool = False
    mail_from: str = "Tenantry <no-reply@localhost>"
    # Usage: how often each replica's rollup job looks for new events (0: never; reports then
    # lag until `tenantry usage rollup`), and how long raw events are kept (rollups forever).
    usage_rollup_interval_seconds: float = 1.0
    usage_retention_days: int = 400
    # Per-tenant request rates and upload concurrency (tenancy.limits); off only for
    # benchmarks of raw throughput and tests that are not about them.
    rate_limits: bool = True
    # `tenantry serve` (granian): where it listens, its worker processes, what it accepts.
    server_host: str = "0.0.0.0"  # noqa: S104 - a server in a container
    server_port: int = 8000
    server_workers: int = 2
    server_backlog: int = 1024
    # Request line plus headers, and the time a client has to send them.
    server_max_header_bytes: int = 64 * 1024
    server_header_timeout_seconds: float = 30.0
    server_keep_alive: bool = True
    # Bodies of JSON requests; uploads are bounded by the tenant's plan instead.
    request_max_body_bytes: int = 1024 * 1024
    # SIGTERM: readiness answers 503 for the drain seconds (load balancers stop sending), then
    # the server stops accepting and in-flight requests get the grace seconds to finish.
    shutdown_drain_seconds: float = 5.0
    shutdown_grace_seconds: float = 30.0
    # Per-run state shared by the workers of one `tenantry serve` (their metrics, the drain
    # mark); unset: serve makes a fresh temporary directory.
    runtime_dir: Path | None = None
    # Tracing: spans exported by OTLP/HTTP to this endpoint (e.g. http://collector:4318); unset:
    # no tracing (an incoming `traceparent` still reaches the logs).
    otlp_endpoint: str | None = None
    otel_service_name: str = "tenantry"
    # `/metrics`: a bearer token it requires (unset: open, keep it off the ingress), and the
    # tenant slugs that get their own label on request metrics (all others count as "other").
    metrics_token: str | None = None
    metrics_tenants: tuple[str, ...] = ()

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def json_logs(self) -> bool:
        return self.log_format == "json" or self.is_production

    @property
    def keeps_prepared_statements(self) -> bool:
        if self.db_prepared_statements is not None:
            return self.db_prepared_statements
        return self.db_pooler_url is None


def _read_dotenv(path: Path) -> dict[str, str]:
    """Minimal `.env` reader: KEY=VALUE lines, optional quotes, # comments."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip().lower() for part in value.split(",") if part.strip())


def load_settings(environ: dict[str, str] | None = None, *, dotenv: Path | None = None) -> Settings:
    """Build settings from `environ` (default: the process environment) over `.env`."""
    source = _read_dotenv(dotenv or Path(".env"))
    source.update(os.environ if environ is None else environ)

    raw: dict[str, object] = {}
    prefix = "TENANTRY_"
    for key, value in source.items():
        if key.startswith(prefix) and not key.startswith(prefix + "S3_"):
            raw[key.removeprefix(prefix).lower()] = value
    if "DATABASE_URL" in source and "database_url" not in raw:
        raw["database_url"] = source["DATABASE_URL"]
    for name in ("shared_hosts", "trusted_proxies", "dns_nameservers", "metrics_tenants"):
        if isinstance(raw.get(name), str):
            raw[name] = _split(str(raw[name]))
    bucket = source.get(prefix + "S3_BUCKET")
    if bucket:
        raw["s3"] = {
            "bucket": bucket,
            "endpoint_url": source.get(prefix + "S3_ENDPOINT_URL") or None,
            "region": source.get(prefix + "S3_REGION", "us-east-1"),
            "access_key_id": source.get(prefix + "S3_ACCESS_KEY_ID")
            or source.get("AWS_ACCESS_KEY_ID"),
            "secret_access_key": source.get(prefix + "S3_SECRET_ACCESS_KEY")
            or source.get("AWS_SECRET_ACCESS_KEY"),
            **{
                name: source[prefix + "S3_" + name.upper()]
                for name in (
                    "part_size",
                    "connect_timeout",
                    "read_timeout",
                    "max_attempts",
                    "operation_timeout",
                )
                if prefix + "S3_" + name.upper() in source
            },
        }
    errors = {
        name: error for name, value in raw.items() if (error := _conversion_error(name, value))
    }
    problems = [f"invalid setting {_env_name(name)}: {error}" for name, error in errors.items()]
    # The valid values alone, so that production's rules are checked in the same run.
    valid = {name: value for name, value in raw.items() if name not in errors}
    settings = msgspec.convert(valid, Settings, strict=False, dec_hook=_decode_path)
    if settings.is_production:
        problems += production_problems(settings)
    if problems:
        raise ConfigError(_listed(problems))
    return settings


def _listed(problems: list[str]) -> str:
    heading = (
        "1 setting needs a change"
        if len(problems) == 1
        else f"{len(problems)} settings need a change"
    )
    return "\n  ".join([f"{heading}:", *problems])


def _env_name(field: str) -> str:
    return "DATABASE_URL" if field == "database_url" else f"TENANTRY_{field.upper()}"


def _conversion_error(name: str, value: object) -> str | None:
    """Each setting converted on its own, so one run names every invalid value."""
    try:
        msgspec.convert({name: value}, Settings, strict=False, dec_hook=_decode_path)
    except msgspec.ValidationError as exc:
        return str(exc)
    return None


def _decode_path(type_: type, value: object) -> object:
    # msgspec converts strings to most types but not to Path.
    if type_ is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError


# What production cannot run without (Compose and the Helm chart provide each: tested).
PRODUCTION_REQUIRED = (
    "DATABASE_URL",
    *(_env_name(name) for name in _SECRET_NAMES),
    "TENANTRY_BASE_DOMAIN",
)


def production_problems(settings: Settings) -> list[str]:
    """Every missing or unsafe production setting, one line each (all at once, not the first)."""
    problems = []
    if settings.database_url is None:
        problems.append("DATABASE_URL must be set in production (no embedded Postgres)")
    for name in _SECRET_NAMES:
        value = getattr(settings, name)
        if value.lower() in _INSECURE_VALUES:
            problems.append(f"{_env_name(name)} must be set to a strong value in production")
        elif name == "jwt_secret" and len(value) < 32:
            problems.append(f"{_env_name(name)} must be at least 32 characters in production")
    if settings.base_domain in {"localhost", "127.0.0.1"}:
        problems.append(
            "TENANTRY_BASE_DOMAIN must be set in production (tenants are served on {slug}.<it>)"
        )
    return problems


def with_dev_secrets(settings: Settings) -> Settings:
    """Fill empty secrets from `{data_dir}/secrets.json`, generating it on first use."""
    missing = [name for name in _SECRET_NAMES if not getattr(settings, name)]
    if not missing:
        return settings
    path = settings.data_dir / "secrets.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.is_file() else {}
    if any(name not in stored for name in missing):
        for name in _SECRET_NAMES:
            stored.setdefault(name, secrets.token_urlsafe(32))
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(stored, indent=2))
        tmp.chmod(0o600)
        tmp.replace(path)
    return msgspec.structs.replace(settings, **{name: stored[name] for name in missing})


def runtime_settings() -> Settings:
    """Settings as a server or command uses them: dev secrets filled in outside production."""
    settings = load_settings()
    return settings if settings.is_production else with_dev_secrets(settings)
