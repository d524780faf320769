"""Synthetic usage for demos and benchmarks (`tenantry usage seed`).

What it makes: tenants `seed-00001`... whose sizes follow a Zipf law (tenant k carries a share
proportional to 1/k: a few big tenants, a long tail of small ones), each with users of every
role, categories, audiences and ready files; and usage events over the last days, day by day,
with a weekday and a time-of-day rhythm and a gentle growth. Each tenant is played forward event
by event, so the events tell one coherent story: a download names a file that exists at that
moment (with that file's facets and size), a delete removes one, an upload adds the file that
ends up in `files`, a signup adds the user that ends up in `users`; the final storage is what
`tenant_usage` says and what the storage rollup reaches on the last day.

How it is written: COPY into a temporary table, then one INSERT ... SELECT into the real one
(Postgres refuses COPY FROM into a table under row-level security, even with a `USING (true)`
policy), a day of events per transaction. `txid` and `seq` are left to their defaults, so the
events take their place in the rollup job's `(txid, seq)` order like any others, and the job
(`RollupJob.run_once`) rolls them up, its rounds running alongside the load as a server's would.
Generating the next day (in a thread) overlaps with Postgres writing the previous one.

Not atomic: a seed that fails half way leaves its tenants behind; `replace` removes them.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import math
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from tenantry.config import Settings
from tenantry.db.engines import asyncpg_dsn, platform_db_config, role_url
from tenantry.db.enums import FileStatus, Role, TenantStatus, UsageKind
from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.storage.keys import file_key
from tenantry.usage.rollups import RollupJob

SLUG_PREFIX = "seed-"
GiB = 1024**3
# Seeded accounts are not for logging in: a well-formed bcrypt hash of a password nobody knows.
UNUSABLE_PASSWORD_HASH = "$2b$04$ym6z7rSm2eg99ouL9tHsgeShL9yOrvIm3HrWUweWV.MDKCcqsGciS"
# Plans by storage quota, smallest first; every seeded tenant gets the smallest that holds its
# peak storage with a quarter to spare (a new tenant's default is the first).
PLANS = (("standard", 10 * GiB), ("business", 100 * GiB), ("enterprise", 1024 * GiB))
MAX_FILE_BYTES = 2 * GiB
QUOTA_HEADROOM = 1.25
# Pause between the rollup job's rounds during the load (the servers' default interval).
ROLLUP_INTERVAL_SECONDS = 1.0

KIND_SHARES = {
    UsageKind.DOWNLOAD: 0.78,
    UsageKind.LOGIN: 0.14,
    UsageKind.UPLOAD: 0.05,
    UsageKind.DELETE: 0.02,
    UsageKind.SIGNUP: 0.01,
}
# Activity by hour of the UTC day (a working day in Europe and the Americas) and by weekday.
HOUR_WEIGHTS = (
    *(0.15, 0.10, 0.08, 0.07, 0.08, 0.12, 0.25, 0.50, 0.80, 1.00, 1.00, 0.95),
    *(0.85, 0.95, 1.00, 0.95, 0.85, 0.70, 0.55, 0.45, 0.40, 0.35, 0.30, 0.20),
)
WEEKDAY_WEIGHTS = (1.0, 1.05, 1.05, 1.0, 0.9, 0.45, 0.35)
# The last day of the range is this much busier than the first (the platform grows).
GROWTH = 1.6
DAY_NOISE = 0.15
# (content type, share of uploads, median size in bytes, lognormal sigma, extension)
CONTENT_TYPES = (
    ("application/pdf", 0.45, 900_000, 1.0, "pdf"),
    ("image/jpeg", 0.2, 350_000, 0.8, "jpg"),
    ("image/png", 0.1, 200_000, 0.9, "png"),
    ("audio/mpeg", 0.1, 5_000_000, 0.7, "mp3"),
    ("video/mp4", 0.1, 40_000_000, 1.1, "mp4"),
    ("application/zip", 0.05, 8_000_000, 1.2, "zip"),
)
MAX_FILE_SIZE = 1536 * 1024 * 1024
LANGUAGES = (("en", 0.5), ("de", 0.15), ("fr", 0.12), ("es", 0.1), ("nl", 0.05), (None, 0.08))
CATEGORY_NAMES = (
    "Onboarding",
    "Training",
    "Marketing",
    "Sales",
    "Product",
    "Legal",
    "Support",
    "Research",
)
AUDIENCE_NAMES = ("Employees", "Partners", "Customers", "Press")
TOPICS = (
    "Quarterly review",
    "Getting started",
    "Brand guidelines",
    "Product tour",
    "Webinar recording",
    "Price list",
    "Case study",
    "Release notes",
    "Team photo",
    "Training module",
)
# How unevenly activity spreads over a tenant's files and users: an index is drawn as
# len * random() ** skew, so higher skews favour the front of the list more.
FILE_POPULARITY_SKEW = 3.0
USER_ACTIVITY_SKEW = 2.0
CATEGORY_SKEW = 1.5
ROLE_SHARES = ((Role.ADMIN, 0.03), (Role.EDITOR, 0.15))
UPLOADER_ROLES = (Role.OWNER, Role.ADMIN, Role.EDITOR)

EVENT_COLUMNS = (
    "tenant_id",
    "occurred_at",
    "kind",
    "user_id",
    "user_role",
    "file_id",
    "bytes",
    "category_id",
    "language",
    "audience_ids",
    "content_type",
)
TENANT_COLUMNS = (
    *("id", "slug", "name", "status", "plan", "storage_quota_bytes", "max_file_bytes"),
    *("created_at", "updated_at"),
)
USER_COLUMNS = ("tenant_id", "id", "email", "password_hash", "role", "created_at", "updated_at")
NAMED_COLUMNS = ("tenant_id", "id", "name", "created_at")
FILE_COLUMNS = (
    *("tenant_id", "id", "title", "category_id", "language", "content_type", "size", "sha256"),
    *("original_filename", "storage_key", "status", "uploaded_by", "created_at", "updated_at"),
)
FILE_AUDIENCE_COLUMNS = ("tenant_id", "file_id", "audience_id")
USAGE_COLUMNS = ("tenant_id", "storage_bytes", "file_count")

EventRow = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class SeedPlan:
    tenants: int
    events: int
    days: int
    seed: int = 1


@dataclass(slots=True)
class SeedReport:
    tenant_ids: list[uuid.UUID]
    events: int
    users: int
    files: int
    first: datetime
    last: datetime
    generate_seconds: float = 0.0  # in the generating thread (overlaps with copying)
    copy_seconds: float = 0.0  # waiting for Postgres to take the rows
    load_seconds: float = 0.0  # wall time of the whole load, generating and copying
    rollup_seconds: float = 0.0  # after the load, until every event is rolled up
    rolled_up: int = 0
    file_stats_seconds: float = 0.0  # the caller's: the file stats rollup is another domain's


@dataclass(slots=True)
class _User:
    id: uuid.UUID
    email: str
    role: str
    created_at: datetime


@dataclass(slots=True)
class _File:
    id: uuid.UUID
    title: str
    category_id: uuid.UUID | None
    language: str | None
    content_type: str
    extension: str
    size: int
    sha256: str
    audience_ids: list[uuid.UUID]
    uploaded_by: uuid.UUID
    created_at: datetime


@dataclass(slots=True)
class _Tenant:
    """One tenant's world as the events play it forward: who exists, what is stored."""

    id: uuid.UUID
    slug: str
    categories: list[uuid.UUID]
    audiences: list[uuid.UUID]
    users: list[_User]
    uploaders: list[_User]
    # Ready files, most popular first (a new file lands at a random rank).
    live: list[_File] = field(default_factory=list)
    storage_bytes: int = 0
    peak_storage_bytes: int = 0

    def plan(self) -> tuple[str, int]:
        needed = self.peak_storage_bytes * QUOTA_HEADROOM
        for name, quota in PLANS:
            if needed <= quota:
                return name, quota
        name, quota = PLANS[-1]
        return name, math.ceil(needed / quota) * quota


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _cumulative(weights: Sequence[float]) -> list[float]:
    return list(itertools.accumulate(weights))


