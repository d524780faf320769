"""create_app(): the composition root. Builds the singletons once, hands them to middleware by
construction and to handlers by dependency injection, wires the routers and the lifespan.

Only this module (and the CLI) knows every layer; domains receive what they need from here
(e.g. the operator's offboarding gets the files domain's purge), never import each other.
"""

from __future__ import annotations

import gc
import importlib.util
from collections.abc import AsyncGenerator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
from advanced_alchemy.config import SQLAlchemyAsyncConfig
from litestar import Litestar, Router
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry import __version__
from tenantry.admin.branding import AdminBrandingController
from tenantry.admin.controllers import (
    ApiKeysAdminController,
    AuditAdminController,
    DomainsAdminController,
    SettingsAdminController,
    UsersAdminController,
)
from tenantry.auth.api_keys import ApiKeyHasher, KeyUseRecorder
from tenantry.auth.controllers import PlatformAuthController, TenantAuthController
from tenantry.auth.credentials import CredentialCache
from tenantry.auth.deps import AuthBackends
from tenantry.auth.passwords import PasswordHasher
from tenantry.auth.principals import Authenticator
from tenantry.auth.tokens import TokenIssuer
from tenantry.config import Settings, runtime_settings
from tenantry.db.audit import AuditWriter
from tenantry.db.deps import session_provider
from tenantry.db.engines import (
    asyncpg_dsn,
    platform_db_config,
    pool_use,
    pooled_role_url,
    role_url,
    statement_cache_args,
    tenant_db_config,
)
from tenantry.db.errors import DATABASE_ERRORS, translate_database_error
from tenantry.db.listener import ChangeListener
from tenantry.db.reads import TenantReader
from tenantry.db.tenant_scope import request_tenant
from tenantry.db.usage import Clock, UsageRecorder, utc_now
from tenantry.files.controllers import (
    AudiencesAdminController,
    AudiencesController,
    CategoriesAdminController,
    CategoriesController,
    FilesController,
    TusController,
    UploadsController,
)
from tenantry.files.deps import FileBackends
from tenantry.files.purge import purge_tenant_files
from tenantry.files.reconcile import Reconciler
from tenantry.lib.errors import EXCEPTION_HANDLERS, translated
from tenantry.lib.logging import configure_logging
from tenantry.lib.mail import Mailer, smtp_mailer
from tenantry.lib.metrics import forget_this_process, sample_pools
from tenantry.lib.observe import ObservedApp
from tenantry.lib.openapi import API_DESCRIPTION, document_app
from tenantry.lib.runtime import Drain, stop_when_orphaned
from tenantry.lib.tasks import in_background
from tenantry.lib.tracing import Tracing
from tenantry.lib.zones import OPS
from tenantry.ops.controllers import (
    HealthController,
    MetricsController,
    ProblemTypesController,
    api_index,
)
from tenantry.platform.controllers import TenantsController
from tenantry.platform.services import TenantPurge
from tenantry.storage import ObjectStore
from tenantry.storage.factory import build_store
from tenantry.tenancy.cache import TenantCache, track_tenant_changes
from tenantry.tenancy.controllers import BrandingController
from tenantry.tenancy.cors import CorsPolicy
from tenantry.tenancy.domains import DnsVerifier
from tenantry.tenancy.limits import RateLimiter, UploadLimits, UploadSlots
from tenantry.tenancy.middleware import AccessMiddleware, TenantResolver
from tenantry.usage.controllers import PlatformUsageController, UsageController
from tenantry.usage.meter import ServedBytesMeter
from tenantry.usage.rollups import RollupJob

# Swagger UI's own files, served by the app (pinned by the lock file): the docs need no network.
SWAGGER_ASSETS_PATH = "/schema/assets"
_SWAGGER_SPEC = importlib.util.find_spec("swagger_ui")
SWAGGER_ASSETS_DIR = Path(next(iter(_SWAGGER_SPEC.submodule_search_locations or []))) / "static"  # type: ignore[union-attr]

# How often the local store's served bytes are written (see tenantry.usage.meter).
SERVED_BYTES_FLUSH_SECONDS = 1.0
# How often each worker samples its connection pools for /metrics, and checks its server lives.
POOL_SAMPLE_SECONDS = 1.0
ORPHAN_CHECK_SECONDS = 1.0
# What each domain removes when the operator offboards a tenant.
TENANT_PURGES: Sequence[TenantPurge] = (purge_tenant_files,)


