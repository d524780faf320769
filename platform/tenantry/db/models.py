"""ORM models.

Global tables (`tenants`, `tenant_domains`, `platform_admins`) have no RLS. Every tenant table
has `tenant_id` leading its primary key, its unique constraints and its foreign keys, and is
protected by the RLS policies written in the migrations (see `migrations/versions`).

The migrations make the schema; these models describe it, keys, indexes and server defaults
included, and tests/integration/test_migrations.py checks that both agree. CHECK constraints
live in the migrations only.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    CHAR,
    BigInteger,
    Boolean,
    DateTime,
    Double,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    Sequence,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import UserDefinedType

from tenantry.db.enums import (
    ActorType,
    FileStatus,
    Role,
    StatsDimension,
    TenantStatus,
    UploadProtocol,
    UploadState,
    UsageDimension,
    UsageKind,
    UserTokenPurpose,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _str_enum(enum: type[StrEnum]) -> Enum:
    """A varchar(16) holding the members' values; the CHECK constraint is the migrations'."""
    return Enum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=16,
        values_callable=lambda members: [member.value for member in members],
    )


def _tenant_fk() -> Mapped[uuid.UUID]:
    """`tenant_id` leading the primary key, referencing the global `tenants` table."""
    return mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))


def _created_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


def _updated_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), onupdate=func.now())


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # Server-made values (ids, timestamps) come back in RETURNING: no lazy load after a flush.
    __mapper_args__ = {"eager_defaults": True}


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = _uuid_pk()
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[TenantStatus] = mapped_column(
        _str_enum(TenantStatus), server_default=TenantStatus.ACTIVE.value
    )
    plan: Mapped[str] = mapped_column(String(32), server_default="standard")
    storage_quota_bytes: Mapped[int] = mapped_column(BigInteger)
    max_file_bytes: Mapped[int] = mapped_column(BigInteger)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    branding: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    # The operator's overrides of the plan's rates and upload concurrency (tenancy.limits).
    limits: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_tenants_status_created_at", "status", "created_at"),)


class RateBucket(Base):
    """A tenant's token bucket, leased from in batches by every process (UNLOGGED)."""

    __tablename__ = "rate_buckets"

    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    bucket: Mapped[str] = mapped_column(String(16), primary_key=True)
    tokens: Mapped[float] = mapped_column(Double)
    granted: Mapped[int]
    refreshed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = {"prefixes": ["UNLOGGED"]}


class UploadSlot(Base):
    """One upload in flight, a lease its process renews (UNLOGGED)."""

    __tablename__ = "upload_slots"

    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = {"prefixes": ["UNLOGGED"]}


class TenantDomain(Base):
    __tablename__ = "tenant_domains"

    domain: Mapped[str] = mapped_column(String(253), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    verified: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    is_primary: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime] = _created_at()
    # A domain a tenant asked for: verified once DNS carries this token in a TXT record.
    verification_token: Mapped[str | None] = mapped_column(String(64))
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_tenant_domains_tenant_id", "tenant_id"),)


class PlatformAdmin(Base):
    __tablename__ = "platform_admins"

    id: Mapped[uuid.UUID] = _uuid_pk()
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(60))
    disabled: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime] = _created_at()


class User(Base):
    __tablename__ = "users"

    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    id: Mapped[uuid.UUID] = _uuid_pk()
    email: Mapped[str] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(60))
    role: Mapped[Role] = mapped_column(_str_enum(Role))
    disabled: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()
    display_name: Mapped[str | None] = mapped_column(String(200))
    # In every access token; bumped to revoke them all (migration 0007).
    token_epoch: Mapped[int] = mapped_column(Integer, server_default="0")

    __table_args__ = (UniqueConstraint("tenant_id", "email"),)


class UserToken(Base):
    """A one-time token sent to a user: an invitation or a password reset (hash only)."""

    __tablename__ = "user_tokens"

    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    id: Mapped[uuid.UUID] = _uuid_pk()
    user_id: Mapped[uuid.UUID]
    purpose: Mapped[UserTokenPurpose] = mapped_column(_str_enum(UserTokenPurpose))
    token_hash: Mapped[str] = mapped_column(CHAR(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created_at()

    __table_args__ = (
        UniqueConstraint("tenant_id", "token_hash"),
        ForeignKeyConstraint(
            ["tenant_id", "user_id"], ["users.tenant_id", "users.id"], ondelete="CASCADE"
        ),
        Index("ix_user_tokens_tenant_id_user_id", "tenant_id", "user_id"),
    )


class ApiKey(Base):
    """A machine credential of a tenant: a role, a keyed hash of its secret, an optional end."""

    __tablename__ = "api_keys"

    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[Role] = mapped_column(_str_enum(Role))
    secret_hash: Mapped[str] = mapped_column(CHAR(64))
    created_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = _created_at()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "created_by"],
            ["users.tenant_id", "users.id"],
            ondelete="SET NULL (created_by)",
        ),
    )


