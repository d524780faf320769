"""Recount the file stats rollup from the files, for every tenant.

0004's backfill ran as `tenantry_owner`. `files` and `file_audiences` have FORCE ROW LEVEL
SECURITY and no policy for the owner, so the owner saw no rows: every database that held ready
files before 0004 got an empty rollup, and has kept counting from zero since. 0004 already ran
where it ran and stays as it is; this revision repairs the rollup in place.

How the owner reads: temporary policies for `tenantry_owner` only (reading `files` and
`file_audiences`, rewriting `file_stats`), dropped again before the end. RLS stays ENABLE and
FORCE on every table at every statement, and the owner gains exactly what the recount needs;
turning FORCE off instead would lift RLS from the whole table for the owner. Both are
transactional: the migration runs in one transaction, so no other session ever sees a policy,
and CREATE POLICY holds an ACCESS EXCLUSIVE lock on each table until commit, so no writer can
change a file or its stats between the recount and the commit. Tables are locked in the order
the app's writers take them (files, then file_audiences, then file_stats).

Idempotent: the rollup is deleted and rebuilt from the files, whatever it held. On an empty
database it inserts nothing.

`tenant_usage` is left alone, because no migration can have made it wrong: 0002 created it in
the same migration as `files`, so no file existed yet and the zero it gave every tenant was
exact, and since then every change to a ready file changes the counter in the same transaction
(no migration since has touched files). Rewriting the live quota counter without a cause would
only race with the uploads it meters.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, command): the owner reads the files and rewrites the rollup, for this migration only.
OWNER_ACCESS = [("files", "SELECT"), ("file_audiences", "SELECT"), ("file_stats", "ALL")]
POLICY = "migration_0005_recount"

RECOUNT = """
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


def upgrade() -> None:
    for table, command in OWNER_ACCESS:
        op.execute(
            f"CREATE POLICY {POLICY} ON {table} FOR {command} TO tenantry_owner "
            "USING (true)" + (" WITH CHECK (true)" if command == "ALL" else "")
        )
    op.execute("DELETE FROM file_stats")
    op.execute(RECOUNT)
    for table, _ in OWNER_ACCESS:
        op.execute(f"DROP POLICY {POLICY} ON {table}")


def downgrade() -> None:
    # Nothing to undo: the rollup is correct now, and 0004's downgrade drops it anyway.
    pass
