"""The `tenantry` command line: dev server, production server, database and tenant commands."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import click
import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth.passwords import PasswordHasher
from tenantry.auth.services import upsert_platform_admin
from tenantry.config import (
    DEV_PLATFORM_ADMIN_PASSWORD,
    ConfigError,
    Settings,
    load_settings,
    with_dev_secrets,
)
from tenantry.db import bootstrap
from tenantry.db.embedded import DATABASE_NAME, start_embedded_postgres, with_database
from tenantry.db.engines import platform_db_config
from tenantry.db.paths import TENANTS_DIR
from tenantry.files import rollup as file_stats
from tenantry.files.reconcile import Reconciler, ReconcileReport
from tenantry.lib.errors import DomainError
from tenantry.lib.mail import MailSink
from tenantry.manifests import Manifest, ManifestError, apply_manifest, load_manifests
from tenantry.storage.factory import build_store
from tenantry.usage.rollups import RollupJob
from tenantry.usage.seed import SLUG_PREFIX, SeedPlan, SeedReport
from tenantry.usage.seed import seed_usage as seed_usage_events

T = TypeVar("T")


def _settings(**overrides: Any) -> Settings:
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    settings = msgspec.structs.replace(
        settings, **{k: v for k, v in overrides.items() if v is not None}
    )
    return settings if settings.is_production else with_dev_secrets(settings)


def _hasher(settings: Settings) -> PasswordHasher:
    return PasswordHasher(rounds=settings.bcrypt_rounds, concurrency=settings.bcrypt_concurrency)


async def _in_platform_session(
    settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]
) -> T:
    """One committed transaction on the platform engine, for commands outside a request."""
    config = platform_db_config(settings)
    try:
        async with config.get_session() as session, session.begin():
            return await work(session)
    finally:
        await config.get_engine().dispose()


async def ensure_platform_admin(settings: Settings, email: str, password: str) -> bool:
    hasher = _hasher(settings)
    return await _in_platform_session(
        settings, lambda session: upsert_platform_admin(session, hasher, email, password)
    )


async def apply_manifests(settings: Settings, manifests: list[Manifest]) -> dict[str, str]:
    hasher = _hasher(settings)
    return {
        manifest.slug: await _in_platform_session(
            settings, partial(apply_manifest, manifest, settings=settings, passwords=hasher)
        )
        for manifest in manifests
    }


def prepare_database(settings: Settings) -> None:
    """Roles, grants and migrations: everything a fresh or existing database needs."""
    asyncio.run(bootstrap.bootstrap_roles(settings))
    bootstrap.upgrade(settings)


@click.group()
def cli() -> None:
    """Tenantry: multitenant, white-label media platform."""


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--data-dir", default=".tenantry", show_default=True, type=click.Path(path_type=Path))
def dev(host: str, port: int, data_dir: Path) -> None:
    """Run the platform with embedded defaults: Postgres under the data dir, demo tenants."""
    # SIGTERM is a normal stop: at any point it unwinds through `finally`, which stops the
    # embedded Postgres (uvicorn re-raises it after its own graceful shutdown).
    signal.signal(signal.SIGTERM, _raise_stop)
    settings = _settings(data_dir=data_dir.resolve())
    embedded = None
    mail_sink = None
    try:
        if settings.smtp_host is None:
            mail_sink = MailSink(
                settings.data_dir / "mail", lambda text: click.echo(text, err=True)
            )
            settings = msgspec.structs.replace(
                settings, smtp_host="127.0.0.1", smtp_port=mail_sink.start()
            )
        if settings.database_url is None:
            embedded, admin = start_embedded_postgres(settings.data_dir / "postgres")
            asyncio.run(
                bootstrap.create_database_if_missing(
                    msgspec.structs.replace(settings, database_url=admin), DATABASE_NAME
                )
            )
            settings = msgspec.structs.replace(
                settings, database_url=with_database(admin, DATABASE_NAME)
            )
        prepare_database(settings)
        created = asyncio.run(
            ensure_platform_admin(
                settings, settings.platform_admin_email, settings.platform_admin_password
            )
        )
        manifests = load_manifests(TENANTS_DIR) if TENANTS_DIR.is_dir() else []
        outcomes = asyncio.run(apply_manifests(settings, manifests))
        _print_welcome(
            settings,
            host,
            port,
            manifests,
            outcomes,
            operator_created=created,
            sink=mail_sink is not None,
        )
        from tenantry.server import run_dev_server

        run_dev_server(settings, host, port)
    except StopRequested:
        click.echo("stopped", err=True)
    except (ManifestError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        if mail_sink is not None:
            mail_sink.stop()
        if embedded is not None:
            embedded.cleanup()


class StopRequested(Exception):
    """SIGTERM arrived."""


def _raise_stop(_signum: int, _frame: object) -> None:
    raise StopRequested


def _print_welcome(
    settings: Settings,
    host: str,
    port: int,
    manifests: list[Manifest],
    outcomes: dict[str, str],
    *,
    operator_created: bool,
    sink: bool,
) -> None:
    base = f"http://{host}:{port}"
    password = settings.platform_admin_password
    shown = (
        password
        if password == DEV_PLATFORM_ADMIN_PASSWORD
        else "(from TENANTRY_PLATFORM_ADMIN_PASSWORD)"
    )
    lines = [
        f"Tenantry dev ({'created' if operator_created else 'existing'} operator)",
        f"  operator:  {settings.platform_admin_email} / {shown}",
        f"  platform:  POST {base}/platform/v1/auth/login",
        f"  API docs:  {base}/schema",
        f"  mail:      SMTP {settings.smtp_host}:{settings.smtp_port}"
        + (f" (the dev sink: shown here, kept in {settings.data_dir / 'mail'})" if sink else ""),
    ]
    for manifest in manifests:
        lines.append(
            f"  tenant {manifest.slug} ({outcomes.get(manifest.slug)}): "
            f"curl -H 'Host: {manifest.slug}.{settings.base_domain}' {base}/api/v1/branding ; "
            f"login {manifest.admin.email} / "
            f"{manifest.admin.dev_password if manifest.admin.dev_password else '$' + manifest.admin.password_env}"
        )
    click.echo("\n".join(lines), err=True)


@cli.command()
@click.option("--host", default=None, help="[default: TENANTRY_SERVER_HOST, 0.0.0.0]")
@click.option("--port", default=None, type=int, help="[default: TENANTRY_SERVER_PORT, 8000]")
@click.option("--workers", default=None, type=int, help="[default: TENANTRY_SERVER_WORKERS, 2]")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Run the production server (granian, several worker processes)."""
    from tenantry.server import run_production_server

    # Fail fast on unsafe settings, before workers start; the workers read the same environment.
    settings = _settings(server_host=host, server_port=port, server_workers=workers)
    run_production_server(settings)


