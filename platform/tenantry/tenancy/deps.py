from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import NamedDependency

from tenantry.config import Settings
from tenantry.lib.http import request_origin


def provide_origin(request: Request[Any, Any, Any], settings: NamedDependency[Settings]) -> str:
    """Where absolute links (downloads, logos) point: the configured public origin, else the
    one the client used."""
    return settings.public_origin or request_origin(
        request.scope, request.headers, settings.trusted_proxies
    )
