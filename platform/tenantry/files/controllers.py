from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Redirect, Stream
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT, HTTP_206_PARTIAL_CONTENT
from multipart import parse_options_header

from tenantry.auth.guards import requires_role
from tenantry.auth.middleware import Principal
from tenantry.files.deps import provide_file_service
from tenantry.files.multipart import read_form
from tenantry.files.schemas import (
    DownloadLink,
    FileMetadata,
    FileOut,
    FilePatch,
    FileSort,
    FileStats,
    PendingFileCreate,
    PendingFileOut,
)
from tenantry.files.services import FileFilters, FileService
from tenantry.lib.errors import InvalidInput, NotFound
from tenantry.lib.schemas import Limit, Offset, Page, convert_or_invalid, decode_json_or_invalid
from tenantry.runtime import AppServices
from tenantry.storage import LocalStore, RangeNotSatisfiable, content_disposition, parse_range
from tenantry.tenancy.zones import OPS

MAX_JSON_BODY = 64 * 1024
_SINGLE_FIELDS = ("title", "description", "category", "language")


class FilesController(Controller):
    path = "/api/v1/files"
    tags = ["files"]
    guards = [requires_role("viewer")]
    dependencies = {"file_service": Provide(provide_file_service, sync_to_thread=False)}

    @get("/")
    async def list_files(
        self,
        file_service: NamedDependency[FileService],
        category: FromQuery[uuid.UUID | None] = None,
        language: FromQuery[str | None] = None,
        audience: FromQuery[uuid.UUID | None] = None,
        content_type: FromQuery[str | None] = None,
        uploaded_by: FromQuery[uuid.UUID | None] = None,
        q: FromQuery[str | None] = None,
        created_after: FromQuery[datetime | None] = None,
        created_before: FromQuery[datetime | None] = None,
        sort: FromQuery[FileSort] = "-created_at",
        limit: Limit = 20,
        offset: Offset = 0,
    ) -> Page[FileOut]:
        """Ready files, newest first by default; `q` searches title and description."""
        filters = FileFilters(
            category=category,
            language=language,
            audience=audience,
            content_type=content_type,
            uploaded_by=uploaded_by,
            q=q,
            created_after=created_after,
            created_before=created_before,
        )
        return await file_service.list_files(filters, sort=sort, limit=limit, offset=offset)

    @get("/stats")
    async def stats(self, file_service: NamedDependency[FileService]) -> FileStats:
        """Totals, and counts and bytes by category, language, audience and content type
        (every category and audience of the tenant, those with no files included)."""
        return await file_service.stats()

    @get("/{file_id:uuid}")
    async def get_file(
        self, file_id: FromPath[uuid.UUID], file_service: NamedDependency[FileService]
    ) -> FileOut:
        return await file_service.get_file(file_id)

    @get("/{file_id:uuid}/download")
    async def download(
        self,
        file_id: FromPath[uuid.UUID],
        file_service: NamedDependency[FileService],
        request: Request[Principal, Any, Any],
        redirect: FromQuery[bool] = False,
    ) -> DownloadLink | Redirect:
        """A signed URL, valid for the tenant's TTL, answering with the original filename.
        `?redirect=true` answers 307 to it instead."""
        link = await file_service.download_link(file_id)
        if link.url.startswith("/"):  # the local store's app-signed URL: make it absolute
            link = msgspec.structs.replace(link, url=str(request.base_url).rstrip("/") + link.url)
        return Redirect(link.url, status_code=307) if redirect else link

    @post(
        "/",
        guards=[requires_role("editor")],
        request_max_body_size=None,
        status_code=HTTP_201_CREATED,
    )
    async def upload(
        self, request: Request[Principal, Any, Any], file_service: NamedDependency[FileService]
    ) -> FileOut | PendingFileOut:
        """`multipart/form-data`: metadata fields (`title`, `description`, `category`, `language`,
        repeatable `audiences`) and then the `file` part, streamed in one pass.

        `application/json` (`title`, ..., `filename`): creates a pending file and returns the
        URL to `PUT` its raw content to (the two-step form)."""
        content_type = request.headers.get("content-type")
        if parse_options_header(content_type or "")[0] == "application/json":
            data = decode_json_or_invalid(await _bounded_body(request), PendingFileCreate)
            pending = await file_service.create_pending(data)
            return PendingFileOut(file=pending, upload_url=f"/api/v1/files/{pending.id}/content")
        form = await read_form(request.stream(), content_type)
        metadata = _metadata(form.fields)
        if form.file is None:
            raise InvalidInput("the form has no 'file' part", code="missing_file", field="file")
        return await file_service.upload(
            metadata, form.file.filename, form.file.declared_type, form.file.chunks
        )

    @put("/{file_id:uuid}/content", guards=[requires_role("editor")], request_max_body_size=None)
    async def upload_content(
        self,
        file_id: FromPath[uuid.UUID],
        request: Request[Principal, Any, Any],
        file_service: NamedDependency[FileService],
    ) -> FileOut:
        """The raw body of a pending file, through the same pipeline as multipart uploads."""
        return await file_service.upload_content(
            file_id, request.headers.get("content-type"), request.stream()
        )

    @patch("/{file_id:uuid}", guards=[requires_role("editor")])
    async def update_file(
        self,
        file_id: FromPath[uuid.UUID],
        data: JSONBody[FilePatch],
        file_service: NamedDependency[FileService],
    ) -> FileOut:
        """Metadata only; the content of a file never changes (upload a new one)."""
        return await file_service.update_file(file_id, data)

    @delete("/{file_id:uuid}", guards=[requires_role("editor")], status_code=HTTP_204_NO_CONTENT)
    async def delete_file(
        self, file_id: FromPath[uuid.UUID], file_service: NamedDependency[FileService]
    ) -> None:
        await file_service.delete_file(file_id)


