"""Usage reports tell what was done, to the byte: a scripted week of two tenants, with the clock
injected (no sleeping), read back as JSON, CSV and the HTML report's tables; rebuilt from raw
events with identical numbers; never another tenant's."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tenantry.app import create_app
from tenantry.config import Settings
from tests.integration.conftest import Api, Tenant, operator_login
from tests.integration.files_support import add_taxonomy, pdf_of_size, upload, user_with_role

T = TypeVar("T")
PNG_BYTES = (Path(__file__).resolve().parents[1] / "data" / "corpus" / "image.png").read_bytes()


class ScriptedClock:
    """What time it is for usage events: set by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def at(self, day: date, hour: int) -> None:
        self.now = datetime.combine(day, time(hour), UTC)


TODAY = datetime.now(UTC).date()
DAY1, DAY2, DAY3 = (TODAY - timedelta(days=n) for n in (6, 5, 3))


@pytest.fixture
def clock() -> ScriptedClock:
    return ScriptedClock(datetime.combine(DAY1, time(8), UTC))


@pytest.fixture
async def usage_app(settings: Settings, clean_database: None, clock: ScriptedClock) -> Litestar:
    return create_app(settings, clock=clock)


@pytest.fixture
async def usage_api(usage_app: Litestar) -> AsyncIterator[Api]:
    async with AsyncTestClient(app=usage_app, base_url="http://127.0.0.1") as client:
        yield Api(client, await operator_login(usage_app.state.services.settings, client))


async def in_app(api: Api, work: Callable[[], Awaitable[T]]) -> T:
    """Runs `work` on the app's own loop (the test client's portal), where its pools live."""
    result: T = await anyio.to_thread.run_sync(api.client.blocking_portal.call, work)
    return result


async def roll_up(api: Api, app: Litestar) -> None:
    """Every event so far in the rollups. An event is final once every older transaction of the
    cluster has ended, other test workers' included: the job may need a few rounds."""

    async def drain_and_roll_up() -> None:
        await app.state.services.served.drain()
        await app.state.services.rollups.catch_up()

    await in_app(api, drain_and_roll_up)


@dataclass
class Expected:
    """What a tenant did, counted by the test as it does it."""

    uploads: dict[date, list[int]] = field(default_factory=dict)
    downloads: dict[date, list[int]] = field(default_factory=dict)
    deletes: dict[date, list[int]] = field(default_factory=dict)
    logins: dict[date, int] = field(default_factory=dict)
    served: dict[date, int] = field(default_factory=dict)
    users: dict[date, set[str]] = field(default_factory=dict)

    def day(self, kind: str, on: date, value: int) -> None:
        getattr(self, kind).setdefault(on, []).append(value)


async def _login(api: Api, tenant: Tenant, expected: Expected, on: date) -> dict[str, str]:
    headers = await api.token(tenant)
    expected.logins[on] = expected.logins.get(on, 0) + 1
    me = (await api.client.get("/api/v1/auth/me", headers={"Host": tenant.host, **headers})).json()
    expected.users.setdefault(on, set()).add(me["id"])
    return {"Host": tenant.host, **headers}


