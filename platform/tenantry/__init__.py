"""Tenantry: multitenant, white-label media platform."""

__version__ = "0.1.0"
