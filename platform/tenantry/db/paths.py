"""Where the migrations and the demo tenants live.

A source checkout keeps the migrations in the top-level `migrations/`; the wheel carries the
same directory as `tenantry/migrations` (pyproject.toml, hatch `force-include`), so an installed
package can run `tenantry db upgrade` without the source tree.
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
# In a checkout: the repository root. Installed: site-packages' parent, which has no migrations.
PROJECT_ROOT = PACKAGE_DIR.parents[1]


def find_migrations_dir(project_root: Path = PROJECT_ROOT, package_dir: Path = PACKAGE_DIR) -> Path:
    """The checkout's `migrations/` when there is one, else the copy inside the package."""
    source = project_root / "migrations"
    if (source / "env.py").is_file():
        return source
    return package_dir / "migrations"


MIGRATIONS_DIR = find_migrations_dir()
TENANTS_DIR = PROJECT_ROOT / "tenants"