async def _scripted_week(
    api: Api, app: Litestar, clock: ScriptedClock, platform: asyncpg.Connection
) -> tuple[Tenant, Tenant, Expected, Expected, dict[str, Any]]:
    alpha, beta = await api.provision("alpha"), await api.provision("beta")
    a, b = Expected(), Expected()
    safety = await add_taxonomy(platform, alpha.id, "categories", "Safety")
    mentors = await add_taxonomy(platform, alpha.id, "audiences", "Mentors")

    clock.at(DAY1, 9)
    owner = await _login(api, alpha, a, DAY1)
    guide = (
        await upload(
            api,
            alpha,
            owner,
            pdf_of_size(10_000),
            category=safety,
            language="en",
            audiences=[mentors],
        )
    ).json()
    a.day("uploads", DAY1, 10_000)
    picture = (
        await upload(api, alpha, owner, PNG_BYTES, filename="p.png", content_type="image/png")
    ).json()
    a.day("uploads", DAY1, len(PNG_BYTES))
    beta_owner = await _login(api, beta, b, DAY1)
    beta_file = (await upload(api, beta, beta_owner, pdf_of_size(777_777))).json()
    b.day("uploads", DAY1, 777_777)

    clock.at(DAY2, 14)
    viewer = {
        "Host": alpha.host,
        **await user_with_role(api, alpha, platform, "viewer"),
    }
    a.logins[DAY2] = 1
    viewer_id = (await api.client.get("/api/v1/auth/me", headers=viewer)).json()["id"]
    a.users.setdefault(DAY2, set()).add(viewer_id)
    for file, size in ((guide, 10_000), (guide, 10_000), (picture, len(PNG_BYTES))):
        link = await api.client.get(f"/api/v1/files/{file['id']}/download", headers=viewer)
        assert link.status_code == 200, link.text
        a.day("downloads", DAY2, size)
    # The local store's link, read partly: what was sent is metered, Range included.
    served = await api.client.get(link.json()["url"], headers={"Range": "bytes=0-99"})
    assert served.status_code == 206
    a.served[DAY2] = len(served.content)
    beta_owner_id = (await api.client.get("/api/v1/auth/me", headers=beta_owner)).json()["id"]
    b.users.setdefault(DAY2, set()).add(beta_owner_id)
    for _ in range(3):
        assert (
            await api.client.get(f"/api/v1/files/{beta_file['id']}/download", headers=beta_owner)
        ).status_code == 200
        b.day("downloads", DAY2, 777_777)

    clock.at(DAY3, 23)
    owner = await _login(api, alpha, a, DAY3)
    assert (
        await api.client.delete(f"/api/v1/files/{picture['id']}", headers=owner)
    ).status_code == 204
    a.day("deletes", DAY3, len(PNG_BYTES))
    await upload(api, alpha, owner, pdf_of_size(5_000))
    a.day("uploads", DAY3, 5_000)
    await roll_up(api, app)
    return alpha, beta, a, b, {"guide": guide, "safety": safety, "mentors": mentors}


def _expected_series(expected: Expected) -> list[dict[str, int]]:
    series, storage, files = [], 0, 0
    for offset in range((DAY3 - DAY1).days + 1):
        day = DAY1 + timedelta(days=offset)
        uploads, downloads = expected.uploads.get(day, []), expected.downloads.get(day, [])
        deletes = expected.deletes.get(day, [])
        storage += sum(uploads) - sum(deletes)
        files += len(uploads) - len(deletes)
        series.append(
            {
                "period": day.isoformat(),
                "uploads": len(uploads),
                "downloads": len(downloads),
                "deletes": len(deletes),
                "logins": expected.logins.get(day, 0),
                "signups": 0,
                "bytes_in": sum(uploads),
                "bytes_out": sum(downloads),
                "bytes_served": expected.served.get(day, 0),
                "active_users": len(expected.users.get(day, set())),
                "storage_bytes": storage,
                "file_count": files,
            }
        )
    return series


async def _report(api: Api, tenant: Tenant, query: str = "", **headers: str) -> Any:
    admin = await api.token(tenant)
    response = await api.client.get(
        f"/api/v1/usage?from={DAY1}&to={DAY3}{query}",
        headers={"Host": tenant.host, **admin, **headers},
    )
    assert response.status_code == 200, response.text
    return response


