"""Listing index in the API's sort order; an `uploading` status that claims a pending file.

The first index sorted `id` ascending under `created_at DESC`, which the default sort
(`-created_at`, then `-id`) could not use without an extra sort step.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # `uploading`: a request has claimed the row and is streaming its content; no other
    # request may write the same object meanwhile.
    op.execute("ALTER TABLE files DROP CONSTRAINT files_status_check")
    op.execute(
        "ALTER TABLE files ADD CONSTRAINT files_status_check "
        "CHECK (status IN ('pending', 'uploading', 'ready', 'deleting'))"
    )
    op.execute("DROP INDEX ix_files_tenant_id_created_at")
    op.execute(
        "CREATE INDEX ix_files_tenant_id_created_at_ready ON files (tenant_id, created_at DESC, id DESC) "
        "WHERE status = 'ready'"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE files DROP CONSTRAINT files_status_check")
    op.execute(
        "ALTER TABLE files ADD CONSTRAINT files_status_check "
        "CHECK (status IN ('pending', 'ready', 'deleting'))"
    )
    op.execute("DROP INDEX ix_files_tenant_id_created_at_ready")
    op.execute(
        "CREATE INDEX ix_files_tenant_id_created_at ON files (tenant_id, created_at DESC, id)"
    )
