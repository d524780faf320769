"""Usage metering: raw events partitioned by month, daily rollups, a watermark for the job.

`usage_events` becomes a table partitioned by `occurred_at` (one partition per UTC month), so
that the retention window drops whole partitions instead of deleting rows. Two columns give
every event a place in one total order that a reader can resume from: `txid`, the writing
transaction's id, and `seq`, from a sequence. Everything with a `txid` below the oldest
transaction still running is final (committed or rolled back), so a reader that only takes
those, in `(txid, seq)` order, never skips an event that commits late. The rollup job and the
CloudEvents export both read that way.

Partitions are made by `usage_events_ensure_partitions(first, last)` and dropped by
`usage_events_drop_partitions(before)`, both owned by `tenantry_owner` and run for the platform
role (SECURITY DEFINER: the app creates next months' partitions without owning any table). Each
partition gets the parent's RLS, policies and grants when it is made: a partition is a table of
its own and can be queried directly.

The rollups (`usage_daily`, `usage_daily_users`, `usage_storage_daily`) are derived from the
events by the application's rollup job, from the watermark in `usage_rollup_state`. This
migration starts the watermark at the beginning, so the job's first run rolls up every event the
database already holds (tests/integration/test_migrations.py checks that against a scan); no
copy of the job's SQL lives here to drift from it.

The existing events are copied into the new partitions in this transaction (ACCESS EXCLUSIVE on
the old table: no writer can add one meanwhile). The old table is read with FORCE lifted (the
owner has no policy, and under FORCE it would read nothing), and it is dropped before commit.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

from rls_v1 import protect_tenant_table

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = "'upload', 'download', 'delete', 'login', 'signup', 'serve'"
ROLLUPS = ["usage_daily", "usage_daily_users", "usage_storage_daily"]

# The same predicate as rls_v1 (frozen), spelled in SQL for the partitions made at run time.
ENSURE_PARTITIONS = """
CREATE FUNCTION usage_events_ensure_partitions(first timestamptz, last timestamptz)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    month timestamp := date_trunc('month', first AT TIME ZONE 'UTC');
    stop timestamp := date_trunc('month', last AT TIME ZONE 'UTC');
    made integer := 0;
    name text;
    predicate constant text :=
        'tenant_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::uuid';
BEGIN
    IF stop - month > interval '120 months' THEN
        RAISE EXCEPTION 'at most 120 months of partitions at once' USING ERRCODE = '22023';
    END IF;
    -- One maker at a time, whichever replica runs it.
    PERFORM pg_advisory_xact_lock(hashtext('usage_events_partitions'));
    WHILE month <= stop LOOP
        name := 'usage_events_' || to_char(month, 'YYYY_MM');
        IF to_regclass('public.' || name) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE public.%I PARTITION OF public.usage_events FOR VALUES FROM (%L) TO (%L)',
                name, month AT TIME ZONE 'UTC', (month + interval '1 month') AT TIME ZONE 'UTC');
            EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', name);
            EXECUTE format('ALTER TABLE public.%I FORCE ROW LEVEL SECURITY', name);
            EXECUTE format(
                'CREATE POLICY tenant_isolation ON public.%I TO tenantry_app USING (%s) WITH CHECK (%s)',
                name, predicate, predicate);
            EXECUTE format(
                'CREATE POLICY platform_access ON public.%I TO tenantry_platform '
                'USING (true) WITH CHECK (true)', name);
            EXECUTE format('GRANT SELECT, INSERT ON public.%I TO tenantry_app', name);
            EXECUTE format(
                'GRANT SELECT, INSERT, UPDATE, DELETE ON public.%I TO tenantry_platform', name);
            made := made + 1;
        END IF;
        month := month + interval '1 month';
    END LOOP;
    RETURN made;