async def test_reports_match_what_was_done(
    usage_api: Api,
    usage_app: Litestar,
    clock: ScriptedClock,
    platform_connection: asyncpg.Connection,
) -> None:
    alpha, beta, a, b, made = await _scripted_week(usage_api, usage_app, clock, platform_connection)
    # Reading the reports logs in again (today): outside the reported days.
    clock.now = datetime.now(UTC) + timedelta(days=1)

    for tenant, expected in ((alpha, a), (beta, b)):
        report = (await _report(usage_api, tenant)).json()
        series = _expected_series(expected)
        assert report["series"] == series
        totals = {
            k: sum(day[k] for day in series)
            for k in series[0]
            if k not in ("period", "storage_bytes", "file_count", "active_users")
        }
        active = set().union(*expected.users.values())
        assert report["totals"] == {
            **totals,
            "active_users": len(active),
            "storage_bytes": series[-1]["storage_bytes"],
            "file_count": series[-1]["file_count"],
        }
        assert report["tenant"]["slug"] == tenant.slug
        # The quota counter and the storage series agree at the end.
        usage = await platform_connection.fetchrow(
            "SELECT storage_bytes, file_count FROM tenant_usage WHERE tenant_id = $1",
            uuid.UUID(tenant.id),
        )
        assert (usage["storage_bytes"], usage["file_count"]) == (
            series[-1]["storage_bytes"],
            series[-1]["file_count"],
        )

        text = (await _report(usage_api, tenant, Accept="text/csv")).text
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [row["period"] for row in rows] == [day["period"] for day in series] + ["total"]
        for row, day in zip(rows, series, strict=False):
            assert {k: int(v) for k, v in row.items() if k != "period"} == {
                k: v for k, v in day.items() if k != "period"
            }

    alpha_report = (await _report(usage_api, alpha, "&group_by=category")).json()
    by_key = {group["key"]: group for group in alpha_report["groups"]}
    assert by_key[made["safety"]]["label"] == "Safety"
    assert by_key[made["safety"]]["downloads"] == 2
    assert by_key[made["safety"]]["bytes_out"] == 20_000
    assert by_key[""]["label"] == "(none)"
    assert alpha_report["top_files"][0] == {
        "file_id": made["guide"]["id"],
        "title": "Guide",
        "downloads": 2,
        "bytes_out": 20_000,
    }
    weekly = (await _report(usage_api, alpha, "&granularity=week")).json()
    assert sum(p["downloads"] for p in weekly["series"]) == 3
    assert weekly["series"][-1]["storage_bytes"] == _expected_series(a)[-1]["storage_bytes"]

    # The HTML report's tables carry the same numbers.
    admin = await usage_api.token(alpha)
    page = await usage_api.client.get(
        f"/api/v1/usage/report?from={DAY1}&to={DAY3}", headers={"Host": alpha.host, **admin}
    )
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    tables = _tables(page.text)
    series_rows = [row for row in tables["series"] if row]
    for name in ("uploads", "downloads", "deletes", "bytes_in", "bytes_out", "logins"):
        assert [int(row[name]) for row in series_rows] == [d[name] for d in _expected_series(a)]
    storage_rows = [row for row in tables["storage"] if row]
    assert [int(row["storage_bytes"]) for row in storage_rows] == [
        d["storage_bytes"] for d in _expected_series(a)
    ]
    category = {row["key"]: row for row in tables["breakdown-category"] if "key" in row}
    assert int(category[made["safety"]]["downloads"]) == 2
    assert "Safety" in page.text
    assert beta.slug not in page.text and "777777" not in page.text


