"""Object storage: the ObjectStore protocol, S3 and local-disk stores, key layout, sniffing."""

from tenantry.storage.keys import (
    InvalidKeyError,
    branding_key,
    branding_prefix,
    file_key,
    is_server_key,
    staging_owner,
    tenant_of_key,
    tenant_prefix,
)
from tenantry.storage.local import LocalStore
from tenantry.storage.local_http import RangeNotSatisfiable, parse_range
from tenantry.storage.protocol import (
    CompletedPart,
    ObjectInfo,
    ObjectNotFoundError,
    ObjectStore,
    PartsRejectedError,
    ServedMeter,
    StoreError,
    StoreUnavailableError,
    TenantGate,
    content_disposition,
)
from tenantry.storage.s3 import S3Store
from tenantry.storage.sniff import SNIFF_BYTES, declared_matches, mime_essence, sniff

__all__ = [
    "SNIFF_BYTES",
    "CompletedPart",
    "InvalidKeyError",
    "LocalStore",
    "ObjectInfo",
    "ObjectNotFoundError",
    "ObjectStore",
    "PartsRejectedError",
    "RangeNotSatisfiable",
    "S3Store",
    "ServedMeter",
    "StoreError",
    "StoreUnavailableError",
    "TenantGate",
    "branding_key",
    "branding_prefix",
    "content_disposition",
    "declared_matches",
    "file_key",
    "is_server_key",
    "mime_essence",
    "parse_range",
    "sniff",
    "staging_owner",
    "tenant_of_key",
    "tenant_prefix",
]
