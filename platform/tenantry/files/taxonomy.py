"""The taxonomy files are classified by: a tenant's categories and audiences.

Both are the same shape (a name unique per tenant), so one service serves both, told by a
`TermKind` which model, rollup dimension and error codes are its own. Deleting a term changes
files in the database (ON DELETE SET NULL / CASCADE), so it takes the tenant's write lock and
recounts that dimension of the stats rollup in the same transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

import msgspec
from advanced_alchemy.filters import LimitOffset, OrderBy
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db.audit import SYSTEM, Actor, AuditWriter
from tenantry.db.enums import StatsDimension
from tenantry.db.models import Audience, Category
from tenantry.db.repository import TenantScopedRepository
from tenantry.files import rollup
from tenantry.files.repository import lock_counters
from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.lib.schemas import Page

# At least one non-blank character (msgspec patterns search, they do not anchor); the service
# trims, so "  Skills " is stored as "Skills" and a blank name never reaches the database.
TermName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"\S")]
TermT = TypeVar("TermT", Category, Audience)


class TermIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A category or audience to create, or its new name."""

    name: TermName


class TermOut(msgspec.Struct, kw_only=True):
    """A category or an audience: the two share one shape."""

    id: uuid.UUID
    name: str
    created_at: datetime


@dataclass(frozen=True)
class TermKind(Generic[TermT]):
    model: type[TermT]
    noun: str
    dimension: StatsDimension
    not_found: ErrorCode
    exists: ErrorCode


CATEGORIES = TermKind(
    Category,
    "category",
    StatsDimension.CATEGORY,
    ErrorCode.CATEGORY_NOT_FOUND,
    ErrorCode.CATEGORY_EXISTS,
)
AUDIENCES = TermKind(
    Audience,
    "audience",
    StatsDimension.AUDIENCE,
    ErrorCode.AUDIENCE_NOT_FOUND,
    ErrorCode.AUDIENCE_EXISTS,
)


class TermRepository(TenantScopedRepository[Any]):
    """A scoped repository for the kind's model (set per instance, not per class)."""

    def __init__(self, kind: TermKind[Any], *, session: AsyncSession, tenant_id: uuid.UUID):
        self.model_type = kind.model
        super().__init__(session=session, tenant_id=tenant_id)


class TaxonomyService(Generic[TermT]):
    def __init__(
        self,
        kind: TermKind[TermT],
        session: AsyncSession,
        tenant_id: uuid.UUID,
        *,
        actor: Actor = SYSTEM,
        audit: AuditWriter | None = None,
    ) -> None:
        self.kind: TermKind[TermT] = kind
        self.tenant_id = tenant_id
        self.terms = TermRepository(kind, session=session, tenant_id=tenant_id)
        self.session = session
        self.actor = actor
        self.audit = audit or AuditWriter()

    async def list_terms(self, *, limit: int, offset: int) -> Page[TermOut]:
        terms, total = await self.terms.get_many_and_count(
            OrderBy("name", "asc"), LimitOffset(limit=limit, offset=offset)
        )
        return Page(
            items=[_render(term) for term in terms], total=total, limit=limit, offset=offset
        )

    async def get_term(self, term_id: uuid.UUID) -> TermOut:
        return _render(await self._load(term_id))

    async def create_term(self, data: TermIn) -> TermOut:
        term = self.kind.model(tenant_id=self.tenant_id, name=data.name.strip())
        self.terms.session.add(term)
        await self._flush_unique(term.name)
        await self._record("created", term.id, after={"name": term.name})
        return _render(term)

    async def rename_term(self, term_id: uuid.UUID, data: TermIn) -> TermOut:
        term = await self._load(term_id)
        before = {"name": term.name}
        term.name = data.name.strip()
        await self._flush_unique(term.name)
        await self._record("renamed", term.id, before=before, after={"name": term.name})
        return _render(term)

    async def delete_term(self, term_id: uuid.UUID) -> None:
        await lock_counters(self.terms.session, self.tenant_id)
        if not await self.terms.delete_where(self.kind.model.id == term_id):
            raise self._not_found(term_id)
        # The database took the term off its files (SET NULL / CASCADE): recount that dimension.
        await rollup.recount(self.terms.session, self.tenant_id, self.kind.dimension)
        await self._record("deleted", term_id)

    async def _record(
        self,
        verb: str,
        term_id: uuid.UUID,
        *,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> None:
        await self.audit.record(
            self.session,
            self.tenant_id,
            self.actor,
            f"{self.kind.noun}.{verb}",
            target_type=self.kind.noun,
            target_id=str(term_id),
            before=before,
            after=after,
        )

    async def ensure_names(self, names: list[str]) -> int:
        """Create the names that do not exist yet (never deletes); how many were created."""
        wanted = list(dict.fromkeys(name.strip() for name in names))
        if not wanted:
            return 0
        model = self.kind.model
        created = await self.terms.session.execute(
            insert(model)
            .values([{"tenant_id": self.tenant_id, "name": name} for name in wanted])
            .on_conflict_do_nothing(index_elements=["tenant_id", "name"])
            .returning(model.id)
        )
        return len(created.all())

    async def _load(self, term_id: uuid.UUID) -> TermT:
        term: TermT | None = await self.terms.get_one_or_none(self.kind.model.id == term_id)
        if term is None:
            raise self._not_found(term_id)
        return term

    def _not_found(self, term_id: uuid.UUID) -> DomainError:
        # A missing id and another tenant's id get the same answer.
        return DomainError(self.kind.not_found, f"no {self.kind.noun} {term_id}")

    async def _flush_unique(self, name: str) -> None:
        try:
            await self.terms.session.flush()
        except IntegrityError as exc:
            raise DomainError(
                self.kind.exists, f"a {self.kind.noun} named '{name}' exists", field="name"
            ) from exc


def _render(term: Category | Audience) -> TermOut:
    return TermOut(id=term.id, name=term.name, created_at=term.created_at)
