"""Foundation: tenants, domains, platform admins, users, refresh tokens, RLS.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

from rls_v1 import protect_tenant_table

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


SCHEMA = [
    """
    CREATE TABLE tenants (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        slug varchar(63) NOT NULL CONSTRAINT uq_tenants_slug UNIQUE,
        name varchar(200) NOT NULL,
        status varchar(16) NOT NULL DEFAULT 'active'
            CHECK (status IN ('active', 'suspended', 'deleted')),
        plan varchar(32) NOT NULL DEFAULT 'standard',
        storage_quota_bytes bigint NOT NULL CHECK (storage_quota_bytes >= 0),
        max_file_bytes bigint NOT NULL CHECK (max_file_bytes > 0),
        settings jsonb NOT NULL DEFAULT '{}'::jsonb,
        branding jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz
    )
    """,
    "CREATE INDEX ix_tenants_status_created_at ON tenants (status, created_at)",
    """
    CREATE TABLE tenant_domains (
        domain varchar(253) PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        verified boolean NOT NULL DEFAULT true,
        is_primary boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    "CREATE INDEX ix_tenant_domains_tenant_id ON tenant_domains (tenant_id)",
    """
    CREATE TABLE platform_admins (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        email varchar(254) NOT NULL CONSTRAINT uq_platform_admins_email UNIQUE,
        password_hash varchar(60) NOT NULL,
        disabled boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE users (
        tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        email varchar(254) NOT NULL,
        password_hash varchar(60) NOT NULL,
        role varchar(16) NOT NULL CHECK (role IN ('owner', 'admin', 'editor', 'viewer')),
        disabled boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_users PRIMARY KEY (tenant_id, id),
        CONSTRAINT uq_users_tenant_id_email UNIQUE (tenant_id, email)
    )
    """,
    """
    CREATE TABLE refresh_tokens (
        tenant_id uuid NOT NULL,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL,
        family_id uuid NOT NULL,
        token_hash text NOT NULL,
        expires_at timestamptz NOT NULL,
        rotated_at timestamptz,
        revoked_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_refresh_tokens PRIMARY KEY (tenant_id, id),
        CONSTRAINT uq_refresh_tokens_tenant_id_token_hash UNIQUE (tenant_id, token_hash),
        CONSTRAINT fk_refresh_tokens_tenant_id_user_id_users FOREIGN KEY (tenant_id, user_id)
            REFERENCES users (tenant_id, id) ON DELETE CASCADE
    )
    """,
    "CREATE INDEX ix_refresh_tokens_tenant_id_family_id ON refresh_tokens (tenant_id, family_id)",
    "CREATE INDEX ix_refresh_tokens_tenant_id_user_id ON refresh_tokens (tenant_id, user_id)",
]

NOTIFY_ON_TENANT_CHANGE = [
    """
    CREATE FUNCTION notify_tenant_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('tenant_changed', COALESCE(NEW.tenant_id, OLD.tenant_id)::text);
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION notify_tenant_row_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('tenant_changed', COALESCE(NEW.id, OLD.id)::text);
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER tenants_notify AFTER INSERT OR UPDATE OR DELETE ON tenants
        FOR EACH ROW EXECUTE FUNCTION notify_tenant_row_changed()
    """,
    """
    CREATE TRIGGER tenant_domains_notify AFTER INSERT OR UPDATE OR DELETE ON tenant_domains
        FOR EACH ROW EXECUTE FUNCTION notify_tenant_changed()
    """,
]


def upgrade() -> None:
    # One statement per execute: asyncpg prepares each statement on its own.
    for statement in SCHEMA:
        op.execute(statement)
    # Tenant resolution needs to read tenants and domains; only the platform role changes them.
    op.execute("GRANT SELECT ON tenants, tenant_domains TO tenantry_app")
    op.execute(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON tenants, tenant_domains, platform_admins "
        "TO tenantry_platform"
    )
    for table in ("users", "refresh_tokens"):
        protect_tenant_table(table)
    # Every replica drops its cached host -> tenant entries when a tenant or domain changes.
    for statement in NOTIFY_ON_TENANT_CHANGE:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE refresh_tokens, users, platform_admins, tenant_domains, tenants CASCADE")
    op.execute("DROP FUNCTION notify_tenant_changed()")
    op.execute("DROP FUNCTION notify_tenant_row_changed()")
