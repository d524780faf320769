"""The `tenantry` command line: dev server, production server, database and tenant commands.

Only click and the settings load at start: every command imports what it needs (mostly from
`tenantry.commands`) when it runs, so `tenantry --help` answers at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import click
import msgspec

from tenantry import __version__
from tenantry.config import (
    DEV_PLATFORM_ADMIN_PASSWORD,
    ConfigError,
    Settings,
    load_settings,
    with_dev_secrets,
)

if TYPE_CHECKING:
    from tenantry.manifests import Manifest


def _load_settings(**overrides: Any) -> Settings:
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    settings = msgspec.structs.replace(
        settings, **{k: v for k, v in overrides.items() if v is not None}
    )
    return msgspec.structs.replace(settings, data_dir=settings.data_dir.resolve())


def _with_secrets(settings: Settings) -> Settings:
    return settings if settings.is_production else with_dev_secrets(settings)


def _settings(**overrides: Any) -> Settings:
    return _with_secrets(_load_settings(**overrides))


@contextlib.contextmanager
def _database(data_dir: Path | None) -> Iterator[Settings]:
    """Settings with a database: `DATABASE_URL`, or else the embedded Postgres that `tenantry
    dev` made under the data dir (attached to while dev runs, started for the command if not)."""
    from tenantry.db.embedded import embedded_database, has_embedded_postgres

    settings = _load_settings(data_dir=data_dir)
    if settings.database_url is not None:
        yield _with_secrets(settings)
        return
    # Checked before the dev secrets are read: making them would leave a data dir behind.
    if not has_embedded_postgres(settings.data_dir):
        raise click.ClickException(
            "no database: set DATABASE_URL, or run `tenantry dev` first "
            f"(data dir {settings.data_dir})"
        )
    with embedded_database(_with_secrets(settings)) as settings:
        yield settings


# `tenantry dev` and every command that needs the database: the same directory, the same default.
_data_dir_option = click.option(
    "--data-dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="embedded Postgres, dev secrets, local objects [default: TENANTRY_DATA_DIR, .tenantry]",
)


class _Cli(click.Group):
    """The root group: a failure of the setup or the input ends any command with one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        # Click's own ends (an error it prints, --help's exit, Ctrl-C at a prompt) stay as they are.
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            from tenantry.commands import explain

            message = explain(exc)
            if message is None:
                raise
            raise click.ClickException(message) from exc


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="tenantry")
def cli() -> None:
    """Tenantry: multitenant, white-label media platform."""


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@_data_dir_option
def dev(host: str, port: int, data_dir: Path | None) -> None:
    """Run the platform with embedded defaults: Postgres under the data dir, demo tenants."""
    # SIGTERM is a normal stop: at any point it unwinds through the exit stack, which stops the
    # embedded Postgres (uvicorn re-raises it after its own graceful shutdown).
    signal.signal(signal.SIGTERM, _raise_stop)
    announce = _announcer(json=False)  # until the settings say which
    try:
        from tenantry import commands
        from tenantry.db.embedded import ServerLogFollower, embedded_database, server_log
        from tenantry.db.paths import TENANTS_DIR
        from tenantry.lib.logging import configure_logging
        from tenantry.lib.mail import MailSink
        from tenantry.manifests import load_manifests
        from tenantry.server import run_dev_server

        settings = _settings(data_dir=data_dir)
        # From the first line on, one stream: ours, the libraries' and the database's.
        configure_logging(json=settings.json_logs, level_name=settings.log_level)
        announce = _announcer(json=settings.json_logs)
        sink = settings.smtp_host is None
        with contextlib.ExitStack() as running:
            if sink:
                mail_sink = MailSink(settings.data_dir / "mail", announce)
                running.callback(mail_sink.stop)
                settings = msgspec.structs.replace(
                    settings, smtp_host="127.0.0.1", smtp_port=mail_sink.start()
                )
            if settings.database_url is None:
                # Stopped after the database (the stack unwinds in reverse): its last lines too.
                follower = ServerLogFollower(server_log(settings.data_dir))
                running.callback(follower.stop)
                settings = running.enter_context(embedded_database(settings))
                follower.start()
            commands.prepare_database(settings)
            created = asyncio.run(
                commands.ensure_platform_admin(
                    settings, settings.platform_admin_email, settings.platform_admin_password
                )
            )
            manifests = load_manifests(TENANTS_DIR) if TENANTS_DIR.is_dir() else []
            outcomes = asyncio.run(commands.apply_manifests(settings, manifests))
            _print_welcome(
                settings,
                host,
                port,
                manifests,
                outcomes,
                announce,
                operator_created=created,
                sink=sink,
            )
            run_dev_server(settings, host, port, announce)
    except StopRequested:
        announce("stopped")


def _announcer(*, json: bool) -> Callable[[str], None]:
    """How dev tells its user something: plain lines on a console, log lines in JSON mode
    (where every line of the stream must be JSON)."""
    if not json:
        return lambda text: click.echo(text, err=True)
    import structlog

    log = structlog.get_logger("tenantry.dev")
    return lambda text: log.info(text)


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
    announce: Callable[[str], None],
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
        # curl (and browsers) resolve every *.localhost name to loopback: no Host header needed.
        lines.append(
            f"  tenant {manifest.slug} ({outcomes.get(manifest.slug)}): "
            f"curl http://{manifest.slug}.{settings.base_domain}:{port}/api/v1/branding ; "
            f"login {manifest.admin.email} / "
            f"{manifest.admin.dev_password if manifest.admin.dev_password else '$' + manifest.admin.password_env}"
        )
    announce("\n".join(lines))


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
@_data_dir_option
def db_bootstrap(data_dir: Path | None) -> None:
    """Create or update the roles tenantry_owner, tenantry_app, tenantry_platform."""
    from tenantry.db import bootstrap

    with _database(data_dir) as settings:
        asyncio.run(bootstrap.bootstrap_roles(settings))
    click.echo("roles ready")


