"""create_app(): settings, engines, middleware order, routers."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg
from litestar import Litestar, Router
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin

from tenantry import __version__
from tenantry.admin.controllers import TAXONOMY_CONTROLLERS
from tenantry.auth.controllers import PlatformAuthController, TenantAuthController
from tenantry.auth.middleware import AuthMiddleware
from tenantry.auth.passwords import PasswordHasher
from tenantry.auth.tokens import TokenIssuer
from tenantry.config import Settings, runtime_settings
from tenantry.db.deps import provide_platform_session, provide_tenant_session
from tenantry.db.engines import asyncpg_dsn, platform_db_config, role_url, tenant_db_config
from tenantry.db.reads import TenantReader
from tenantry.files.controllers import FilesController, LocalStoreController
from tenantry.files.reconcile import Reconciler, periodic_reconciler
from tenantry.lib.errors import EXCEPTION_HANDLERS
from tenantry.lib.logging import RequestContextMiddleware, add_request_id_header, configure_logging
from tenantry.ops.controllers import HealthController
from tenantry.platform.controllers import TenantsController
from tenantry.runtime import AppServices
from tenantry.storage import S3Store
from tenantry.storage.factory import build_store
from tenantry.tenancy.cache import TenantCache, TenantChangeListener
from tenantry.tenancy.controllers import BrandingController
from tenantry.tenancy.deps import provide_tenant
from tenantry.tenancy.middleware import TenancyMiddleware
from tenantry.tenancy.zones import OPS


def build_services(settings: Settings) -> AppServices:
    tenant_db = tenant_db_config(settings)
    return AppServices(
        settings=settings,
        tenant_db=tenant_db,
        platform_db=platform_db_config(settings),
        tokens=TokenIssuer(
            secret=settings.jwt_secret,
            issuer=settings.jwt_issuer,
            ttl_seconds=settings.access_token_ttl_seconds,
        ),
        passwords=PasswordHasher(
            rounds=settings.bcrypt_rounds, concurrency=settings.bcrypt_concurrency
        ),
        tenant_cache=TenantCache(
            tenant_db.get_engine(), ttl_seconds=settings.tenant_cache_ttl_seconds
        ),
        store=build_store(settings),
        reader=TenantReader(asyncpg_dsn(role_url(settings, "app")), max_size=settings.db_pool_size),
    )


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or runtime_settings()
    configure_logging(settings)
    services = build_services(settings)
    listener_dsn = asyncpg_dsn(role_url(settings, "app"))

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncGenerator[None, None]:
        listener = TenantChangeListener(
            services.tenant_cache, lambda: asyncpg.connect(listener_dsn)
        )
        await listener.start()
        await services.reader.start()
        if isinstance(services.store, S3Store):
            await services.store.start()
        reconciler = Reconciler(
            services.platform_db,
            services.store,
            pending_timeout=timedelta(seconds=settings.pending_upload_timeout_seconds),
        )
        try:
            async with periodic_reconciler(reconciler, settings.reconcile_interval_seconds):
                yield
        finally:
            if isinstance(services.store, S3Store):
                await services.store.close()
            await listener.stop()
            await services.reader.close()
            services.passwords.close()
            await services.tenant_db.get_engine().dispose()
            await services.platform_db.get_engine().dispose()

    app = Litestar(
        route_handlers=[
            HealthController,
            PlatformAuthController,
            TenantsController,
            TenantAuthController,
            BrandingController,
            *TAXONOMY_CONTROLLERS,
            FilesController,
            LocalStoreController,
        ],
        middleware=[RequestContextMiddleware(), TenancyMiddleware(), AuthMiddleware()],
        dependencies={
            "db_session": Provide(provide_tenant_session),
            "platform_db_session": Provide(provide_platform_session),
            "tenant": Provide(provide_tenant, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        before_send=[add_request_id_header],
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(
            title="Tenantry",
            version=__version__,
            path="/schema",
            openapi_router=Router(path="/schema", route_handlers=[], opt={"zone": OPS}),
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
        ),
        debug=False,
    )
    app.state.services = services
    return app
