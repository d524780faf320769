"""Authentication: password hashing, access and refresh tokens, login flows, guards."""