def _skewed(rng: random.Random, items: Sequence[Any], skew: float) -> Any:
    return items[int(len(items) * rng.random() ** skew)]


@dataclass(frozen=True, slots=True)
class _Day:
    start: datetime
    events: int
    # Seconds of each hour inside the range: 3600, less in the hour running now, 0 after it.
    hour_seconds: tuple[float, ...]


class SyntheticUsage:
    """The generated platform: tenants made up front, then their events one day at a time (in
    time order, each day's events sorted). Deterministic for a seed and an end time."""

    def __init__(self, plan: SeedPlan, now: datetime) -> None:
        self.plan = plan
        self.now = now
        self.rng = random.Random(plan.seed)
        self.first = datetime.combine(
            (now - timedelta(days=plan.days - 1)).date(), datetime.min.time(), UTC
        )
        # Tenants, their taxonomies and first users exist a month before the first event.
        self.joined = self.first - timedelta(days=30)
        zipf = [1 / rank for rank in range(1, plan.tenants + 1)]
        self._tenant_cum = _cumulative(zipf)
        self.tenants = [
            self._tenant(rank, plan.events * weight / self._tenant_cum[-1])
            for rank, weight in enumerate(zipf, start=1)
        ]
        self._kinds = list(KIND_SHARES)
        self._kind_cum = _cumulative(list(KIND_SHARES.values()))
        self._type_cum = _cumulative([share for _, share, *_ in CONTENT_TYPES])
        self._language_cum = _cumulative([share for _, share in LANGUAGES])

    # -- tenants -------------------------------------------------------------------------

    def _tenant(self, rank: int, expected_events: float) -> _Tenant:
        rng = self.rng
        slug = f"{SLUG_PREFIX}{rank:05d}"
        roles = [Role.OWNER.value]
        # Users grow with the square root of activity: 5 for the smallest, ~600 for 1M events.
        count = 4 + round(math.sqrt(expected_events) / 2)
        for role, share in ROLE_SHARES:
            roles += [role.value] * max(1, round(count * share))
        roles += [Role.VIEWER.value] * max(1, count - len(roles))
        rng.shuffle(roles)  # the most active users are at the front, of any role
        users = [
            _User(_uuid(rng), f"user{number:05d}@{slug}.example", role, self.joined)
            for number, role in enumerate(roles, start=1)
        ]
        taxonomy = min(len(CATEGORY_NAMES), 3 + int(math.log10(expected_events + 1)))
        return _Tenant(
            id=_uuid(rng),
            slug=slug,
            categories=[_uuid(rng) for _ in range(taxonomy)],
            audiences=[_uuid(rng) for _ in range(min(len(AUDIENCE_NAMES), 1 + taxonomy // 2))],
            users=users,
            uploaders=[user for user in users if user.role in UPLOADER_ROLES],
        )

    def tenant_rows(self) -> list[EventRow]:
        name, quota = PLANS[0]  # until the events have shown how much each one stores
        return [
            (
                *(t.id, t.slug, f"Seed {t.slug[len(SLUG_PREFIX) :]}", TenantStatus.ACTIVE.value),
                *(name, quota, MAX_FILE_BYTES, self.joined, self.joined),
            )
            for t in self.tenants
        ]

    def category_rows(self) -> list[EventRow]:
        return [
            (t.id, category, CATEGORY_NAMES[index], self.joined)
            for t in self.tenants
            for index, category in enumerate(t.categories)
        ]

    def audience_rows(self) -> list[EventRow]:
        return [
            (t.id, audience, AUDIENCE_NAMES[index], self.joined)
            for t in self.tenants
            for index, audience in enumerate(t.audiences)
        ]

    # -- days ----------------------------------------------------------------------------

    def days(self) -> list[_Day]:
        """Every day from `first` to today, with its share of the events (largest remainder,
        so they add up to exactly `plan.events`)."""
        starts = [self.first + timedelta(days=offset) for offset in range(self.plan.days)]
        hours = [self._hour_seconds(start) for start in starts]
        weights = []
        for index, (start, seconds) in enumerate(zip(starts, hours, strict=True)):
            growth = 1 + (GROWTH - 1) * index / max(1, self.plan.days - 1)
            noise = 1 + self.rng.uniform(-DAY_NOISE, DAY_NOISE)
            covered = sum(w * s / 3600 for w, s in zip(HOUR_WEIGHTS, seconds, strict=True))
            weights.append(WEEKDAY_WEIGHTS[start.weekday()] * growth * noise * covered)
        exact = [self.plan.events * weight / sum(weights) for weight in weights]
        counts = [math.floor(value) for value in exact]
        by_remainder = sorted(range(len(exact)), key=lambda i: counts[i] - exact[i])
        for index in by_remainder[: self.plan.events - sum(counts)]:
            counts[index] += 1
        return [
            _Day(start, count, seconds)
            for start, count, seconds in zip(starts, counts, hours, strict=True)
        ]

    def _hour_seconds(self, start: datetime) -> tuple[float, ...]:
        return tuple(
            min(3600.0, max(0.0, (self.now - (start + timedelta(hours=hour))).total_seconds()))
            for hour in range(24)
        )

    def events_of(self, day: _Day) -> list[EventRow]:
        rng = self.rng
        hour_cum = _cumulative([w * s for w, s in zip(HOUR_WEIGHTS, day.hour_seconds, strict=True)])
        moments = []
        for _ in range(day.events):
            hour = bisect.bisect(hour_cum, rng.random() * hour_cum[-1])
            moments.append(hour * 3600 + rng.random() * day.hour_seconds[hour])
        moments.sort()
        tenants = rng.choices(self.tenants, cum_weights=self._tenant_cum, k=day.events)
        kinds = rng.choices(self._kinds, cum_weights=self._kind_cum, k=day.events)
        return [
            self._event(tenant, kind, day.start + timedelta(seconds=moment))
            for tenant, kind, moment in zip(tenants, kinds, moments, strict=True)
        ]

    # -- one event -----------------------------------------------------------------------

    def _event(self, tenant: _Tenant, kind: UsageKind, at: datetime) -> EventRow:
        rng = self.rng
        if kind in (UsageKind.DOWNLOAD, UsageKind.DELETE) and not tenant.live:
            kind = UsageKind.UPLOAD  # nothing stored yet: the first thing anyone does
        if kind is UsageKind.DOWNLOAD:
            return _file_event(
                tenant,
                kind,
                at,
                _skewed(rng, tenant.users, USER_ACTIVITY_SKEW),
                _skewed(rng, tenant.live, FILE_POPULARITY_SKEW),
            )
        if kind is UsageKind.LOGIN:
            user = _skewed(rng, tenant.users, USER_ACTIVITY_SKEW)
            return (tenant.id, at, kind.value, user.id, user.role, None, 0, None, None, [], None)
        if kind is UsageKind.SIGNUP:
            user = _User(
                _uuid(rng),
                f"user{len(tenant.users) + 1:05d}@{tenant.slug}.example",
                Role.VIEWER.value,
                at,
            )
            tenant.users.append(user)
            return (tenant.id, at, kind.value, user.id, user.role, None, 0, None, None, [], None)
        uploader = _skewed(rng, tenant.uploaders, USER_ACTIVITY_SKEW)
        if kind is UsageKind.DELETE:
            gone = tenant.live.pop(rng.randrange(len(tenant.live)))
            tenant.storage_bytes -= gone.size
            return _file_event(tenant, kind, at, uploader, gone)
        made = self._file(tenant, uploader, at)
        tenant.live.insert(rng.randrange(len(tenant.live) + 1), made)
        tenant.storage_bytes += made.size
        tenant.peak_storage_bytes = max(tenant.peak_storage_bytes, tenant.storage_bytes)
        return _file_event(tenant, kind, at, uploader, made)

    def _file(self, tenant: _Tenant, uploader: _User, at: datetime) -> _File:
        rng = self.rng
        content_type, _, median, sigma, extension = CONTENT_TYPES[
            bisect.bisect(self._type_cum, rng.random() * self._type_cum[-1])
        ]
        language = LANGUAGES[
            bisect.bisect(self._language_cum, rng.random() * self._language_cum[-1])
        ]
        # Lower categories are the common ones; one file in ten has none.
        category = None if rng.random() < 0.1 else _skewed(rng, tenant.categories, CATEGORY_SKEW)
        audiences = rng.sample(tenant.audiences, k=rng.choice((0, 0, 1, 1, 1, 2)))
        return _File(
            id=_uuid(rng),
            title=f"{rng.choice(TOPICS)} {rng.randrange(1, 1000)}",
            category_id=category,
            language=language[0],
            content_type=content_type,
            extension=extension,
            size=min(MAX_FILE_SIZE, max(1, round(rng.lognormvariate(math.log(median), sigma)))),
            sha256=f"{rng.getrandbits(256):064x}",  # of no content: seeded files have none
            audience_ids=sorted(audiences),
            uploaded_by=uploader.id,
            created_at=at,
        )

    # -- what remains at the end -----------------------------------------------------------

    def user_rows(self) -> list[EventRow]:
        return [
            (t.id, u.id, u.email, UNUSABLE_PASSWORD_HASH, u.role, u.created_at, u.created_at)
            for t in self.tenants
            for u in t.users
        ]

    def file_rows(self) -> list[EventRow]:
        return [
            (
                *(t.id, f.id, f.title, f.category_id, f.language, f.content_type, f.size),
                *(f.sha256, f"{f.title}.{f.extension}", file_key(t.id, f.id)),
                *(FileStatus.READY.value, f.uploaded_by, f.created_at, f.created_at),
            )
            for t in self.tenants
            for f in t.live
        ]

    def file_audience_rows(self) -> list[EventRow]:
        return [(t.id, f.id, a) for t in self.tenants for f in t.live for a in f.audience_ids]

    def usage_rows(self) -> list[EventRow]:
        return [(t.id, t.storage_bytes, len(t.live)) for t in self.tenants]

    def plan_rows(self) -> list[tuple[uuid.UUID, str, int]]:
        return [(t.id, *t.plan()) for t in self.tenants]


def _file_event(
    tenant: _Tenant, kind: UsageKind, at: datetime, user: _User, file: _File
) -> EventRow:
    return (
        *(tenant.id, at, kind.value, user.id, user.role, file.id, file.size, file.category_id),
        *(file.language, file.audience_ids, file.content_type),
    )


# -- writing ---------------------------------------------------------------------------------


async def _insert(
    connection: asyncpg.Connection, table: str, columns: Sequence[str], rows: list[EventRow]
) -> None:
    """COPY into a temporary twin of `table` (same column types, no constraints, no RLS),
    then into `table` itself in one statement; in the caller's transaction."""
    # Only this module's constants are formatted in (table and column names).
    twin = f"seed_{table}"
    names = ", ".join(columns)
    await connection.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {twin} ON COMMIT DELETE ROWS AS "  # noqa: S608
        f"SELECT {names} FROM {table} WITH NO DATA"
    )
    await connection.copy_records_to_table(twin, columns=list(columns), records=rows)
    await connection.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {twin}")  # noqa: S608


_SEEDED = "SELECT count(*) FROM tenants WHERE starts_with(slug, $1)"
_REMOVE = "DELETE FROM tenants WHERE starts_with(slug, $1)"
_SET_PLANS = (
    "UPDATE tenants t SET plan = p.plan, storage_quota_bytes = p.quota FROM unnest("
    "$1::uuid[], $2::text[], $3::bigint[]) AS p(id, plan, quota) WHERE t.id = p.id"
)


async def seed_usage(
    settings: Settings, plan: SeedPlan, *, replace: bool = False, now: datetime | None = None
) -> SeedReport:
    """Seeds `plan` into the database of `settings` and rolls it up; see the module docstring."""
    if plan.days > settings.usage_retention_days:
        raise DomainError(
            ErrorCode.INVALID_VALUE,
            f"at most {settings.usage_retention_days} days (the raw events' retention)",
            field="days",
        )
    world = SyntheticUsage(plan, now or datetime.now(UTC))
    report = SeedReport(
        tenant_ids=[t.id for t in world.tenants],
        events=plan.events,
        users=0,
        files=0,
        first=world.first,
        last=world.now,
    )
    platform_db = platform_db_config(settings)
    job = RollupJob(platform_db, retention_days=settings.usage_retention_days)
    connection = await asyncpg.connect(asyncpg_dsn(role_url(settings, "platform")))
    try:
        await _prepare(connection, world, replace=replace)
        await job.ensure_partitions(world.first, world.now)
        started = time.perf_counter()
        loaded = asyncio.Event()
        rolling = asyncio.create_task(_roll_up_until(job, loaded))
        try:
            await _load_events(connection, world, report)
            await _load_what_remains(connection, world, report)
        finally:
            loaded.set()
            report.load_seconds = time.perf_counter() - started
            report.rolled_up = await rolling
        report.rollup_seconds = time.perf_counter() - started - report.load_seconds
    finally:
        await connection.close()
        await platform_db.get_engine().dispose()
    return report


async def _roll_up_until(job: RollupJob, done: asyncio.Event) -> int:
    """The rollup job's rounds alongside the load (as a server's job would run them: Postgres
    rolls up one day while it writes the next), then rounds until everything is in: a round
    stops below any older transaction in the cluster, which a busy server always has."""
    counted = 0
    while not done.is_set():
        counted += await job.run_once()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), ROLLUP_INTERVAL_SECONDS)
    return counted + await job.catch_up()


