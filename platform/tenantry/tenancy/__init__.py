"""Tenant resolution: middleware, per-request tenant context, host cache."""