class AuditEntry(Base):
    """Append-only: one row per admin action on a tenant (its admins' or the operator's)."""

    __tablename__ = "audit_log"

    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    id: Mapped[uuid.UUID] = _uuid_pk()
    occurred_at: Mapped[datetime] = _created_at()
    actor_type: Mapped[ActorType] = mapped_column(_str_enum(ActorType))
    actor_id: Mapped[uuid.UUID | None]
    actor_label: Mapped[str | None] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(253))
    summary: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    request_id: Mapped[str | None] = mapped_column(String(64))
    client_address: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_audit_log_tenant_id_occurred_at", "tenant_id", "occurred_at"),)


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = _uuid_pk()
    user_id: Mapped[uuid.UUID]
    family_id: Mapped[uuid.UUID]
    token_hash: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created_at()

    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "user_id"], ["users.tenant_id", "users.id"], ondelete="CASCADE"
        ),
        UniqueConstraint("tenant_id", "token_hash"),
        Index("ix_refresh_tokens_tenant_id_family_id", "tenant_id", "family_id"),
        Index("ix_refresh_tokens_tenant_id_user_id", "tenant_id", "user_id"),
    )


class Category(Base):
    __tablename__ = "categories"

    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = _created_at()

    __table_args__ = (UniqueConstraint("tenant_id", "name"),)


class Audience(Base):
    __tablename__ = "audiences"

    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = _created_at()

    __table_args__ = (UniqueConstraint("tenant_id", "name"),)


class File(Base):
    __tablename__ = "files"

    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    id: Mapped[uuid.UUID] = _uuid_pk()
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, server_default="")
    category_id: Mapped[uuid.UUID | None]
    language: Mapped[str | None] = mapped_column(String(2))
    content_type: Mapped[str | None] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger, server_default="0")
    sha256: Mapped[str | None] = mapped_column(CHAR(64))
    original_filename: Mapped[str] = mapped_column(String(255))
    storage_key: Mapped[str] = mapped_column(Text)
    status: Mapped[FileStatus] = mapped_column(
        _str_enum(FileStatus), server_default=FileStatus.PENDING.value
    )
    uploaded_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()

    __table_args__ = (
        # The database nulls only the referencing column, never tenant_id (PostgreSQL 15+).
        ForeignKeyConstraint(
            ["tenant_id", "category_id"],
            ["categories.tenant_id", "categories.id"],
            ondelete="SET NULL (category_id)",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "uploaded_by"],
            ["users.tenant_id", "users.id"],
            ondelete="SET NULL (uploaded_by)",
        ),
        # The listing's default order, ready files only.
        Index(
            "ix_files_tenant_id_created_at_ready",
            "tenant_id",
            text("created_at DESC"),
            text("id DESC"),
            postgresql_where=text("status = 'ready'"),
        ),
        Index("ix_files_tenant_id_category_id", "tenant_id", "category_id"),
        Index("ix_files_tenant_id_language", "tenant_id", "language"),
        Index("ix_files_tenant_id_content_type", "tenant_id", "content_type"),
        Index("ix_files_tenant_id_uploaded_by", "tenant_id", "uploaded_by"),
        Index("ix_files_tenant_id_status_updated_at", "tenant_id", "status", "updated_at"),
    )


class UploadSession(Base):
    """A direct upload: the client PUTs parts to the store, the API completes and verifies it
    (migration 0009). Its reserved bytes are in `tenant_usage.reserved_bytes` while it is not
    settled."""

    __tablename__ = "upload_sessions"

    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    id: Mapped[uuid.UUID] = _uuid_pk()
    file_id: Mapped[uuid.UUID]
    # The store's multipart upload id; null until the store has begun the upload.
    store_upload_id: Mapped[str | None] = mapped_column(String(1024))
    declared_size: Mapped[int] = mapped_column(BigInteger)
    declared_type: Mapped[str] = mapped_column(String(100))
    part_size: Mapped[int] = mapped_column(BigInteger)
    reserved_bytes: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[UploadState] = mapped_column(
        _str_enum(UploadState), server_default=UploadState.OPEN.value
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # tus uploads (migration 0010): the offset, durable in the store; the appending PATCH's lease.
    protocol: Mapped[UploadProtocol] = mapped_column(
        _str_enum(UploadProtocol), server_default=UploadProtocol.DIRECT.value
    )
    received_bytes: Mapped[int] = mapped_column(BigInteger, server_default="0")
    writing_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()

    __table_args__ = (
        UniqueConstraint("tenant_id", "file_id"),
        ForeignKeyConstraint(
            ["tenant_id", "file_id"], ["files.tenant_id", "files.id"], ondelete="CASCADE"
        ),
        Index("ix_upload_sessions_tenant_id_state_expires_at", "tenant_id", "state", "expires_at"),
    )


class FileAudience(Base):
    __tablename__ = "file_audiences"

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    file_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    audience_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)

    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "file_id"], ["files.tenant_id", "files.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["tenant_id", "audience_id"],
            ["audiences.tenant_id", "audiences.id"],
            ondelete="CASCADE",
        ),
        Index("ix_file_audiences_tenant_id_audience_id", "tenant_id", "audience_id"),
    )