@cli.group()
def db() -> None:
    """Database roles and migrations (DATABASE_URL is an admin connection)."""


@db.command("bootstrap")
def db_bootstrap() -> None:
    """Create or update the roles tenantry_owner, tenantry_app, tenantry_platform."""
    asyncio.run(bootstrap.bootstrap_roles(_settings()))
    click.echo("roles ready")


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Run migrations as tenantry_owner."""
    bootstrap.upgrade(_settings(), revision)


@cli.group("platform-admin")
def platform_admin() -> None:
    """Platform operators."""


@platform_admin.command("create")
@click.option("--email", required=True)
@click.password_option("--password", prompt=True, confirmation_prompt=True)
def platform_admin_create(email: str, password: str) -> None:
    """Create an operator (or reset the password of an existing one)."""
    created = asyncio.run(ensure_platform_admin(_settings(), email, password))
    click.echo(f"operator {email} {'created' if created else 'updated'}")


@cli.group()
def tenants() -> None:
    """Tenant manifests."""


@tenants.command("apply")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def tenants_apply(directory: Path) -> None:
    """Create or update the tenants described by DIRECTORY/*.toml (idempotent)."""
    try:
        outcomes = asyncio.run(apply_manifests(_settings(), load_manifests(directory)))
    except ManifestError as exc:
        raise click.ClickException(str(exc)) from exc
    for slug, outcome in outcomes.items():
        click.echo(f"{slug}: {outcome}")


@cli.group()
def storage() -> None:
    """Object storage."""


@storage.command("reconcile")
def storage_reconcile() -> None:
    """Remove orphaned objects, dead pending uploads and offboarded tenants' objects."""
    report = asyncio.run(reconcile_once(_settings()))
    click.echo(msgspec.json.encode(report).decode())


async def reconcile_once(settings: Settings) -> ReconcileReport:
    store = build_store(settings)
    config = platform_db_config(settings)
    await store.start()
    try:
        reconciler = Reconciler(
            config,
            store,
            pending_timeout=timedelta(seconds=settings.pending_upload_timeout_seconds),
        )
        return await reconciler.run_once()
    finally:
        await store.close()
        await config.get_engine().dispose()


@cli.group()
def usage() -> None:
    """Usage metering: rollups and their raw events."""


async def _with_rollups(settings: Settings, work: Callable[[RollupJob], Awaitable[T]]) -> T:
    config = platform_db_config(settings)
    try:
        return await work(RollupJob(config, retention_days=settings.usage_retention_days))
    finally:
        await config.get_engine().dispose()


@usage.command("rollup")
def usage_rollup() -> None:
    """Roll up every event committed so far (the servers' job does this every second)."""
    counted = asyncio.run(_with_rollups(_settings(), lambda job: job.catch_up()))
    click.echo(f"rolled up {counted} events")


@usage.command("rebuild")
@click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--tenant", "tenant_id", type=click.UUID, default=None, help="one tenant's id")
def usage_rebuild(first: datetime, last: datetime, tenant_id: uuid.UUID | None) -> None:
    """Recompute the rollups of days FROM..TO (inclusive) from the raw events."""
    try:
        counted = asyncio.run(
            _with_rollups(
                _settings(),
                lambda job: job.rebuild(first.date(), last.date(), tenant_id=tenant_id),
            )
        )
    except DomainError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"rebuilt {first.date()}..{last.date()} from {counted} events")


async def seed_usage(settings: Settings, plan: SeedPlan, *, replace: bool = False) -> SeedReport:
    """The usage seed, then the file stats rollup of its tenants: the seeded files bypassed the
    write paths that keep that rollup."""
    report = await seed_usage_events(settings, plan, replace=replace)

    async def recount(session: AsyncSession) -> None:
        for tenant_id in report.tenant_ids:
            await file_stats.rebuild(session, tenant_id)

    started = time.perf_counter()
    await _in_platform_session(settings, recount)
    report.file_stats_seconds = time.perf_counter() - started
    return report


@usage.command("seed")
@click.option("--tenants", type=click.IntRange(1, 99_999), default=10, show_default=True)
@click.option("--events", type=click.IntRange(0), default=100_000, show_default=True)
@click.option("--days", type=click.IntRange(1), default=90, show_default=True, help="up to today")
@click.option("--seed", "seed", type=int, default=1, show_default=True, help="random seed")
@click.option(
    "--replace", is_flag=True, help=f"remove the tenants {SLUG_PREFIX}* of an earlier seed"
)
def usage_seed(tenants: int, events: int, days: int, seed: int, replace: bool) -> None:
    """Synthetic tenants, users, files and usage events over the last DAYS days, rolled up
    (for demos and benchmarks)."""
    plan = SeedPlan(tenants=tenants, events=events, days=days, seed=seed)
    try:
        report = asyncio.run(seed_usage(_settings(), plan, replace=replace))
    except DomainError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(
        "\n".join(
            [
                f"seeded {tenants} tenants ({report.users} users, {report.files} files) and "
                f"{report.events} events from {report.first:%Y-%m-%d} to {report.last:%Y-%m-%d %H:%M} UTC",
                f"  load {report.load_seconds:.1f} s (generate {report.generate_seconds:.1f} s "
                f"meanwhile, copy {report.copy_seconds:.1f} s)",
                f"  rollup {report.rolled_up} events, alongside the load and "
                f"{report.rollup_seconds:.1f} s after it",
                f"  file stats {report.file_stats_seconds:.1f} s",
            ]
        )
    )


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
