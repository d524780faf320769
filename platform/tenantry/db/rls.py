"""RLS for tenant tables, used by migrations: every tenant table gets exactly the same protection."""

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
