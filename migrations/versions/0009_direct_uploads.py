"""Direct uploads: the client sends the bytes to the store, the API authorises and verifies.

`upload_sessions` holds one direct upload each: the file row it fills (`pending` files are
created with it), the store's multipart upload id (null until the store has begun it: the row is
committed first, as for every upload), the size and type the client declared, the
part size it was given, the bytes it reserved, when it expires and its state (`open` while parts
arrive, `completing` while one request verifies it, `completed` once the file is ready).

`tenant_usage.reserved_bytes` is the quota reservation: bytes promised to open direct uploads.
Every quota check, proxied uploads included, counts `storage_bytes + reserved_bytes`, and the
reservation moves into `storage_bytes` (or goes back) in the transaction that settles the
upload, so the two never exceed the quota together. It starts at 0: no upload is open yet.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

from rls_v1 import protect_tenant_table

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = [
    "ALTER TABLE tenant_usage ADD COLUMN reserved_bytes bigint NOT NULL DEFAULT 0",
    "ALTER TABLE tenant_usage ADD CONSTRAINT ck_tenant_usage_reserved_bytes_not_negative "
    "CHECK (reserved_bytes >= 0)",
    """
    CREATE TABLE upload_sessions (
        tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        file_id uuid NOT NULL,
        store_upload_id varchar(1024),
        declared_size bigint NOT NULL CHECK (declared_size > 0),
        declared_type varchar(100) NOT NULL,
        part_size bigint NOT NULL CHECK (part_size > 0),
        reserved_bytes bigint NOT NULL CHECK (reserved_bytes >= 0),
        state varchar(16) NOT NULL DEFAULT 'open'
            CHECK (state IN ('open', 'completing', 'completed')),
        expires_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_upload_sessions PRIMARY KEY (tenant_id, id),
        CONSTRAINT uq_upload_sessions_tenant_id_file_id UNIQUE (tenant_id, file_id),
        CONSTRAINT fk_upload_sessions_tenant_id_file_id_files FOREIGN KEY (tenant_id, file_id)
            REFERENCES files (tenant_id, id) ON DELETE CASCADE
    )
    """,
    "CREATE INDEX ix_upload_sessions_tenant_id_state_expires_at "
    "ON upload_sessions (tenant_id, state, expires_at)",
]


def upgrade() -> None:
    for statement in SCHEMA:
        op.execute(statement)
    protect_tenant_table("upload_sessions")


def downgrade() -> None:
    op.execute("DROP TABLE upload_sessions")
    op.execute(
        "ALTER TABLE tenant_usage DROP CONSTRAINT ck_tenant_usage_reserved_bytes_not_negative"
    )
    op.execute("ALTER TABLE tenant_usage DROP COLUMN reserved_bytes")
