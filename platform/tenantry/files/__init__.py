"""Tenant file API: streamed uploads, listing, signed downloads, changes, stats."""
