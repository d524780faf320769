"""Noisy-neighbour limits and per-tenant cache invalidation.

`tenants.limits`: the operator's overrides of the plan's request rates and upload concurrency
(empty: the plan's). Existing tenants get `{}`, i.e. their plan's limits.

`rate_buckets` and `upload_slots` hold what every worker process and replica must agree on: each
tenant's token buckets (processes lease tokens from them in batches) and its uploads in flight
(leases that expire, so a crashed process frees its slots). Both are UNLOGGED: after a crash
they restart empty, which only means full buckets and no uploads in flight, both true after a
restart; in exchange no write to them costs WAL.

`NOTIFY tenant_changed` now carries which tenant, slug and domain changed (JSON), so every
replica drops those entries of its tenant cache instead of all of them: with a hundred thousand
tenants, provisioning one must not make every replica look every tenant up again.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

from rls_v1 import protect_tenant_table

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ["rate_buckets", "upload_slots"]

SCHEMA = [
    "ALTER TABLE tenants ADD COLUMN limits jsonb NOT NULL DEFAULT '{}'::jsonb",
    """
    CREATE UNLOGGED TABLE rate_buckets (
        tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        bucket varchar(16) NOT NULL,
        tokens double precision NOT NULL,
        granted integer NOT NULL,
        refreshed_at timestamptz NOT NULL,
        CONSTRAINT pk_rate_buckets PRIMARY KEY (tenant_id, bucket)
    )
    """,
    """
    CREATE UNLOGGED TABLE upload_slots (
        tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        id uuid NOT NULL,
        expires_at timestamptz NOT NULL,
        CONSTRAINT pk_upload_slots PRIMARY KEY (tenant_id, id)
    )
    """,
]

# Same trigger names and channel as 0001; only the payload changes (and listeners accept both).
NOTIFY_WITH_KEYS = [
    """
    CREATE OR REPLACE FUNCTION notify_tenant_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('tenant_changed', json_build_object(
            'tenant_id', COALESCE(NEW.tenant_id, OLD.tenant_id),
            'domains', array_remove(ARRAY[OLD.domain, NEW.domain], NULL))::text);
        RETURN NULL;
    END $$
    """,
    """
    CREATE OR REPLACE FUNCTION notify_tenant_row_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('tenant_changed', json_build_object(
            'tenant_id', COALESCE(NEW.id, OLD.id),
            'slugs', array_remove(ARRAY[OLD.slug, NEW.slug], NULL))::text);
        RETURN NULL;
    END $$
    """,
]

NOTIFY_TENANT_ID_ONLY = [
    """
    CREATE OR REPLACE FUNCTION notify_tenant_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('tenant_changed', COALESCE(NEW.tenant_id, OLD.tenant_id)::text);
        RETURN NULL;
    END $$
    """,
    """
    CREATE OR REPLACE FUNCTION notify_tenant_row_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('tenant_changed', COALESCE(NEW.id, OLD.id)::text);
        RETURN NULL;
    END $$
    """,
]


def upgrade() -> None:
    for statement in SCHEMA:
        op.execute(statement)
    for table in TABLES:
        protect_tenant_table(table)
    for statement in NOTIFY_WITH_KEYS:
        op.execute(statement)


def downgrade() -> None:
    for statement in NOTIFY_TENANT_ID_ONLY:
        op.execute(statement)
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE {table}")
    op.execute("ALTER TABLE tenants DROP COLUMN limits")
