"""What keeps the hottest routes cheap, checked on the app as built (the speed itself is
measured in benchmarks/, not here)."""

from __future__ import annotations

from litestar import Litestar
from litestar.routes import HTTPRoute

HOT_READS = {
    "/api/v1/files/{file_id:uuid}",
    "/api/v1/files",
    "/api/v1/files/stats",
    "/api/v1/auth/me",
}


def test_hot_routes_resolve_one_dependency_per_level(app: Litestar) -> None:
    """Litestar resolves a level of two or more dependencies in an anyio task group per
    request (litestar-org/litestar#4563); on these routes that was a quarter of the work."""
    found = set()
    for route in app.routes:
        if isinstance(route, HTTPRoute) and route.path in HOT_READS:
            _, kwargs_model = route.route_handler_map["GET"]
            batches = [sorted(d.key for d in batch) for batch in kwargs_model.dependency_batches]
            assert all(len(batch) == 1 for batch in batches), (route.path, batches)
            found.add(route.path)
    assert found == HOT_READS
