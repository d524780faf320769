"""Files and storage: taxonomy, files, audiences per file, access events, usage counters.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

from rls_v1 import protect_tenant_table

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ["categories", "audiences", "files", "file_audiences", "usage_events", "tenant_usage"]

SCHEMA = [
    """
    CREATE TABLE categories (
        tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        name varchar(100) NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_categories PRIMARY KEY (tenant_id, id),
        CONSTRAINT uq_categories_tenant_id_name UNIQUE (tenant_id, name)
    )
    """,
    """
    CREATE TABLE audiences (
        tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        name varchar(100) NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_audiences PRIMARY KEY (tenant_id, id),
        CONSTRAINT uq_audiences_tenant_id_name UNIQUE (tenant_id, name)
    )
    """,
    """
    CREATE TABLE files (
        tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        title varchar(200) NOT NULL,
        description text NOT NULL DEFAULT '',
        category_id uuid,
        language varchar(2),
        content_type varchar(100),
        size bigint NOT NULL DEFAULT 0 CHECK (size >= 0),
        sha256 char(64),
        original_filename varchar(255) NOT NULL,
        storage_key text NOT NULL,
        status varchar(16) NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'ready', 'deleting')),
        uploaded_by uuid,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_files PRIMARY KEY (tenant_id, id),
        CONSTRAINT fk_files_tenant_id_category_id_categories FOREIGN KEY (tenant_id, category_id)
            REFERENCES categories (tenant_id, id) ON DELETE SET NULL (category_id),
        CONSTRAINT fk_files_tenant_id_uploaded_by_users FOREIGN KEY (tenant_id, uploaded_by)
            REFERENCES users (tenant_id, id) ON DELETE SET NULL (uploaded_by)
    )
    """,
    "CREATE INDEX ix_files_tenant_id_created_at ON files (tenant_id, created_at DESC, id)",
    "CREATE INDEX ix_files_tenant_id_category_id ON files (tenant_id, category_id)",
    "CREATE INDEX ix_files_tenant_id_language ON files (tenant_id, language)",
    "CREATE INDEX ix_files_tenant_id_content_type ON files (tenant_id, content_type)",
    "CREATE INDEX ix_files_tenant_id_uploaded_by ON files (tenant_id, uploaded_by)",
    "CREATE INDEX ix_files_tenant_id_status_updated_at ON files (tenant_id, status, updated_at)",
    """
    CREATE TABLE file_audiences (
        tenant_id uuid NOT NULL,
        file_id uuid NOT NULL,
        audience_id uuid NOT NULL,
        CONSTRAINT pk_file_audiences PRIMARY KEY (tenant_id, file_id, audience_id),
        CONSTRAINT fk_file_audiences_tenant_id_file_id_files FOREIGN KEY (tenant_id, file_id)
            REFERENCES files (tenant_id, id) ON DELETE CASCADE,
        CONSTRAINT fk_file_audiences_tenant_id_audience_id_audiences FOREIGN KEY (tenant_id, audience_id)
            REFERENCES audiences (tenant_id, id) ON DELETE CASCADE
    )
    """,
    "CREATE INDEX ix_file_audiences_tenant_id_audience_id ON file_audiences (tenant_id, audience_id)",
    """
    CREATE TABLE usage_events (
        tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        occurred_at timestamptz NOT NULL DEFAULT now(),
        kind varchar(16) NOT NULL CHECK (kind IN ('upload', 'download', 'delete', 'login', 'signup')),
        user_id uuid,
        user_role varchar(16),
        file_id uuid,
        bytes bigint NOT NULL DEFAULT 0,
        category_id uuid,
        language varchar(2),
        audience_ids uuid[] NOT NULL DEFAULT '{}',
        content_type varchar(100),
        CONSTRAINT pk_usage_events PRIMARY KEY (tenant_id, id)
    )
    """,
    "CREATE INDEX ix_usage_events_tenant_id_occurred_at ON usage_events (tenant_id, occurred_at)",
    """
    CREATE TABLE tenant_usage (
        tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
        storage_bytes bigint NOT NULL DEFAULT 0 CHECK (storage_bytes >= 0),
        file_count bigint NOT NULL DEFAULT 0 CHECK (file_count >= 0),
        updated_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    "INSERT INTO tenant_usage (tenant_id) SELECT id FROM tenants",
]


def upgrade() -> None:
    for statement in SCHEMA:
        op.execute(statement)
    for table in TABLES:
        protect_tenant_table(table)
    # Events are append-only for the API: no UPDATE or DELETE for the app role.
    op.execute("REVOKE UPDATE, DELETE ON usage_events FROM tenantry_app")


def downgrade() -> None:
    op.execute("DROP TABLE " + ", ".join(reversed(TABLES)) + " CASCADE")
