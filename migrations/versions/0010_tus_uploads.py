"""Resumable (tus 1.0) uploads are upload sessions too.

`protocol` tells a direct upload (`direct`: the client PUTs parts to signed URLs) from a tus
upload (`tus`: the client PATCHes the bytes to the API, which appends them to the store's
staging). `received_bytes` is a tus upload's offset: the bytes the store holds durably, moved
only after they are. `writing_until` is the lease of the one PATCH appending right now (null
when none is): a second PATCH is refused while it runs, and a lease its process never gave back
(the process died) ends by itself. Existing sessions are direct uploads.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = [
    "ALTER TABLE upload_sessions ADD COLUMN protocol varchar(16) NOT NULL DEFAULT 'direct' "
    "CHECK (protocol IN ('direct', 'tus'))",
    "ALTER TABLE upload_sessions ADD COLUMN received_bytes bigint NOT NULL DEFAULT 0 "
    "CHECK (received_bytes >= 0)",
    "ALTER TABLE upload_sessions ADD COLUMN writing_until timestamptz",
]


def upgrade() -> None:
    for statement in SCHEMA:
        op.execute(statement)


def downgrade() -> None:
    for column in ("writing_until", "received_bytes", "protocol"):
        op.execute(f"ALTER TABLE upload_sessions DROP COLUMN {column}")