@dataclass(frozen=True, slots=True)
class AppServices:
    """The app-wide singletons, built once at start-up (tests reach them as app.state.services)."""

    settings: Settings
    tenant_db: SQLAlchemyAsyncConfig
    platform_db: SQLAlchemyAsyncConfig
    tokens: TokenIssuer
    passwords: PasswordHasher
    tenant_cache: TenantCache
    resolver: TenantResolver
    store: ObjectStore
    reader: TenantReader
    credentials: CredentialCache
    key_hasher: ApiKeyHasher
    key_uses: KeyUseRecorder
    mailer: Mailer | None
    audit: AuditWriter
    recorder: UsageRecorder
    rollups: RollupJob
    served: ServedBytesMeter
    rate_limiter: RateLimiter

    def after_commit(self, session: AsyncSession) -> None:
        """What a request's commit changed (tenants, domains, credentials) is gone from this
        replica's caches at once; the others hear it by NOTIFY."""
        self.tenant_cache.forget_changed(session)
        self.credentials.forget_changed(session)


def build_mailer(settings: Settings) -> Mailer | None:
    return smtp_mailer(
        settings.smtp_host,
        settings.smtp_port,
        sender=settings.mail_from,
        username=settings.smtp_username,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
        use_tls=settings.smtp_tls,
    )


def build_services(settings: Settings, *, clock: Clock = utc_now) -> AppServices:
    tenant_db = tenant_db_config(settings)
    platform_db = platform_db_config(settings)
    for config in (tenant_db, platform_db):
        track_tenant_changes(config)
    recorder = UsageRecorder(clock)
    reader = TenantReader(
        asyncpg_dsn(pooled_role_url(settings, "app")),
        max_size=settings.db_read_pool_size,
        connect_args=statement_cache_args(settings),
    )
    tenant_cache = TenantCache(
        tenant_db.get_engine(),
        ttl_seconds=settings.tenant_cache_ttl_seconds,
        max_entries=settings.tenant_cache_max_entries,
    )
    return AppServices(
        settings=settings,
        tenant_db=tenant_db,
        platform_db=platform_db,
        tokens=TokenIssuer(
            secret=settings.jwt_secret,
            issuer=settings.jwt_issuer,
            ttl_seconds=settings.access_token_ttl_seconds,
        ),
        passwords=PasswordHasher(
            rounds=settings.bcrypt_rounds, concurrency=settings.bcrypt_concurrency
        ),
        tenant_cache=tenant_cache,
        resolver=TenantResolver(
            tenant_cache,
            base_domain=settings.base_domain,
            shared_hosts=settings.shared_hosts,
            trusted_proxies=settings.trusted_proxies,
        ),
        store=build_store(settings),
        reader=reader,
        credentials=CredentialCache(
            reader,
            ttl_seconds=settings.tenant_cache_ttl_seconds,
            max_entries=settings.credential_cache_max_entries,
        ),
        key_hasher=ApiKeyHasher(settings.jwt_secret),
        key_uses=KeyUseRecorder(platform_db),
        mailer=build_mailer(settings),
        audit=AuditWriter(clock),
        recorder=recorder,
        rollups=RollupJob(platform_db, retention_days=settings.usage_retention_days),
        served=ServedBytesMeter(platform_db, recorder),
        rate_limiter=RateLimiter(reader, enabled=settings.rate_limits),
    )


def _singleton(value: Any) -> Provide:
    return Provide(lambda: value, use_cache=True, sync_to_thread=False)