class Xid8(UserDefinedType[str]):
    """Postgres's 64-bit transaction id; the app only ever compares it inside SQL."""

    cache_ok = True

    def get_col_spec(self, **_: Any) -> str:
        return "XID8"


class UsageEvent(Base):
    """Append-only: one row per upload, download link, served download, delete, login and
    signup. Partitioned by month of `occurred_at` (migration 0006: the partitions are tables
    the migrations' functions make, not models). `(txid, seq)` orders events for readers that
    resume (the rollup job, the export)."""

    __tablename__ = "usage_events"

    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    occurred_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), primary_key=True, server_default=func.now()
    )
    id: Mapped[uuid.UUID] = _uuid_pk()
    kind: Mapped[UsageKind] = mapped_column(_str_enum(UsageKind))
    user_id: Mapped[uuid.UUID | None]
    user_role: Mapped[Role | None] = mapped_column(_str_enum(Role))
    file_id: Mapped[uuid.UUID | None]
    bytes: Mapped[int] = mapped_column(BigInteger, server_default="0")
    category_id: Mapped[uuid.UUID | None]
    language: Mapped[str | None] = mapped_column(String(2))
    audience_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), server_default=text("'{}'"))
    content_type: Mapped[str | None] = mapped_column(String(100))
    txid: Mapped[str] = mapped_column(Xid8(), server_default=text("pg_current_xact_id()"))
    seq: Mapped[int] = mapped_column(BigInteger, Sequence("usage_events_seq"))

    __table_args__ = (
        Index("ix_usage_events_tenant_id_occurred_at", "tenant_id", "occurred_at"),
        Index("ix_usage_events_txid_seq", "txid", "seq"),
        {"postgresql_partition_by": "RANGE (occurred_at)"},
    )


class UsageDaily(Base):
    """The usage rollup: events of one tenant, day (in its reporting zone) and dimension key,
    counted by kind. Written by the rollup job only (`tenantry.usage.rollups`)."""

    __tablename__ = "usage_daily"

    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    # Key order (tenant, dimension, day, key): a report reads one dimension's days.
    dimension: Mapped[UsageDimension] = mapped_column(_str_enum(UsageDimension), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    uploads: Mapped[int] = mapped_column(BigInteger, server_default="0")
    downloads: Mapped[int] = mapped_column(BigInteger, server_default="0")
    deletes: Mapped[int] = mapped_column(BigInteger, server_default="0")
    logins: Mapped[int] = mapped_column(BigInteger, server_default="0")
    signups: Mapped[int] = mapped_column(BigInteger, server_default="0")
    bytes_in: Mapped[int] = mapped_column(BigInteger, server_default="0")
    bytes_out: Mapped[int] = mapped_column(BigInteger, server_default="0")
    bytes_served: Mapped[int] = mapped_column(BigInteger, server_default="0")


class UsageDailyUser(Base):
    """Who was active on a day: distinct users over any range are counted from these."""

    __tablename__ = "usage_daily_users"

    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    day: Mapped[date] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)


class UsageStorageDaily(Base):
    """Stored bytes and files at the end of a day, on days they changed (carried forward)."""

    __tablename__ = "usage_storage_daily"

    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    day: Mapped[date] = mapped_column(primary_key=True)
    storage_bytes: Mapped[int] = mapped_column(BigInteger)
    file_count: Mapped[int] = mapped_column(BigInteger)


class UsageRollupState(Base):
    """Global: the rollup job's watermark (one row)."""

    __tablename__ = "usage_rollup_state"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    txid: Mapped[str] = mapped_column(Xid8())
    seq: Mapped[int] = mapped_column(BigInteger)
    rolled_up_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class TenantUsage(Base):
    """The quota counter: current stored bytes and file count, changed atomically, and the bytes
    reserved by open direct uploads (the quota holds for the sum)."""

    __tablename__ = "tenant_usage"

    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    storage_bytes: Mapped[int] = mapped_column(BigInteger, server_default="0")
    file_count: Mapped[int] = mapped_column(BigInteger, server_default="0")
    updated_at: Mapped[datetime] = _updated_at()
    reserved_bytes: Mapped[int] = mapped_column(BigInteger, server_default="0")


class FileStat(Base):
    """The stats rollup (see `tenantry.files.rollup`): ready files per dimension and key."""

    __tablename__ = "file_stats"

    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    dimension: Mapped[StatsDimension] = mapped_column(_str_enum(StatsDimension), primary_key=True)
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    files: Mapped[int] = mapped_column(BigInteger, server_default="0")
    bytes: Mapped[int] = mapped_column(BigInteger, server_default="0")
