"""Taxonomy routes. Categories and audiences share one shape, so each route is written once, in
a base controller, and bound to a path and a service per resource at the bottom of this module.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar, cast

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.admin.schemas import TermIn, TermOut
from tenantry.admin.services import AudienceService, CategoryService, TaxonomyService
from tenantry.auth.guards import requires_role
from tenantry.lib.schemas import Limit, Offset, Page
from tenantry.tenancy.context import TenantRecord

ControllerT = TypeVar("ControllerT", bound=Controller)
AnyTaxonomyService = TaxonomyService[Any]


class TaxonomyReadController(Controller):
    """Read-only: every user of the tenant (viewer and up) fills upload forms from these."""

    guards = [requires_role("viewer")]

    @get("/")
    async def list_terms(
        self,
        taxonomy: NamedDependency[AnyTaxonomyService],
        limit: Limit = 20,
        offset: Offset = 0,
    ) -> Page[TermOut]:
        """The tenant's terms, sorted by name, in pages (`limit` at most 100): a form that
        needs them all asks for `limit=100` and pages on while `offset + limit < total`."""
        return await taxonomy.list_terms(limit=limit, offset=offset)


class TaxonomyAdminController(TaxonomyReadController):
    """Tenant admins and owners manage the taxonomy."""

    guards = [requires_role("admin")]

    @post("/")
    async def create_term(
        self, data: JSONBody[TermIn], taxonomy: NamedDependency[AnyTaxonomyService]
    ) -> TermOut:
        """The name is trimmed; a name the tenant already uses is 409 (`*_exists`)."""
        return await taxonomy.create_term(data)

    @get("/{term_id:uuid}")
    async def get_term(
        self, term_id: FromPath[uuid.UUID], taxonomy: NamedDependency[AnyTaxonomyService]
    ) -> TermOut:
        return await taxonomy.get_term(term_id)

    @patch("/{term_id:uuid}")
    async def rename_term(
        self,
        term_id: FromPath[uuid.UUID],
        data: JSONBody[TermIn],
        taxonomy: NamedDependency[AnyTaxonomyService],
    ) -> TermOut:
        """Rename; files keep referring to the term by id."""
        return await taxonomy.rename_term(term_id, data)

    @delete("/{term_id:uuid}", status_code=HTTP_204_NO_CONTENT)
    async def delete_term(
        self, term_id: FromPath[uuid.UUID], taxonomy: NamedDependency[AnyTaxonomyService]
    ) -> None:
        """Files are never deleted with a term: a deleted category leaves its files without a
        category (`category` becomes null); a deleted audience is taken off every file."""
        await taxonomy.delete_term(term_id)


def _provider(
    service_type: type[AnyTaxonomyService],
) -> Callable[[AsyncSession, TenantRecord], AnyTaxonomyService]:
    def provide(
        db_session: NamedDependency[AsyncSession], tenant: NamedDependency[TenantRecord]
    ) -> AnyTaxonomyService:
        return service_type(db_session, tenant.id)

    return provide


def _bind(
    base: type[ControllerT], name: str, path: str, service_type: type[AnyTaxonomyService]
) -> type[ControllerT]:
    """`base`'s routes at `path`, served by `service_type`."""
    attributes = {
        "path": path,
        "tags": ["admin" if issubclass(base, TaxonomyAdminController) else "taxonomy"],
        "dependencies": {"taxonomy": Provide(_provider(service_type), sync_to_thread=False)},
        "__module__": __name__,
    }
    return cast(type[ControllerT], type(name, (base,), attributes))


CategoriesAdminController = _bind(
    TaxonomyAdminController,
    "CategoriesAdminController",
    "/api/v1/admin/categories",
    CategoryService,
)
AudiencesAdminController = _bind(
    TaxonomyAdminController, "AudiencesAdminController", "/api/v1/admin/audiences", AudienceService
)
CategoriesController = _bind(
    TaxonomyReadController, "CategoriesController", "/api/v1/categories", CategoryService
)
AudiencesController = _bind(
    TaxonomyReadController, "AudiencesController", "/api/v1/audiences", AudienceService
)
TAXONOMY_CONTROLLERS = [
    CategoriesAdminController,
    AudiencesAdminController,
    CategoriesController,
    AudiencesController,
]