def create_app(settings: Settings | None = None, *, clock: Clock = utc_now) -> Litestar:
    """`clock` stamps usage events (tests script days of usage with it)."""
    settings = settings or runtime_settings()
    configure_logging(json=settings.json_logs, level_name=settings.log_level)
    services = build_services(settings, clock=clock)
    # Straight to the database even behind a pooler: LISTEN needs a session of its own.
    listener_dsn = asyncpg_dsn(role_url(settings, "app"))
    tracing = (
        Tracing(
            settings.otlp_endpoint, service_name=settings.otel_service_name, version=__version__
        )
        if settings.otlp_endpoint
        else None
    )
    pools = {
        "tenant": lambda: pool_use(services.tenant_db.get_engine()),
        "read": services.reader.pool_use,
        "platform": lambda: pool_use(services.platform_db.get_engine()),
    }

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncGenerator[None, None]:
        listener = ChangeListener(
            lambda: asyncpg.connect(listener_dsn), [services.tenant_cache, services.credentials]
        )
        await listener.start()
        await services.reader.start()
        await services.store.start()
        reconciler = Reconciler(
            services.platform_db,
            services.store,
            pending_timeout=timedelta(seconds=settings.pending_upload_timeout_seconds),
        )
        await services.rollups.maintain_partitions()
        # What start-up made (about 200,000 objects: the framework, the models, the app) lives as
        # long as the process: out of the collector's way, a full collection scans only what
        # requests made (it took about 100 ms, every request of the worker waiting on it).
        gc.freeze()
        try:
            async with (
                in_background(reconciler.run_forever, settings.reconcile_interval_seconds),
                in_background(services.rollups.run_forever, settings.usage_rollup_interval_seconds),
                in_background(partial(sample_pools, pools), POOL_SAMPLE_SECONDS),
                # Only a `tenantry serve` worker has a runtime dir and a server to outlive.
                in_background(
                    partial(stop_when_orphaned, settings.runtime_dir or Path()),
                    ORPHAN_CHECK_SECONDS if settings.runtime_dir else 0,
                ),
            ):
                yield
        finally:
            forget_this_process()
            if tracing is not None:
                tracing.shutdown()
            await services.served.close()
            await services.key_uses.close()
            await services.store.close()
            await listener.stop()
            await services.reader.close()
            services.passwords.close()
            await services.tenant_db.get_engine().dispose()
            await services.platform_db.get_engine().dispose()

    app = Litestar(
        route_handlers=[
            api_index,
            HealthController,
            MetricsController,
            ProblemTypesController,
            PlatformAuthController,
            TenantsController,
            TenantAuthController,
            BrandingController,
            UsersAdminController,
            ApiKeysAdminController,
            SettingsAdminController,
            AuditAdminController,
            DomainsAdminController,
            AdminBrandingController,
            CategoriesAdminController,
            AudiencesAdminController,
            CategoriesController,
            AudiencesController,
            FilesController,
            UploadsController,
            TusController,
            UsageController,
            PlatformUsageController,
            *services.store.http_handlers(),
            create_static_files_router(
                SWAGGER_ASSETS_PATH,
                directories=[SWAGGER_ASSETS_DIR],
                opt={"zone": OPS},
                include_in_schema=False,
                name="swagger_assets",
            ),
        ],
        middleware=[
            AccessMiddleware(
                services.resolver,
                services.tokens,
                services.rate_limiter,
                CorsPolicy(settings.base_domain),
                Authenticator(
                    services.tokens, services.credentials, services.key_hasher, services.key_uses
                ),
            ),
        ],
        dependencies={
            # What a request changed is dropped from this replica's caches at its commit (the
            # others hear NOTIFY), so the very next request sees a suspension or a revocation.
            "db_session": Provide(session_provider(services.tenant_db, services.after_commit)),
            "platform_db_session": Provide(
                session_provider(services.platform_db, services.after_commit)
            ),
            "tenant": Provide(request_tenant, sync_to_thread=False),
            "settings": _singleton(settings),
            "drain": _singleton(Drain(settings.runtime_dir)),
            "store": _singleton(services.store),
            "reader": _singleton(services.reader),
            "audit": _singleton(services.audit),
            "tokens": _singleton(services.tokens),
            "passwords": _singleton(services.passwords),
            "tenant_cache": _singleton(services.tenant_cache),
            "tenant_engine": _singleton(services.tenant_db.get_engine()),
            "tenant_gate": _singleton(services.resolver.serves),
            "served_meter": _singleton(services.served.served),
            "mailer": _singleton(services.mailer),
            "key_hasher": _singleton(services.key_hasher),
            "dns_verifier": _singleton(DnsVerifier(settings.dns_nameservers, settings.dns_port)),
            "tenant_purges": _singleton(TENANT_PURGES),
        },
        exception_handlers={
            **EXCEPTION_HANDLERS,
            **{error: translated(translate_database_error) for error in DATABASE_ERRORS},
        },
        request_max_body_size=settings.request_max_body_bytes,
        logging_config=None,  # configure_logging owns the stream (Litestar's would replace it)
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(
            title="Tenantry",
            version=__version__,
            path="/schema",
            openapi_router=Router(
                path="/schema", route_handlers=[], opt={"zone": OPS}, include_in_schema=False
            ),
            description=API_DESCRIPTION,
            use_handler_docstrings=True,
            render_plugins=[
                SwaggerRenderPlugin(
                    path="/swagger",
                    js_url=f"{SWAGGER_ASSETS_PATH}/swagger-ui-bundle.js",
                    css_url=f"{SWAGGER_ASSETS_PATH}/swagger-ui.css",
                    standalone_preset_js_url=f"{SWAGGER_ASSETS_PATH}/swagger-ui-standalone-preset.js",
                    favicon="",
                )
            ],
        ),
        debug=False,
    )
    document_app(app)
    app.state.services = services
    # Read by the providers of the hottest routes rather than injected (see tenantry.files.deps).
    app.state.file_backends = FileBackends(
        services.reader,
        services.store,
        services.recorder,
        UploadLimits(
            UploadSlots(services.reader, enabled=settings.rate_limits), services.rate_limiter
        ),
        settings.direct_upload_ttl_seconds,
    )
    app.state.auth_backends = AuthBackends(
        settings,
        services.tokens,
        services.passwords,
        services.reader,
        services.recorder,
        services.mailer,
    )
    # Around Litestar's whole handler, not in its middleware list (see tenantry.lib.observe);
    # tracing outside it, so every log line of a request names the request's span.
    app.asgi_handler = ObservedApp(
        app.asgi_handler, metrics_tenants=frozenset(settings.metrics_tenants), tracing=tracing
    )
    if tracing is not None:
        app.asgi_handler = tracing.wrap(app.asgi_handler)
    return app
