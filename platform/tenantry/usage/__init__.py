"""Usage reports: what a tenant's admins and the operator read, as JSON, CSV and HTML."""
