"""Taxonomy rules, shared by categories and audiences: one service, parametrised by the model.

Names are trimmed and unique per tenant. Every query filters by `tenant_id` explicitly; RLS on
the tenant engine is the safety net, not the filter.
"""

from __future__ import annotations

import uuid
from typing import ClassVar, TypeVar

from advanced_alchemy.filters import LimitOffset, OrderBy
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.admin.schemas import TermIn, TermOut
from tenantry.db.models import Audience, Category
from tenantry.files import rollup
from tenantry.lib.errors import Conflict, NotFound
from tenantry.lib.schemas import Page

TermT = TypeVar("TermT", Category, Audience)


class CategoryRepository(SQLAlchemyAsyncRepository[Category]):
    model_type = Category


class AudienceRepository(SQLAlchemyAsyncRepository[Audience]):
    model_type = Audience


class TaxonomyService(SQLAlchemyAsyncRepositoryService[TermT, SQLAlchemyAsyncRepository[TermT]]):
    """A tenant's list of named terms; subclasses name the model and the noun in error codes."""

    noun: ClassVar[str]

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        super().__init__(session=session)
        self.tenant_id = tenant_id

    # -- reads ---------------------------------------------------------------------------

    async def list_terms(self, *, limit: int, offset: int) -> Page[TermOut]:
        model = self.repository.model_type
        terms, total = await self.repository.get_many_and_count(
            model.tenant_id == self.tenant_id,
            OrderBy("name", "asc"),
            LimitOffset(limit=limit, offset=offset),
        )
        return Page(
            items=[self._render(term) for term in terms], total=total, limit=limit, offset=offset
        )

    async def get_term(self, term_id: uuid.UUID) -> TermOut:
        return self._render(await self._load(term_id))

    # -- writes --------------------------------------------------------------------------

    async def create_term(self, data: TermIn) -> TermOut:
        term = self.repository.model_type(tenant_id=self.tenant_id, name=data.name.strip())
        self.repository.session.add(term)
        await self._flush_unique(term.name)
        return self._render(term)

    async def rename_term(self, term_id: uuid.UUID, data: TermIn) -> TermOut:
        term = await self._load(term_id)
        term.name = data.name.strip()
        await self._flush_unique(term.name)
        return self._render(term)

    async def delete_term(self, term_id: uuid.UUID) -> None:
        model = self.repository.model_type
        result = await self.repository.session.execute(
            delete(model).where(model.tenant_id == self.tenant_id, model.id == term_id)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise self._not_found(term_id)
        # The database took the term off its files (SET NULL / CASCADE): recount that dimension.
        await rollup.recount(self.repository.session, self.tenant_id, self.noun)

    async def ensure_names(self, names: list[str]) -> int:
        """Create the names that do not exist yet (never deletes); how many were created."""
        wanted = list(dict.fromkeys(name.strip() for name in names))
        if not wanted:
            return 0
        model = self.repository.model_type
        created = await self.repository.session.execute(
            insert(model)
            .values([{"tenant_id": self.tenant_id, "name": name} for name in wanted])
            .on_conflict_do_nothing(index_elements=["tenant_id", "name"])
            .returning(model.id)
        )
        return len(created.all())

    # -- rules ---------------------------------------------------------------------------

    async def _load(self, term_id: uuid.UUID) -> TermT:
        model = self.repository.model_type
        term = await self.repository.get_one_or_none(
            model.tenant_id == self.tenant_id, model.id == term_id
        )
        if term is None:
            raise self._not_found(term_id)
        return term

    def _not_found(self, term_id: uuid.UUID) -> NotFound:
        # A missing id and another tenant's id get the same answer.
        return NotFound(f"no {self.noun} {term_id}", code=f"{self.noun}_not_found")

    async def _flush_unique(self, name: str) -> None:
        try:
            await self.repository.session.flush()
        except IntegrityError as exc:
            raise Conflict(
                f"a {self.noun} named '{name}' exists", code=f"{self.noun}_exists", field="name"
            ) from exc

    @staticmethod
    def _render(term: Category | Audience) -> TermOut:
        return TermOut(id=term.id, name=term.name, created_at=term.created_at)


class CategoryService(TaxonomyService[Category]):
    repository_type = CategoryRepository
    noun = "category"


class AudienceService(TaxonomyService[Audience]):
    repository_type = AudienceRepository
    noun = "audience"
