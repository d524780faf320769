"""The app-wide singletons (built once at start-up), reachable from any scope or request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litestar.connection import ASGIConnection
from litestar.types import Scope

if TYPE_CHECKING:
    from advanced_alchemy.config import SQLAlchemyAsyncConfig

    from tenantry.auth.passwords import PasswordHasher
    from tenantry.auth.tokens import TokenIssuer
    from tenantry.config import Settings
    from tenantry.db.reads import TenantReader
    from tenantry.storage import ObjectStore
    from tenantry.tenancy.cache import TenantCache


@dataclass(frozen=True, slots=True)
class AppServices:
    settings: Settings
    tenant_db: SQLAlchemyAsyncConfig
    platform_db: SQLAlchemyAsyncConfig
    tokens: TokenIssuer
    passwords: PasswordHasher
    tenant_cache: TenantCache
    store: ObjectStore
    reader: TenantReader

    @staticmethod
    def of(source: Scope | ASGIConnection[Any, Any, Any, Any]) -> AppServices:
        """From a request (or websocket) or a raw ASGI scope."""
        app = source.app if isinstance(source, ASGIConnection) else source["app"]
        services: AppServices = app.state.services
        return services