async def test_rebuild_gives_identical_reports(
    usage_api: Api,
    usage_app: Litestar,
    clock: ScriptedClock,
    platform_connection: asyncpg.Connection,
) -> None:
    alpha, beta, *_ = await _scripted_week(usage_api, usage_app, clock, platform_connection)
    clock.now = datetime.now(UTC) + timedelta(days=1)
    queries = ["", "&group_by=role", "&group_by=audience", "&granularity=month"]
    before = [(await _report(usage_api, t, q)).json() for t in (alpha, beta) for q in queries]
    rows = "SELECT * FROM usage_daily UNION ALL SELECT tenant_id, day, 'user', user_id::text, 0,0,0,0,0,0,0,0 FROM usage_daily_users"
    snapshot = sorted(map(tuple, await platform_connection.fetch(rows)))
    await platform_connection.execute(
        "DELETE FROM usage_daily; DELETE FROM usage_daily_users; DELETE FROM usage_storage_daily"
    )
    rollups = usage_app.state.services.rollups
    counted = await in_app(usage_api, lambda: rollups.rebuild(DAY1 - timedelta(days=1), TODAY))
    assert counted > 0
    assert sorted(map(tuple, await platform_connection.fetch(rows))) == snapshot
    after = [(await _report(usage_api, t, q)).json() for t in (alpha, beta) for q in queries]
    for old, new in zip(before, after, strict=True):
        old.pop("as_of"), new.pop("as_of")
        assert old == new


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (f"from={DAY3}&to={DAY1}", "to"),
        (f"from={TODAY - timedelta(days=400)}&to={TODAY}", "from"),
        ("from=1900-01-01&to=1900-01-31", "from"),
        (f"to={TODAY + timedelta(days=800)}&from={TODAY + timedelta(days=700)}", "to"),
        ("granularity=hour", "granularity"),
        ("group_by=colour", "group_by"),
        ("tz=Mars/Olympus", "tz"),
        ("tz=..%2F..%2Fetc%2Fpasswd", "tz"),
        ("tz=Europe%2FBerlin", "tz"),
    ],
)
async def test_bad_report_queries_name_the_field(usage_api: Api, query: str, field: str) -> None:
    alpha = await usage_api.provision("alpha")
    admin = {"Host": alpha.host, **await usage_api.token(alpha)}
    response = await usage_api.client.get(f"/api/v1/usage?{query}", headers=admin)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["errors"][0]["field"] == field, problem
    assert problem["code"] in ("invalid_field", "timezone_not_kept")


async def test_only_admins_read_reports_and_only_the_operator_crosses_tenants(
    usage_api: Api, usage_app: Litestar, platform_connection: asyncpg.Connection
) -> None:
    alpha = await usage_api.provision("alpha")
    editor = {
        "Host": alpha.host,
        **await user_with_role(usage_api, alpha, platform_connection, "editor"),
    }
    owner = {"Host": alpha.host, **await usage_api.token(alpha)}
    for path in ("/api/v1/usage", "/api/v1/usage/report"):
        assert (await usage_api.client.get(path, headers=editor)).status_code == 403
        assert (await usage_api.client.get(path, headers=owner)).status_code == 200
    for path in (
        "/platform/v1/usage",
        "/platform/v1/usage/events",
        f"/platform/v1/tenants/{alpha.id}/usage",
    ):
        response = await usage_api.client.get(path, headers=owner)
        assert response.status_code in (401, 403), (path, response.status_code)
        assert (await usage_api.client.get(path, headers=usage_api.operator)).status_code == 200


