"""Object-key layout. Keys are made here, by the server, from UUIDs only.

Nothing a client sends ever becomes part of a key: original filenames live in the database and
come back as Content-Disposition. The patterns below are the whole key space; stores check every
key and prefix against them, so a malformed key can never reach a bucket or escape a directory.
"""

import re
from uuid import UUID

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_BRANDING_NAME = r"[a-z0-9][a-z0-9_-]{0,62}"

# Beside a file's key a store may stage what the file's upload has received so far (the S3
# store's tus tail, and the state its last append began from): the upload session's, not a file's.
TUS_TAIL, TUS_BASE = "tus-tail", "tus-base"
STAGING_NAMES = (TUS_TAIL, TUS_BASE)
_STAGING = "|".join(re.escape(name) for name in STAGING_NAMES)

KEY_PATTERN = re.compile(
    rf"tenants/{_UUID}/(?:files/{_UUID}(?:\.(?:{_STAGING}))?|branding/{_BRANDING_NAME})"
)
_FILE_KEY = re.compile(rf"tenants/({_UUID})/files/({_UUID})")
# Prefixes follow the key hierarchy and always end in "/", so a prefix never matches a sibling
# ("tenants/<a>" would also match "tenants/<a>x..." if it were allowed).
PREFIX_PATTERN = re.compile(rf"tenants/(?:{_UUID}/(?:(?:files|branding)/)?)?")
TENANT_SCOPED_PREFIX_PATTERN = re.compile(rf"tenants/{_UUID}/(?:(?:files|branding)/)?")
BRANDING_NAME_PATTERN = re.compile(_BRANDING_NAME)


class InvalidKeyError(ValueError):
    """A key or prefix outside the server-made layout."""


def _require_uuid(value: UUID, what: str) -> UUID:
    # Type hints are not enforced at run time; a str here would let arbitrary text into a key.
    if not isinstance(value, UUID):
        raise TypeError(f"{what} must be a UUID, not {type(value).__name__}")
    return value


def tenant_prefix(tenant_id: UUID) -> str:
    return f"tenants/{_require_uuid(tenant_id, 'tenant_id')}/"


def file_key(tenant_id: UUID, file_id: UUID) -> str:
    return f"{tenant_prefix(tenant_id)}files/{_require_uuid(file_id, 'file_id')}"


def branding_prefix(tenant_id: UUID) -> str:
    return f"{tenant_prefix(tenant_id)}branding/"


def branding_key(tenant_id: UUID, name: str) -> str:
    """Key of a branding asset; `name` is a server-chosen slot such as "logo" or "favicon"."""
    if not BRANDING_NAME_PATTERN.fullmatch(name):
        raise InvalidKeyError(f"invalid branding asset name: {name!r}")
    return f"{branding_prefix(tenant_id)}{name}"


def is_server_key(key: str) -> bool:
    """Whether `key` is one the server makes (a bucket may hold others, put there by hand)."""
    return KEY_PATTERN.fullmatch(key) is not None


def validate_key(key: str) -> str:
    if not KEY_PATTERN.fullmatch(key):
        raise InvalidKeyError(f"not a server-made object key: {key!r}")
    return key


def validate_prefix(prefix: str) -> str:
    if not PREFIX_PATTERN.fullmatch(prefix):
        raise InvalidKeyError(f"not a key prefix: {prefix!r}")
    return prefix


def validate_tenant_scoped_prefix(prefix: str) -> str:
    """Bulk deletes stay inside one tenant: "tenants/" alone would wipe every tenant."""
    if not TENANT_SCOPED_PREFIX_PATTERN.fullmatch(prefix):
        raise InvalidKeyError(f"not a tenant-scoped key prefix: {prefix!r}")
    return prefix


def tenant_of_key(key: str) -> UUID:
    """The tenant whose prefix holds a valid key."""
    return UUID(validate_key(key).split("/", 2)[1])


def file_of_key(key: str) -> tuple[UUID, UUID] | None:
    """(tenant, file) of a file's key; None for other keys (branding assets, staging)."""
    match = _FILE_KEY.fullmatch(validate_key(key))
    return (UUID(match[1]), UUID(match[2])) if match else None


def staging_key(key: str, name: str) -> str:
    """Where a store stages `name` (one of STAGING_NAMES) for the upload of the file at `key`."""
    if not _FILE_KEY.fullmatch(key) or name not in STAGING_NAMES:
        raise InvalidKeyError(f"no staging {name!r} for {key!r}")
    return f"{key}.{name}"


def staging_owner(key: str) -> str | None:
    """The file key whose upload a staging key belongs to; None for any other key."""
    owner, dot, name = validate_key(key).rpartition(".")
    return owner if dot and name in STAGING_NAMES else None
