"""Tenant administration: what a tenant's admins manage themselves (people, API keys, brand,
settings, domains) and the audit log of it."""