END
$$
"""

DROP_PARTITIONS = """
CREATE FUNCTION usage_events_drop_partitions(before timestamptz)
RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    partition record;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('usage_events_partitions'));
    FOR partition IN
        SELECT c.relname,
            substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \\(''([^'']+)''\\)')::timestamptz
                AS upper_bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'public.usage_events'::regclass
    LOOP
        IF partition.upper_bound <= before THEN
            EXECUTE format('DROP TABLE public.%I', partition.relname);
            RETURN NEXT partition.relname;
        END IF;
    END LOOP;
END
$$
"""

SCHEMA = [
    "ALTER TABLE usage_events RENAME TO usage_events_before_0006",
    "ALTER TABLE usage_events_before_0006 RENAME CONSTRAINT pk_usage_events TO pk_usage_events_0005",
    "ALTER INDEX ix_usage_events_tenant_id_occurred_at RENAME TO ix_usage_events_0005",
    "CREATE SEQUENCE usage_events_seq AS bigint",
    f"""
    CREATE TABLE usage_events (
        tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        occurred_at timestamptz NOT NULL DEFAULT now(),
        kind varchar(16) NOT NULL CHECK (kind IN ({KINDS})),
        user_id uuid,
        user_role varchar(16),
        file_id uuid,
        bytes bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0),
        category_id uuid,
        language varchar(2),
        audience_ids uuid[] NOT NULL DEFAULT '{{}}',
        content_type varchar(100),
        txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
        seq bigint NOT NULL DEFAULT nextval('usage_events_seq'),
        CONSTRAINT pk_usage_events PRIMARY KEY (tenant_id, occurred_at, id)
    ) PARTITION BY RANGE (occurred_at)
    """,
    "ALTER SEQUENCE usage_events_seq OWNED BY usage_events.seq",
    "GRANT USAGE ON SEQUENCE usage_events_seq TO tenantry_app, tenantry_platform",
    "CREATE INDEX ix_usage_events_tenant_id_occurred_at ON usage_events (tenant_id, occurred_at)",
    # The rollup job's and the export's order (a cross-tenant read, by the platform role).
    "CREATE INDEX ix_usage_events_txid_seq ON usage_events (txid, seq)",
    ENSURE_PARTITIONS,
    DROP_PARTITIONS,
    "REVOKE ALL ON FUNCTION usage_events_ensure_partitions(timestamptz, timestamptz) FROM PUBLIC",
    "REVOKE ALL ON FUNCTION usage_events_drop_partitions(timestamptz) FROM PUBLIC",
    "GRANT EXECUTE ON FUNCTION usage_events_ensure_partitions(timestamptz, timestamptz) "
    "TO tenantry_platform",
    "GRANT EXECUTE ON FUNCTION usage_events_drop_partitions(timestamptz) TO tenantry_platform",
    # The old rows, read by the owner (see the docstring), into partitions for their months.
    "ALTER TABLE usage_events_before_0006 NO FORCE ROW LEVEL SECURITY",
    """
    SELECT usage_events_ensure_partitions(
        LEAST(COALESCE(min(occurred_at), now()), now() - interval '1 month'),
        now() + interval '3 months')
    FROM usage_events_before_0006
    """,
    """
    INSERT INTO usage_events (tenant_id, id, occurred_at, kind, user_id, user_role, file_id,
        bytes, category_id, language, audience_ids, content_type)
    SELECT tenant_id, id, occurred_at, kind, user_id, user_role, file_id, bytes, category_id,
        language, audience_ids, content_type
    FROM usage_events_before_0006 ORDER BY occurred_at, id
    """,
    "DROP TABLE usage_events_before_0006",
    """
    CREATE TABLE usage_daily (
        tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        day date NOT NULL,
        dimension varchar(16) NOT NULL CHECK (dimension IN
            ('total', 'category', 'language', 'content_type', 'audience', 'role', 'file')),
        key varchar(100) NOT NULL,
        uploads bigint NOT NULL DEFAULT 0,
        downloads bigint NOT NULL DEFAULT 0,
        deletes bigint NOT NULL DEFAULT 0,
        logins bigint NOT NULL DEFAULT 0,
        signups bigint NOT NULL DEFAULT 0,
        bytes_in bigint NOT NULL DEFAULT 0,
        bytes_out bigint NOT NULL DEFAULT 0,
        bytes_served bigint NOT NULL DEFAULT 0,
        -- Dimension before day: a report reads one dimension's days, not every row of them.
        CONSTRAINT pk_usage_daily PRIMARY KEY (tenant_id, dimension, day, key)
    )
    """,
    """
    CREATE TABLE usage_daily_users (
        tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        day date NOT NULL,
        user_id uuid NOT NULL,
        CONSTRAINT pk_usage_daily_users PRIMARY KEY (tenant_id, day, user_id)
    )
    """,
    """
    CREATE TABLE usage_storage_daily (
        tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        day date NOT NULL,
        storage_bytes bigint NOT NULL,
        file_count bigint NOT NULL,
        CONSTRAINT pk_usage_storage_daily PRIMARY KEY (tenant_id, day)
    )
    """,
    # Global (no tenant): how far the rollup job has read. One row.
    """
    CREATE TABLE usage_rollup_state (
        id smallint PRIMARY KEY CHECK (id = 1),
        txid xid8 NOT NULL,
        seq bigint NOT NULL,
        rolled_up_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    "INSERT INTO usage_rollup_state (id, txid, seq) VALUES (1, '0', 0)",
    "GRANT SELECT, UPDATE ON usage_rollup_state TO tenantry_platform",
    # Reports say how current they are.
    "GRANT SELECT ON usage_rollup_state TO tenantry_app",
]