async def _prepare(connection: asyncpg.Connection, world: SyntheticUsage, *, replace: bool) -> None:
    async with connection.transaction():
        if await connection.fetchval(_SEEDED, SLUG_PREFIX):
            if not replace:
                raise DomainError(
                    ErrorCode.INVALID_VALUE,
                    f"seeded tenants ({SLUG_PREFIX}*) exist already: remove them with --replace",
                    field="replace",
                )
            await connection.execute(_REMOVE, SLUG_PREFIX)
        await _insert(connection, "tenants", TENANT_COLUMNS, world.tenant_rows())
        await _insert(connection, "categories", NAMED_COLUMNS, world.category_rows())
        await _insert(connection, "audiences", NAMED_COLUMNS, world.audience_rows())


async def _load_what_remains(
    connection: asyncpg.Connection, world: SyntheticUsage, report: SeedReport
) -> None:
    """Users (signups included), the files still stored, their audiences, the quota counters
    and plans: the state the events left behind."""
    users, files = world.user_rows(), world.file_rows()
    async with connection.transaction():
        await _insert(connection, "users", USER_COLUMNS, users)
        await _insert(connection, "files", FILE_COLUMNS, files)
        await _insert(
            connection, "file_audiences", FILE_AUDIENCE_COLUMNS, world.file_audience_rows()
        )
        await _insert(connection, "tenant_usage", USAGE_COLUMNS, world.usage_rows())
        ids, plans, quotas = zip(*world.plan_rows(), strict=True)
        await connection.execute(_SET_PLANS, list(ids), list(plans), list(quotas))
    report.users, report.files = len(users), len(files)


async def _load_events(
    connection: asyncpg.Connection, world: SyntheticUsage, report: SeedReport
) -> None:
    """A day per transaction, in time order; the next day is generated meanwhile."""

    def generate(day: _Day) -> list[EventRow]:
        started = time.perf_counter()
        rows = world.events_of(day)
        report.generate_seconds += time.perf_counter() - started
        return rows

    async def write(rows: list[EventRow]) -> None:
        started = time.perf_counter()
        async with connection.transaction():
            await _insert(connection, "usage_events", EVENT_COLUMNS, rows)
        report.copy_seconds += time.perf_counter() - started

    writing: asyncio.Task[None] | None = None
    for day in world.days():
        rows = await asyncio.to_thread(generate, day)
        if writing is not None:
            await writing
        writing = asyncio.create_task(write(rows))
    if writing is not None:
        await writing
