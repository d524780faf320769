"""Tenant administration: display names and token epochs, one-time user tokens (invitations,
password resets), API keys, the audit log, domains that wait for verification.

Revocation: `users.token_epoch` is copied into every access token; bumping it (a disabled,
demoted or deleted user, a new password, logout everywhere) makes the user's live tokens fail.
A trigger sends `NOTIFY credentials_changed` with the tenant and user (or API key), so every
replica updates its in-memory epochs at once, with no database read per request. API keys
notify the same channel when they change.

`tenant_domains` gains RLS for the app role: every domain stays readable (tenant resolution
reads them by host), but a tenant's admins may only add, change or remove their own tenant's
(a domain request is `verified = false` with a TXT token until checked). Existing domains were
added by the operator and stay verified.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

from rls_v1 import TENANT_PREDICATE, protect_tenant_table

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ["user_tokens", "api_keys", "audit_log"]

SCHEMA = [
    "ALTER TABLE users ADD COLUMN display_name varchar(200)",
    "ALTER TABLE users ADD COLUMN token_epoch integer NOT NULL DEFAULT 0",
    """
    CREATE TABLE user_tokens (
        tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL,
        purpose varchar(16) NOT NULL CHECK (purpose IN ('invitation', 'password_reset')),
        token_hash char(64) NOT NULL,
        expires_at timestamptz NOT NULL,
        used_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_user_tokens PRIMARY KEY (tenant_id, id),
        CONSTRAINT uq_user_tokens_tenant_id_token_hash UNIQUE (tenant_id, token_hash),
        CONSTRAINT fk_user_tokens_tenant_id_user_id_users FOREIGN KEY (tenant_id, user_id)
            REFERENCES users (tenant_id, id) ON DELETE CASCADE
    )
    """,
    "CREATE INDEX ix_user_tokens_tenant_id_user_id ON user_tokens (tenant_id, user_id)",
    """
    CREATE TABLE api_keys (
        tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        name varchar(100) NOT NULL,
        role varchar(16) NOT NULL CHECK (role IN ('owner', 'admin', 'editor', 'viewer')),
        secret_hash char(64) NOT NULL,
        created_by uuid,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz,
        revoked_at timestamptz,
        last_used_at timestamptz,
        CONSTRAINT pk_api_keys PRIMARY KEY (tenant_id, id),
        CONSTRAINT fk_api_keys_tenant_id_created_by_users FOREIGN KEY (tenant_id, created_by)
            REFERENCES users (tenant_id, id) ON DELETE SET NULL (created_by)
    )
    """,
    """
    CREATE TABLE audit_log (
        tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        occurred_at timestamptz NOT NULL DEFAULT now(),
        actor_type varchar(16) NOT NULL
            CHECK (actor_type IN ('user', 'api_key', 'operator', 'system')),
        actor_id uuid,
        actor_label varchar(254),
        action varchar(64) NOT NULL,
        target_type varchar(32),
        target_id varchar(253),
        summary jsonb NOT NULL DEFAULT '{}'::jsonb,
        request_id varchar(64),
        client_address varchar(64),
        CONSTRAINT pk_audit_log PRIMARY KEY (tenant_id, id)
    )
    """,
    "CREATE INDEX ix_audit_log_tenant_id_occurred_at ON audit_log (tenant_id, occurred_at)",
    "ALTER TABLE tenant_domains ADD COLUMN verification_token varchar(64)",
    "ALTER TABLE tenant_domains ADD COLUMN verified_at timestamptz",
    "UPDATE tenant_domains SET verified_at = created_at WHERE verified",
    """
    CREATE FUNCTION notify_credentials_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('credentials_changed',
            TG_TABLE_NAME || ':' || COALESCE(NEW.tenant_id, OLD.tenant_id)::text
            || ':' || COALESCE(NEW.id, OLD.id)::text);
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER users_credentials_notify AFTER UPDATE OF token_epoch, disabled, role ON users
        FOR EACH ROW EXECUTE FUNCTION notify_credentials_changed()
    """,
    """
    CREATE TRIGGER users_deleted_notify AFTER DELETE ON users
        FOR EACH ROW EXECUTE FUNCTION notify_credentials_changed()
    """,
    """
    CREATE TRIGGER api_keys_notify AFTER UPDATE OF revoked_at, expires_at, role OR DELETE
        ON api_keys
        FOR EACH ROW EXECUTE FUNCTION notify_credentials_changed()
    """,
]


def upgrade() -> None:
    for statement in SCHEMA:
        op.execute(statement)
    for table in TABLES:
        protect_tenant_table(table)
    # The audit log is append-only for the API.
    op.execute("REVOKE UPDATE, DELETE ON audit_log FROM tenantry_app")
    # Domains: readable by all (resolution by host), writable by their own tenant only.
    op.execute("ALTER TABLE tenant_domains ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE tenant_domains FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY domain_lookup ON tenant_domains FOR SELECT TO tenantry_app USING (true)"
    )
    for command, clause in (
        ("INSERT", f"WITH CHECK ({TENANT_PREDICATE})"),
        ("UPDATE", f"USING ({TENANT_PREDICATE}) WITH CHECK ({TENANT_PREDICATE})"),
        ("DELETE", f"USING ({TENANT_PREDICATE})"),
    ):
        op.execute(
            f"CREATE POLICY tenant_{command.lower()} ON tenant_domains FOR {command} "
            f"TO tenantry_app {clause}"
        )
    op.execute(
        "CREATE POLICY platform_access ON tenant_domains TO tenantry_platform "
        "USING (true) WITH CHECK (true)"
    )
    op.execute("GRANT INSERT, UPDATE, DELETE ON tenant_domains TO tenantry_app")


def downgrade() -> None:
    op.execute("REVOKE INSERT, UPDATE, DELETE ON tenant_domains FROM tenantry_app")
    for policy in ("domain_lookup", "tenant_insert", "tenant_update", "tenant_delete"):
        op.execute(f"DROP POLICY {policy} ON tenant_domains")
    op.execute("DROP POLICY platform_access ON tenant_domains")
    op.execute("ALTER TABLE tenant_domains NO FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE tenant_domains DISABLE ROW LEVEL SECURITY")
    op.execute("DROP TRIGGER api_keys_notify ON api_keys")
    op.execute("DROP TRIGGER users_deleted_notify ON users")
    op.execute("DROP TRIGGER users_credentials_notify ON users")
    op.execute("DROP FUNCTION notify_credentials_changed()")
    op.execute("ALTER TABLE tenant_domains DROP COLUMN verified_at")
    op.execute("ALTER TABLE tenant_domains DROP COLUMN verification_token")
    op.execute("DROP TABLE " + ", ".join(reversed(TABLES)))
    op.execute("ALTER TABLE users DROP COLUMN token_epoch")
    op.execute("ALTER TABLE users DROP COLUMN display_name")