def upgrade() -> None:
    for statement in SCHEMA:
        op.execute(statement)
    for table in ["usage_events", *ROLLUPS]:
        protect_tenant_table(table)
    # Events are append-only for the API; rollups are written by the job (platform role) only.
    op.execute("REVOKE UPDATE, DELETE ON usage_events FROM tenantry_app")
    for table in ROLLUPS:
        op.execute(f"REVOKE INSERT, UPDATE, DELETE ON {table} FROM tenantry_app")


def downgrade() -> None:
    op.execute("DROP TABLE usage_rollup_state, " + ", ".join(reversed(ROLLUPS)))
    op.execute("DROP FUNCTION usage_events_drop_partitions(timestamptz)")
    op.execute("DROP FUNCTION usage_events_ensure_partitions(timestamptz, timestamptz)")
    op.execute("ALTER TABLE usage_events RENAME TO usage_events_0006")
    op.execute("ALTER TABLE usage_events_0006 RENAME CONSTRAINT pk_usage_events TO pk_usage_0006")
    op.execute("ALTER INDEX ix_usage_events_tenant_id_occurred_at RENAME TO ix_usage_0006")
    op.execute(
        """
        CREATE TABLE usage_events (
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            id uuid NOT NULL DEFAULT gen_random_uuid(),
            occurred_at timestamptz NOT NULL DEFAULT now(),
            kind varchar(16) NOT NULL
                CHECK (kind IN ('upload', 'download', 'delete', 'login', 'signup')),
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
        """
    )
    op.execute("ALTER TABLE usage_events_0006 NO FORCE ROW LEVEL SECURITY")
    op.execute(
        "INSERT INTO usage_events SELECT tenant_id, id, occurred_at, kind, user_id, user_role, "
        "file_id, bytes, category_id, language, audience_ids, content_type "
        "FROM usage_events_0006 WHERE kind <> 'serve'"
    )
    op.execute("DROP TABLE usage_events_0006")
    op.execute(
        "CREATE INDEX ix_usage_events_tenant_id_occurred_at "
        "ON usage_events (tenant_id, occurred_at)"
    )
    protect_tenant_table("usage_events")
    op.execute("REVOKE UPDATE, DELETE ON usage_events FROM tenantry_app")
