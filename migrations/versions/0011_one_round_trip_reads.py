"""The hottest tenant reads in one round trip: functions that set the tenant and select.

A read on the fast path was three round trips: BEGIN with the tenant setting, the select,
COMMIT. Each function here is one statement instead: it sets `app.tenant_id` transaction-locally
and runs its select, in the statement's own implicit transaction, which ends with the statement,
so the setting ends with it too (a pooled connection, or a transaction-mode PgBouncer's, never
carries a tenant on). The functions are SECURITY INVOKER: they run as the caller
(`tenantry_app`), under the tables' RLS policies, so the setting they are given is still the
only gate; the tenant id in their WHERE clauses only picks the index. Their selects are static,
so PL/pgSQL prepares and keeps each plan per connection, as asyncpg's statement cache did.

- `tenant_file(setting, tenant, file)`: one ready file, its audiences aggregated.
- `tenant_file_page(setting, tenant, sort, limit, offset)`: the total (the usage counter) and a
  page of ready files as the API's JSON array, already encoded (`WIRE_FILE`: the wire names,
  in `FileOut`'s order, timestamps as the API's encoder writes them). Fifty files decoded
  into Python values and encoded again cost the app more than the rest of the request; here
  Postgres writes them and the app passes the text through. A test holds the two encodings
  equal.
- `tenant_me(setting, tenant, user)`: an enabled user's profile.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILE_COLUMNS = """
    f.id, f.title, f.description, f.category_id, f.language,
    (SELECT coalesce(array_agg(a.audience_id), '{}'::uuid[]) FROM public.file_audiences a
      WHERE a.tenant_id = f.tenant_id AND a.file_id = f.id) AS audiences,
    f.content_type, f.size, f.sha256, f.original_filename, f.status, f.uploaded_by,
    f.created_at, f.updated_at"""

FILE_RESULT = """
    id uuid, title varchar, description text, category_id uuid, language varchar,
    audiences uuid[], content_type varchar, size bigint, sha256 char(64),
    original_filename varchar, status varchar, uploaded_by uuid,
    created_at timestamptz, updated_at timestamptz"""

# The listing's orders (files.schemas.FileSort), each a static query with the index it uses.
SORTS = {
    "-created_at": "f.created_at DESC, f.id DESC",
    "created_at": "f.created_at ASC, f.id ASC",
    "title": "f.title ASC, f.id ASC",
    "-title": "f.title DESC, f.id DESC",
    "size": "f.size ASC, f.id ASC",
    "-size": "f.size DESC, f.id DESC",
}

TENANT_FILE = f"""
CREATE FUNCTION tenant_file(setting text, tenant uuid, file uuid)
RETURNS TABLE ({FILE_RESULT})
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM set_config('app.tenant_id', setting, true);
    RETURN QUERY SELECT {FILE_COLUMNS}
    FROM public.files f
    WHERE f.tenant_id = tenant AND f.id = file AND f.status = 'ready';
END
$$
"""  # noqa: S608 - this migration's own constants


# A timestamp as the API's encoder writes it (RFC 3339 in UTC, microseconds only when not 0).
def _instant(column: str) -> str:
    return (
        f"replace(to_char({column} AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '.000000Z', 'Z')"
    )


# A listed file as the API's JSON: the wire names, in the order of files.schemas.FileOut.
WIRE_FILE = f"""
    page.id, page.title, page.description, page.category_id AS category, page.language,
    page.audiences, page.content_type, page.size, page.sha256,
    page.original_filename AS filename, page.status, page.uploaded_by,
    {_instant("page.created_at")} AS created_at, {_instant("page.updated_at")} AS updated_at"""


def _page(order: str) -> str:
    return f"""
        RETURN QUERY SELECT u.file_count, coalesce((
            SELECT '[' || string_agg(row_to_json(wire)::text, ','
                ORDER BY {order.replace("f.", "page.")}) || ']'
            FROM (
                SELECT {FILE_COLUMNS}
                FROM public.files f
                WHERE f.tenant_id = tenant AND f.status = 'ready'
                ORDER BY {order}
                LIMIT page_limit OFFSET page_offset
            ) page
            CROSS JOIN LATERAL (SELECT {WIRE_FILE}) wire
        ), '[]')
        FROM public.tenant_usage u
        WHERE u.tenant_id = tenant;"""  # noqa: S608 - this migration's own constants


_BRANCHES = "\n    ELS".join(
    f"IF sort = '{sort}' THEN{_page(order)}" for sort, order in SORTS.items()
)

TENANT_FILE_PAGE = f"""
CREATE FUNCTION tenant_file_page(
    setting text, tenant uuid, sort text, page_limit integer, page_offset integer
)
RETURNS TABLE (total bigint, items text)
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM set_config('app.tenant_id', setting, true);
    {_BRANCHES}
    ELSE
        RAISE EXCEPTION 'unknown sort %', sort USING ERRCODE = '22023';
    END IF;
END
$$
"""

TENANT_ME = """
CREATE FUNCTION tenant_me(setting text, tenant uuid, member uuid)
RETURNS TABLE (id uuid, email varchar, role varchar, display_name varchar)
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM set_config('app.tenant_id', setting, true);
    RETURN QUERY SELECT u.id, u.email, u.role, u.display_name
    FROM public.users u
    WHERE u.tenant_id = tenant AND u.id = member AND NOT u.disabled;
END
$$
"""

SIGNATURES = [
    "tenant_file(text, uuid, uuid)",
    "tenant_file_page(text, uuid, text, integer, integer)",
    "tenant_me(text, uuid, uuid)",
]


def upgrade() -> None:
    for statement in (TENANT_FILE, TENANT_FILE_PAGE, TENANT_ME):
        op.execute(statement)
    for signature in SIGNATURES:
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO tenantry_app")


def downgrade() -> None:
    for signature in SIGNATURES:
        op.execute(f"DROP FUNCTION {signature}")
