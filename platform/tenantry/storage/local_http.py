"""The local store's HTTP side: its signed download links, with Range, and its signed part URLs
for direct uploads (PUT the part's exact bytes, answered with its ETag, as S3 answers).

A link is a capability: the HMAC over key, expiry, filename and content type authorises it, and
the key carries its tenant's prefix. Two more checks make it stop at once when it should: the
key's tenant must be live (not suspended, not offboarded), and a tenant host may only open its
own tenant's objects (`TenantGate`, provided by the app from tenancy).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from litestar import Controller, Request, Response, Router, get, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery
from litestar.response import Stream
from litestar.status_codes import HTTP_206_PARTIAL_CONTENT

from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.lib.zones import OPS
from tenantry.storage.keys import tenant_of_key
from tenantry.storage.local import LocalStore
from tenantry.storage.protocol import ServedMeter, TenantGate, content_disposition


class RangeNotSatisfiable(ValueError):
    """The Range header asks for bytes outside the object: answer 416 with `bytes */size`."""

    def __init__(self, size: int) -> None:
        super().__init__(f"range not satisfiable for {size} bytes")
        self.size = size


# One range only; digit runs are bounded so absurd numbers cannot cost anything to parse.
_BYTE_RANGE = re.compile(r"bytes\s*=\s*([0-9]{0,30})\s*-\s*([0-9]{0,30})", re.IGNORECASE)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (start, end) a Range header asks for, or None to send the whole object.

    Supports "bytes=100-199", "bytes=100-" and "bytes=-500". As RFC 9110 allows, headers we do
    not support (other units, several ranges) or that are malformed are ignored (None: answer
    200 with everything). Raises RangeNotSatisfiable when no requested byte exists.
    """
    if header is None:
        return None
    match = _BYTE_RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None
        suffix_length = int(last)
        if suffix_length == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(0, size - suffix_length), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(size)
    return start, min(end, size - 1)


class LocalStoreController(Controller):
    opt = {"zone": OPS}  # no tenant resolution, no token: the signature authorises
    include_in_schema = False

    @get("/{key:path}")
    async def serve(
        self,
        key: FromPath[str],
        request: Request[Any, Any, Any],
        local_store: NamedDependency[LocalStore],
        tenant_gate: NamedDependency[TenantGate],
        served_meter: NamedDependency[ServedMeter],
        exp: FromQuery[str],
        fn: FromQuery[str],
        ct: FromQuery[str],
        sig: FromQuery[str],
    ) -> Response[Any]:
        key = key.lstrip("/")
        if not local_store.verify_signed(key, exp, fn, ct, sig) or not await tenant_gate(
            request, tenant_of_key(key)
        ):
            raise DomainError(ErrorCode.INVALID_SIGNATURE, "no such object, or the link expired")
        info = await local_store.head(key)
        if info is None:
            raise DomainError(ErrorCode.OBJECT_NOT_FOUND, "no such object")
        headers = {
            "Accept-Ranges": "bytes",
            "Content-Disposition": content_disposition(fn),
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        }
        try:
            byte_range = parse_range(request.headers.get("range"), info.size)
        except RangeNotSatisfiable as exc:
            return Response(
                b"", status_code=416, headers={**headers, "Content-Range": f"bytes */{exc.size}"}
            )
        if info.size == 0:
            return Response(b"", media_type=ct, headers=headers)
        start, end = byte_range or (0, info.size - 1)
        headers["Content-Length"] = str(end - start + 1)
        if byte_range is not None:
            headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
        return Stream(
            _metered(local_store.open_range(key, start, end), key, served_meter),
            media_type=ct,
            headers=headers,
            status_code=HTTP_206_PARTIAL_CONTENT if byte_range else 200,
        )

    @put("/{key:path}", request_max_body_size=None, status_code=200)
    async def put_part(
        self,
        key: FromPath[str],
        request: Request[Any, Any, Any],
        local_store: NamedDependency[LocalStore],
        tenant_gate: NamedDependency[TenantGate],
        upload: FromQuery[str],
        part: FromQuery[str],
        size: FromQuery[str],
        exp: FromQuery[str],
        sig: FromQuery[str],
    ) -> Response[None]:
        """The signature names key, upload, part number and size: a URL for one part writes
        that part of that upload only (tampered with, 403)."""
        key = key.lstrip("/")
        if not local_store.verify_part(key, upload, part, size, exp, sig) or not await tenant_gate(
            request, tenant_of_key(key)
        ):
            raise DomainError(ErrorCode.PART_REFUSED, "the part URL was altered or has expired")
        etag = await local_store.write_part(key, upload, int(part), int(size), request.stream())
        return Response(None, headers={"ETag": etag})


async def _metered(
    chunks: AsyncIterator[bytes], key: str, meter: ServedMeter
) -> AsyncIterator[bytes]:
    """The chunks, and the meter told what was sent, whether the client read to the end or
    went away (a chunk counts once the server has taken it)."""
    sent = 0
    try:
        async for chunk in chunks:
            yield chunk
            sent += len(chunk)
    finally:
        meter(key, sent)


def local_store_router(store: LocalStore, path: str) -> Router:
    return Router(
        path=path,
        route_handlers=[LocalStoreController],
        dependencies={"local_store": Provide(lambda: store, use_cache=True, sync_to_thread=False)},
    )
