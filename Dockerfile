# syntax=docker/dockerfile:1
# Tenantry's production image: `tenantry serve` (granian) by default; the same image runs the
# one-shot commands (`db bootstrap`, `db upgrade`, `tenants apply tenants/`).

# -- builder: the locked environment in /app/.venv ------------------------------------------------
FROM python:3.11-slim AS builder

COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /uvx /bin/

# Bytecode compiled now, because the runtime's root filesystem is read-only; copy mode, because
# the cache mount is another filesystem; the image's own Python, never a downloaded one.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=0 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /app

# Dependencies first: this layer is rebuilt only when the lock changes, not on every code change.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-install-project

# Then the project, installed as a wheel (not editable): the wheel carries the migrations
# (pyproject.toml: force-include), so the runtime stage needs nothing but the venv.
COPY README.md ./
COPY platform ./platform
COPY migrations ./migrations
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-editable

# -- runtime ----------------------------------------------------------------------------------------
FROM python:3.11-slim AS runtime

# A fixed uid, the chart's runAsUser; it owns the data dir, and so does a new named volume
# mounted there (Docker copies the owner), which keeps Compose's data volume writable.
RUN groupadd --system --gid 10001 tenantry \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin tenantry \
    && mkdir -p /var/lib/tenantry \
    && chown 10001:10001 /var/lib/tenantry

COPY --from=builder /app/.venv /app/.venv
# The demo tenant manifests, for `tenantry tenants apply tenants/` (relative to WORKDIR).
COPY tenants /app/tenants

# Writes go only to mounted paths: the data dir (a volume) and /tmp (tmpfs or emptyDir).
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TMPDIR=/tmp \
    TENANTRY_ENV=production \
    TENANTRY_DATA_DIR=/var/lib/tenantry

WORKDIR /app
VOLUME ["/var/lib/tenantry"]
USER 10001:10001
EXPOSE 8000

# slim has no curl: Python asks the liveness endpoint on the configured port.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('TENANTRY_SERVER_PORT', '8000') + '/health/live', timeout=4)"]

ENTRYPOINT ["tenantry"]
CMD ["serve"]
