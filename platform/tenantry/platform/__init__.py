"""Platform-admin API: provision, change, suspend and offboard tenants; their domains."""
