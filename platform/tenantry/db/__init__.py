"""Database: models, engines (tenant and platform), the RLS session hook, roles, migrations."""
