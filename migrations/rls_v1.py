"""RLS for tenant tables, as migrations 0001, 0002 and 0004 applied it (version 1).

FROZEN: never edit this file. Migrations that already ran import it, and a migration must do
today exactly what it did when it ran. A changed policy is a new helper (`rls_v2.py`) and a new
migration that moves the existing tables to it.

It lives in `migrations/`, not in the application package, so that no change to the application
can change history. `env.py` puts this directory on `sys.path`.
"""

from alembic import op

TENANT_PREDICATE = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"


def protect_tenant_table(table: str) -> None:
    """ENABLE + FORCE RLS, the app policy on the tenant setting, the platform's explicit policy."""
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {table} TO tenantry_app "
        f"USING ({TENANT_PREDICATE}) WITH CHECK ({TENANT_PREDICATE})"
    )
    op.execute(
        f"CREATE POLICY platform_access ON {table} TO tenantry_platform USING (true) WITH CHECK (true)"
    )
    op.execute(
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO tenantry_app, tenantry_platform"
    )
