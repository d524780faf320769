"""Tenant-admin API: the tenant's taxonomy (categories and audiences)."""
