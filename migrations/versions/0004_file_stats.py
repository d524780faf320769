"""File stats rollup: counts and bytes of ready files per tenant, dimension and key.

Kept current in the same transactions that change files, so `GET /files/stats` reads a few
dozen rows instead of scanning the tenant's files.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

from rls_v1 import protect_tenant_table

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE file_stats (
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            dimension varchar(16) NOT NULL
                CHECK (dimension IN ('total', 'category', 'language', 'content_type', 'audience')),
            key varchar(100) NOT NULL,
            files bigint NOT NULL DEFAULT 0,
            bytes bigint NOT NULL DEFAULT 0,
            CONSTRAINT pk_file_stats PRIMARY KEY (tenant_id, dimension, key)
        )
        """
    )
    # Backfill from the files that exist (RLS is not enabled on the new table yet).
    op.execute(
        """
        INSERT INTO file_stats (tenant_id, dimension, key, files, bytes)
        SELECT tenant_id, 'total', '', count(*), sum(size) FROM files WHERE status = 'ready'
            GROUP BY tenant_id
        UNION ALL SELECT tenant_id, 'category', COALESCE(category_id::text, ''), count(*), sum(size)
            FROM files WHERE status = 'ready' GROUP BY tenant_id, category_id
        UNION ALL SELECT tenant_id, 'language', COALESCE(language, ''), count(*), sum(size)
            FROM files WHERE status = 'ready' GROUP BY tenant_id, language
        UNION ALL SELECT tenant_id, 'content_type', COALESCE(content_type, ''), count(*), sum(size)
            FROM files WHERE status = 'ready' GROUP BY tenant_id, content_type
        UNION ALL SELECT f.tenant_id, 'audience', fa.audience_id::text, count(*), sum(f.size)
            FROM files f JOIN file_audiences fa ON fa.tenant_id = f.tenant_id AND fa.file_id = f.id
            WHERE f.status = 'ready' GROUP BY f.tenant_id, fa.audience_id
        """
    )
    protect_tenant_table("file_stats")


def downgrade() -> None:
    op.execute("DROP TABLE file_stats")