class LocalStoreController(Controller):
    """Serves the local store's app-signed URLs (the stand-in for presigned S3 URLs).

    The signature is the authorisation: it names the key, the expiry, the filename and the
    content type, so one URL opens exactly one object until it expires."""

    path = "/_store"
    opt = {"zone": OPS}
    tags = ["ops"]
    include_in_schema = False

    @get("/{key:path}")
    async def serve(
        self,
        key: FromPath[str],
        request: Request[Any, Any, Any],
        exp: FromQuery[str],
        fn: FromQuery[str],
        ct: FromQuery[str],
        sig: FromQuery[str],
    ) -> Response[Any]:
        store = AppServices.of(request).store
        key = key.lstrip("/")
        if not isinstance(store, LocalStore) or not store.verify_signed(key, exp, fn, ct, sig):
            raise NotFound("no such object, or the link expired", code="invalid_signature")
        info = await store.head(key)
        if info is None:
            raise NotFound("no such object", code="object_not_found")
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
            store.open_range(key, start, end),
            media_type=ct,
            headers=headers,
            status_code=HTTP_206_PARTIAL_CONTENT if byte_range else 200,
        )


async def _bounded_body(request: Request[Any, Any, Any]) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BODY:
            raise InvalidInput("JSON body too large", code="body_too_large", field="body")
    return bytes(body)


def _metadata(fields: dict[str, list[str]]) -> FileMetadata:
    """Form fields as FileMetadata: empty optional fields mean "not given"."""
    unknown = set(fields) - {*_SINGLE_FIELDS, "audiences"}
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidInput(f"unknown field '{name}'", code="unknown_field", field=name)
    data: dict[str, object] = {}
    for name in _SINGLE_FIELDS:
        values = fields.get(name, [])
        if len(values) > 1:
            raise InvalidInput(f"field '{name}' given more than once", field=name)
        if values and (values[0] or name == "title"):
            data[name] = values[0]
    data["audiences"] = [value for value in fields.get("audiences", []) if value]
    if "title" not in data:
        raise InvalidInput("title is required", code="missing_field", field="title")
    return convert_or_invalid(data, FileMetadata)
