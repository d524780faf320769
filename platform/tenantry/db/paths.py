from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"
TENANTS_DIR = PROJECT_ROOT / "tenants"