async def test_platform_reports_and_export(
    usage_api: Api,
    usage_app: Litestar,
    clock: ScriptedClock,
    platform_connection: asyncpg.Connection,
) -> None:
    alpha, beta, a, b, _ = await _scripted_week(usage_api, usage_app, clock, platform_connection)
    operator = usage_api.operator
    report = (
        await usage_api.client.get(
            f"/platform/v1/usage?from={DAY1}&to={DAY3}&sort=slug", headers=operator
        )
    ).json()
    rows = {row["slug"]: row for row in report["items"]}
    for tenant, expected in ((alpha, a), (beta, b)):
        series = _expected_series(expected)
        row = rows[tenant.slug]
        assert row["uploads"] == sum(d["uploads"] for d in series)
        assert row["downloads"] == sum(d["downloads"] for d in series)
        assert row["bytes_in"] == sum(d["bytes_in"] for d in series)
        assert row["storage_bytes"] == series[-1]["storage_bytes"]
        assert row["quota_used_pct"] == round(
            100 * row["storage_bytes"] / row["storage_quota_bytes"], 2
        )
    assert report["totals"]["uploads"] == rows["alpha"]["uploads"] + rows["beta"]["uploads"]
    assert [p["period"] for p in report["series"]] == [d["period"] for d in _expected_series(a)]
    assert sum(p["downloads"] for p in report["series"]) == 6

    per_tenant = await usage_api.client.get(
        f"/platform/v1/tenants/{beta.id}/usage?from={DAY1}&to={DAY3}", headers=operator
    )
    assert per_tenant.json()["series"] == _expected_series(b)
    assert (
        await usage_api.client.get(f"/platform/v1/tenants/{uuid.uuid4()}/usage", headers=operator)
    ).status_code == 404

    # The export: every event once, each with its tenant, resumable from any cursor.
    seen: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = await usage_api.client.get(
            f"/platform/v1/usage/events?after={cursor}&limit=4", headers=operator
        )
        assert page.status_code == 200
        lines = [line for line in page.text.splitlines() if line]
        if not lines:
            assert page.headers["next-cursor"] == (cursor or "0-0")
            break
        events = [json.loads(line) for line in lines]
        seen += events
        cursor = page.headers["next-cursor"]
        assert cursor == events[-1]["cursor"]
    total = await platform_connection.fetchval("SELECT count(*) FROM usage_events")
    assert len(seen) == total == len({e["id"] for e in seen})
    for event in seen:
        assert event["specversion"] == "1.0"
        assert event["source"] == f"/tenants/{event['data']['tenant_id']}"
        assert event["type"] == "io.tenantry.usage." + event["data"]["kind"]
    batch = await usage_api.client.get(
        "/platform/v1/usage/events?limit=2",
        headers={**operator, "Accept": "application/cloudevents-batch+json"},
    )
    assert batch.headers["content-type"].startswith("application/cloudevents-batch+json")
    assert [e["id"] for e in batch.json()] == [e["id"] for e in seen[:2]]
    bad = await usage_api.client.get("/platform/v1/usage/events?after=nope", headers=operator)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "after"


class _TableParser(HTMLParser):
    """Tables by id: rows of {data-field: data-value} (cells without a value are left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[dict[str, str]]] = {}
        self._table: str | None = None
        self._columns: list[str] = []
        self._column = 0
        self._in_header = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "table" and attributes.get("id"):
            self._table = attributes["id"]
            self.tables[self._table] = []
            self._columns = []
        elif self._table and tag == "tr":
            self._column = 0
            key = attributes.get("data-key")
            self.tables[self._table].append({"key": key} if key is not None else {})
        elif self._table and tag == "th":
            self._columns.append(attributes.get("data-field") or "")
            self._column += 1
        elif self._table and tag == "td":
            if "data-value" in attributes and self._column < len(self._columns):
                self.tables[self._table][-1][self._columns[self._column]] = (
                    attributes["data-value"] or ""
                )
            self._column += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None


def _tables(page: str) -> dict[str, list[dict[str, str]]]:
    parser = _TableParser()
    parser.feed(page)
    return parser.tables


async def test_the_reporting_zone_is_a_tenant_setting(usage_api: Api) -> None:
    alpha = await usage_api.provision("alpha", settings={"usage_timezone": "Europe/Berlin"})
    admin = {"Host": alpha.host, **await usage_api.token(alpha)}
    report = await usage_api.client.get("/api/v1/usage?tz=Europe/Berlin", headers=admin)
    assert report.status_code == 200, report.text
    assert report.json()["tz"] == "Europe/Berlin"
    assert (await usage_api.client.get("/api/v1/usage?tz=UTC", headers=admin)).status_code == 422
    refused = await usage_api.client.patch(
        f"/platform/v1/tenants/{alpha.id}",
        json={"settings": {"usage_timezone": "Mars/Olympus"}},
        headers=usage_api.operator,
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"].startswith("settings")
