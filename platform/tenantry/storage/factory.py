"""The deployment's store: S3 when a bucket is configured, else the local disk under the data dir."""

from __future__ import annotations

import hashlib
import hmac

from tenantry.config import Settings
from tenantry.storage.local import LocalStore
from tenantry.storage.protocol import ObjectStore
from tenantry.storage.s3 import S3Store


def build_store(settings: Settings) -> ObjectStore:
    if settings.s3 is not None:
        s3 = settings.s3
        return S3Store(
            bucket=s3.bucket,
            endpoint_url=s3.endpoint_url,
            region=s3.region,
            access_key_id=s3.access_key_id,
            secret_access_key=s3.secret_access_key,
            part_size=s3.part_size,
            connect_timeout=s3.connect_timeout,
            read_timeout=s3.read_timeout,
            max_attempts=s3.max_attempts,
            operation_timeout=s3.operation_timeout,
        )
    # A key of its own, derived from the JWT secret: no new secret to manage, and a leaked
    # download URL says nothing about the token key.
    signing_key = hmac.new(
        settings.jwt_secret.encode(), b"tenantry-local-store", hashlib.sha256
    ).digest()
    return LocalStore(settings.data_dir / "objects", signing_key, base_url_path="/_store")