@db.command("upgrade")
@click.argument("revision", default="head")
@_data_dir_option
def db_upgrade(revision: str, data_dir: Path | None) -> None:
    """Run migrations as tenantry_owner."""
    from tenantry.db import bootstrap

    with _database(data_dir) as settings:
        bootstrap.upgrade(settings, revision)


@cli.group("platform-admin")
def platform_admin() -> None:
    """Platform operators."""


@platform_admin.command("create")
@click.option("--email", required=True)
@click.password_option("--password", prompt=True, confirmation_prompt=True)
@_data_dir_option
def platform_admin_create(email: str, password: str, data_dir: Path | None) -> None:
    """Create an operator (or reset the password of an existing one)."""
    from tenantry.commands import ensure_platform_admin

    with _database(data_dir) as settings:
        created = asyncio.run(ensure_platform_admin(settings, email, password))
    click.echo(f"operator {email} {'created' if created else 'updated'}")


@cli.group()
def tenants() -> None:
    """Tenant manifests."""


@tenants.command("apply")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_data_dir_option
def tenants_apply(directory: Path, data_dir: Path | None) -> None:
    """Create or update the tenants described by DIRECTORY/*.toml (idempotent)."""
    from tenantry.commands import apply_manifests
    from tenantry.manifests import load_manifests

    manifests = load_manifests(directory)
    with _database(data_dir) as settings:
        outcomes = asyncio.run(apply_manifests(settings, manifests))
    for slug, outcome in outcomes.items():
        click.echo(f"{slug}: {outcome}")


@tenants.command("import")
@click.argument("source", type=click.File("rb"))
@_data_dir_option
def tenants_import(source: BinaryIO, data_dir: Path | None) -> None:
    """Create many tenants at once from SOURCE ('-': standard input), JSON Lines: one body of
    `POST /platform/v1/tenants` per line. Owners without a password are invited (no bcrypt:
    thousands take seconds); slugs that exist are skipped, so a rerun resumes. Prints one JSON
    line per tenant (an invitation's token when no mail went out)."""
    from tenantry.commands import TenantLinesError, import_tenants, parse_tenant_lines

    try:
        tenants = parse_tenant_lines(source)
    except TenantLinesError as exc:
        raise click.ClickException(str(exc)) from exc
    with _database(data_dir) as settings:
        created, existing = asyncio.run(
            import_tenants(settings, tenants, lambda line: click.echo(line.decode()))
        )
    click.echo(f"{created} tenants created, {existing} existed", err=True)


@cli.group()
def storage() -> None:
    """Object storage."""


@storage.command("reconcile")
@_data_dir_option
def storage_reconcile(data_dir: Path | None) -> None:
    """Remove orphaned objects, dead pending uploads and offboarded tenants' objects."""
    from tenantry.commands import reconcile_once

    with _database(data_dir) as settings:
        report = asyncio.run(reconcile_once(settings))
    if report is None:
        raise click.ClickException("another replica is reconciling now; nothing was done")
    click.echo(msgspec.json.encode(report).decode())


@cli.group()
def usage() -> None:
    """Usage metering: rollups and their raw events."""


@usage.command("rollup")
@_data_dir_option
def usage_rollup(data_dir: Path | None) -> None:
    """Roll up every event committed so far (the servers' job does this every second)."""
    from tenantry.commands import with_rollups

    with _database(data_dir) as settings:
        counted = asyncio.run(with_rollups(settings, lambda job: job.catch_up()))
    click.echo(f"rolled up {counted} events")


@usage.command("rebuild")
@click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--tenant", "tenant_id", type=click.UUID, default=None, help="one tenant's id")
@_data_dir_option
def usage_rebuild(
    first: datetime, last: datetime, tenant_id: uuid.UUID | None, data_dir: Path | None
) -> None:
    """Recompute the rollups of days FROM..TO (inclusive) from the raw events."""
    from tenantry.commands import with_rollups

    with _database(data_dir) as settings:
        counted = asyncio.run(
            with_rollups(
                settings, lambda job: job.rebuild(first.date(), last.date(), tenant_id=tenant_id)
            )
        )
    click.echo(f"rebuilt {first.date()}..{last.date()} from {counted} events")


@usage.command("seed")
@click.option("--tenants", type=click.IntRange(1, 99_999), default=10, show_default=True)
@click.option("--events", type=click.IntRange(0), default=100_000, show_default=True)
@click.option("--days", type=click.IntRange(1), default=90, show_default=True, help="up to today")
@click.option("--seed", "seed", type=int, default=1, show_default=True, help="random seed")
@click.option("--replace", is_flag=True, help="first remove the tenants an earlier seed made")
@_data_dir_option
def usage_seed(
    tenants: int, events: int, days: int, seed: int, replace: bool, data_dir: Path | None
) -> None:
    """Synthetic tenants, users, files and usage events over the last DAYS days, rolled up
    (for demos and benchmarks)."""
    from tenantry.commands import seed_usage
    from tenantry.usage.seed import SeedPlan

    plan = SeedPlan(tenants=tenants, events=events, days=days, seed=seed)
    with _database(data_dir) as settings:
        report = asyncio.run(seed_usage(settings, plan, replace=replace))
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
