from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, head, patch, post, put, route
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.handlers import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, RequestBody, Schema
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody
from litestar.response import Redirect
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from multipart import parse_options_header

from tenantry.auth.guards import requires_role
from tenantry.auth.principals import Principal
from tenantry.db.enums import Role
from tenantry.files.deps import (
    provide_audiences,
    provide_categories,
    provide_direct_uploads,
    provide_file_service,
    provide_file_uploads,
    provide_tus_uploads,
)
from tenantry.files.direct import DirectUploads
from tenantry.files.multipart import read_form
from tenantry.files.repository import FileFilters
from tenantry.files.schemas import (
    DirectUploadComplete,
    DirectUploadCreate,
    DirectUploadOut,
    DownloadLink,
    FileMetadata,
    FileOut,
    FilePatch,
    FileSort,
    FileStats,
    PendingFileCreate,
    PendingFileOut,
)
from tenantry.files.services import FileService
from tenantry.files.taxonomy import TaxonomyService, TermIn, TermOut
from tenantry.files.tus import (
    CHECKSUM_ALGORITHMS,
    OFFSET_STREAM,
    TUS_EXTENSIONS,
    TUS_VERSION,
    TusState,
    TusUploads,
    parse_checksum,
)
from tenantry.files.uploads import FileUploads
from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.lib.observe import ANSWER_HEADERS
from tenantry.lib.openapi import problems, schema_ref, with_request_body
from tenantry.lib.schemas import Limit, Offset, Page, convert_or_invalid, decode_json_or_invalid
from tenantry.tenancy.deps import provide_origin

MAX_JSON_BODY = 64 * 1024
_SINGLE_FIELDS = ("title", "description", "category", "language")

_UUID = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.UUID)
_TEXT = Schema(type=OpenAPIType.STRING)
UPLOAD_BODY = RequestBody(
    required=True,
    description="`multipart/form-data`, the metadata fields before the `file` part; or "
    "`application/json` (`PendingFileCreate`) for the two-step upload.",
    content={
        "multipart/form-data": OpenAPIMediaType(
            schema=Schema(
                type=OpenAPIType.OBJECT,
                required=["title", "file"],
                properties={
                    "title": _TEXT,
                    "description": _TEXT,
                    "category": _UUID,
                    "language": Schema(
                        type=OpenAPIType.STRING,
                        description="ISO 639-1 code",
                    ),
                    "audiences": Schema(type=OpenAPIType.ARRAY, items=_UUID),
                    "file": Schema(
                        type=OpenAPIType.STRING,
                        format=OpenAPIFormat.BINARY,
                        description="The content; its part's filename is kept as the "
                        "original filename.",
                    ),
                },
            )
        ),
        "application/json": OpenAPIMediaType(schema=schema_ref(PendingFileCreate)),
    },
)
CONTENT_BODY = RequestBody(
    required=True,
    description="The raw bytes of the pending file; `Content-Type`, if given, must agree "
    "with the sniffed type.",
    content={
        "application/octet-stream": OpenAPIMediaType(
            schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
        )
    },
)
_UPLOAD_PROBLEMS = (
    ErrorCode.FILE_TOO_LARGE,
    ErrorCode.QUOTA_EXCEEDED,
    ErrorCode.BODY_TOO_LARGE,
    ErrorCode.UNSUPPORTED_FILE_TYPE,
    ErrorCode.CONTENT_TYPE_MISMATCH,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    ErrorCode.EMPTY_FILE,
    ErrorCode.INVALID_FIELD,
)
_METADATA_PROBLEMS = (
    ErrorCode.INVALID_LANGUAGE,
    ErrorCode.UNKNOWN_CATEGORY,
    ErrorCode.UNKNOWN_AUDIENCE,
    ErrorCode.INVALID_VALUE,
)


# What both upload controllers need: the saga, and where the links they answer point.
_UPLOADS = {
    "file_uploads": Provide(provide_file_uploads, sync_to_thread=False),
    "origin": Provide(provide_origin, sync_to_thread=False),
}


class FilesController(Controller):
    path = "/api/v1/files"
    tags = ["files"]
    guards = [requires_role(Role.VIEWER)]
    dependencies = {
        "file_service": Provide(provide_file_service, sync_to_thread=False),
        **_UPLOADS,
    }

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

    @get("/{file_id:uuid}", responses=problems(ErrorCode.FILE_NOT_FOUND))
    async def get_file(
        self, file_id: FromPath[uuid.UUID], file_service: NamedDependency[FileService]
    ) -> FileOut:
        """One ready file's metadata."""
        return await file_service.get_file(file_id)

    @get(
        "/{file_id:uuid}/download",
        responses={
            307: ResponseSpec(None, description="`?redirect=true`: the signed URL, in `Location`."),
            **problems(ErrorCode.FILE_NOT_FOUND),
        },
    )
    async def download(
        self,
        file_id: FromPath[uuid.UUID],
        file_service: NamedDependency[FileService],
        origin: NamedDependency[str],
        redirect: FromQuery[bool] = False,
    ) -> Response[DownloadLink]:
        """A signed, absolute URL, valid for the tenant's TTL, answering with the original
        filename. `?redirect=true` answers 307 to it instead."""
        link = await file_service.download_link(file_id, origin=origin)
        return Redirect(link.url, status_code=307) if redirect else Response(link)

    @post(
        "/",
        guards=[requires_role(Role.EDITOR)],
        request_max_body_size=None,
        status_code=HTTP_201_CREATED,
        operation_class=with_request_body(UPLOAD_BODY, schemas=(PendingFileCreate,)),
        responses=problems(
            *_UPLOAD_PROBLEMS,
            *_METADATA_PROBLEMS,
            ErrorCode.INVALID_JSON,
            ErrorCode.VALIDATION_ERROR,
            ErrorCode.INVALID_MULTIPART,
            ErrorCode.MISSING_FILE,
            ErrorCode.MISSING_FIELD,
            ErrorCode.UNKNOWN_FIELD,
            ErrorCode.FIELD_AFTER_FILE,
            ErrorCode.FIELD_TOO_LARGE,
        ),
    )
    async def upload(
        self, request: Request[Principal, Any, Any], file_uploads: NamedDependency[FileUploads]
    ) -> FileOut | PendingFileOut:
        """`multipart/form-data`: metadata fields (`title`, `description`, `category`, `language`,
        repeatable `audiences`) and then the `file` part, streamed in one pass.

        `application/json` (`title`, ..., `filename`): creates a pending file and returns the
        URL to `PUT` its raw content to (the two-step form)."""
        content_type = request.headers.get("content-type")
        if parse_options_header(content_type or "")[0] == "application/json":
            data = decode_json_or_invalid(await _bounded_body(request), PendingFileCreate)
            pending = await file_uploads.create_pending(data)
            return PendingFileOut(file=pending, upload_url=f"/api/v1/files/{pending.id}/content")
        form = await read_form(request.stream(), content_type)
        metadata = _metadata(form.fields)
        if form.file is None:
            raise DomainError(ErrorCode.MISSING_FILE, "the form has no 'file' part", field="file")
        return await file_uploads.upload(
            metadata, form.file.filename, form.file.declared_type, form.file.chunks
        )

    @put(
        "/{file_id:uuid}/content",
        guards=[requires_role(Role.EDITOR)],
        request_max_body_size=None,
        operation_class=with_request_body(CONTENT_BODY),
        responses=problems(ErrorCode.FILE_NOT_FOUND, *_UPLOAD_PROBLEMS),
    )
    async def upload_content(
        self,
        file_id: FromPath[uuid.UUID],
        request: Request[Principal, Any, Any],
        file_uploads: NamedDependency[FileUploads],
    ) -> FileOut:
        """The raw body of a pending file, through the same pipeline as multipart uploads."""
        return await file_uploads.upload_content(
            file_id, request.headers.get("content-type"), request.stream()
        )

    @patch(
        "/{file_id:uuid}",
        guards=[requires_role(Role.EDITOR)],
        responses=problems(ErrorCode.FILE_NOT_FOUND, *_METADATA_PROBLEMS),
    )
    async def update_file(
        self,
        file_id: FromPath[uuid.UUID],
        data: JSONBody[FilePatch],
        file_service: NamedDependency[FileService],
    ) -> FileOut:
        """Metadata only; the content of a file never changes (upload a new one)."""
        return await file_service.update_file(file_id, data)

    @delete(
        "/{file_id:uuid}",
        guards=[requires_role(Role.EDITOR)],
        status_code=HTTP_204_NO_CONTENT,
        responses=problems(ErrorCode.FILE_NOT_FOUND),
    )
    async def delete_file(
        self, file_id: FromPath[uuid.UUID], file_service: NamedDependency[FileService]
    ) -> None:
        """Delete a file: its object and its row; the usage counters drop by its size."""
        await file_service.delete_file(file_id)


class UploadsController(Controller):
    """Direct uploads: the client PUTs the parts to the store's URLs; the API only authorises
    (quota reserved up front) and verifies (size, sniffed type, sha256) before the file is
    ready."""

    path = "/api/v1/uploads"
    tags = ["files"]
    guards = [requires_role(Role.EDITOR)]
    dependencies = {
        "direct_uploads": Provide(provide_direct_uploads, sync_to_thread=False),
        **_UPLOADS,
    }

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        responses=problems(
            ErrorCode.FILE_TOO_LARGE,
            ErrorCode.QUOTA_EXCEEDED,
            ErrorCode.UNSUPPORTED_FILE_TYPE,
            *_METADATA_PROBLEMS,
        ),
    )
    async def start_upload(
        self,
        data: JSONBody[DirectUploadCreate],
        direct_uploads: NamedDependency[DirectUploads],
        origin: NamedDependency[str],
    ) -> DirectUploadOut:
        """Checks the tenant's rules for the declared size and type, reserves the quota and
        answers one signed URL per part, valid until `expires_at`: PUT each part's exact bytes
        there and keep the `ETag` of each answer."""
        return await direct_uploads.create(data, origin=origin)

    @post(
        "/{upload_id:uuid}/complete",
        status_code=HTTP_200_OK,
        responses=problems(
            ErrorCode.UPLOAD_NOT_FOUND,
            ErrorCode.UPLOAD_IN_PROGRESS,
            ErrorCode.UPLOAD_EXPIRED,
            ErrorCode.UPLOAD_PARTS_INVALID,
            ErrorCode.UPLOAD_SIZE_MISMATCH,
            ErrorCode.UPLOAD_TYPE_MISMATCH,
            ErrorCode.QUOTA_EXCEEDED,
        ),
    )
    async def complete_upload(
        self,
        upload_id: FromPath[uuid.UUID],
        data: JSONBody[DirectUploadComplete],
        direct_uploads: NamedDependency[DirectUploads],
    ) -> FileOut:
        """Joins the parts and verifies the object before the file is ready: its size is the
        declared size, its sniffed type the declared type and one the tenant accepts; its sha256
        is recorded. A refused object is deleted and its quota released. Completing again
        answers the same file."""
        return await direct_uploads.complete(upload_id, data)

    @delete(
        "/{upload_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        responses=problems(
            ErrorCode.UPLOAD_NOT_FOUND, ErrorCode.UPLOAD_IN_PROGRESS, ErrorCode.UPLOAD_COMPLETED
        ),
    )
    async def abort_upload(
        self, upload_id: FromPath[uuid.UUID], direct_uploads: NamedDependency[DirectUploads]
    ) -> None:
        """Abort an upload that is not complete: its parts go and its quota is released."""
        await direct_uploads.abort(upload_id)


TUS_PATH = "/api/v1/uploads/tus"
_TUS_HEADERS = (ErrorCode.TUS_VERSION_UNSUPPORTED,)
PATCH_BODY = RequestBody(
    required=True,
    description="The upload's next bytes, from `Upload-Offset` on.",
    content={
        OFFSET_STREAM: OpenAPIMediaType(
            schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
        )
    },
)
UploadLength = Annotated[int, HeaderParameter(name="Upload-Length", ge=1, le=2**63 - 1)]
UploadOffset = Annotated[int, HeaderParameter(name="Upload-Offset", ge=0, le=2**63 - 1)]


def requires_tus(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Every tus request but OPTIONS says the version it speaks (412 otherwise)."""
    if connection.scope.get("method") == "OPTIONS":
        return
    if connection.headers.get("tus-resumable") != TUS_VERSION:
        raise DomainError(
            ErrorCode.TUS_VERSION_UNSUPPORTED,
            f"send Tus-Resumable: {TUS_VERSION}",
            headers={"Tus-Version": TUS_VERSION},
        )


def _tus_headers(state: TusState) -> dict[str, str]:
    return {
        "Upload-Offset": str(state.offset),
        "Upload-Expires": state.expires_at.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        "Cache-Control": "no-store",
    }


class TusController(Controller):
    """Resumable uploads, tus 1.0.0: core, creation, termination, expiration and checksum
    (sha1). Each upload is a direct upload's session with its quota reserved at creation; the
    last PATCH verifies the whole file (size, sniffed type, sha256) and makes it ready."""

    path = TUS_PATH
    tags = ["files"]
    guards = [requires_role(Role.EDITOR), requires_tus]
    # On every answer of these routes, refusals before the handler included (lib.observe).
    opt = {ANSWER_HEADERS: ((b"tus-resumable", TUS_VERSION.encode()),)}
    dependencies = {
        "tus_uploads": Provide(provide_tus_uploads, sync_to_thread=False),
        **_UPLOADS,
    }

    # Named to sort before `tus_create`: Litestar registers a controller's handlers in name
    # order, and a path registered without OPTIONS gets its default OPTIONS handler first.
    # Protocol discovery, outside the document (like Litestar's own OPTIONS answers).
    @route("/", http_method="OPTIONS", status_code=HTTP_204_NO_CONTENT, include_in_schema=False)
    async def tus_capabilities(self, tus_uploads: NamedDependency[TusUploads]) -> Response[None]:
        """What this server speaks: version, extensions, the tenant's largest file."""
        return Response(
            None,
            status_code=HTTP_204_NO_CONTENT,
            headers={
                "Tus-Version": TUS_VERSION,
                "Tus-Extension": TUS_EXTENSIONS,
                "Tus-Max-Size": str(tus_uploads.max_size),
                "Tus-Checksum-Algorithm": CHECKSUM_ALGORITHMS,
            },
        )

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        responses={
            201: ResponseSpec(None, description="The upload's URL, in `Location`."),
            **problems(
                *_TUS_HEADERS,
                ErrorCode.FILE_TOO_LARGE,
                ErrorCode.QUOTA_EXCEEDED,
                ErrorCode.UNSUPPORTED_FILE_TYPE,
                ErrorCode.MISSING_FIELD,
                ErrorCode.INVALID_FIELD,
                *_METADATA_PROBLEMS,
            ),
        },
    )
    async def tus_create(
        self,
        upload_length: UploadLength,
        tus_uploads: NamedDependency[TusUploads],
        origin: NamedDependency[str],
        upload_metadata: Annotated[str | None, HeaderParameter(name="Upload-Metadata")] = None,
    ) -> Response[None]:
        """Creation: `Upload-Length` bytes, reserved against the quota now; `Upload-Metadata`
        carries `title` (required), `filename`, `filetype` (or `content_type`), `description`,
        `language`, `category` and `audiences` (comma-separated ids), each base64."""
        state = await tus_uploads.create(upload_length, upload_metadata)
        return Response(
            None,
            status_code=HTTP_201_CREATED,
            headers={
                **_tus_headers(state),
                "Location": f"{origin}{TUS_PATH}/{state.id}",
                "Tenantry-File-Id": str(state.file_id),
            },
        )

    @head(
        "/{upload_id:uuid}",
        responses=problems(*_TUS_HEADERS, ErrorCode.UPLOAD_NOT_FOUND, ErrorCode.UPLOAD_EXPIRED),
    )
    async def tus_offset(
        self, upload_id: FromPath[uuid.UUID], tus_uploads: NamedDependency[TusUploads]
    ) -> Response[None]:
        """The upload's offset (`Upload-Offset`: the bytes the server holds) and length."""
        state = await tus_uploads.state(upload_id)
        return Response(None, headers={**_tus_headers(state), "Upload-Length": str(state.length)})

    @patch(
        "/{upload_id:uuid}",
        request_max_body_size=None,
        status_code=HTTP_204_NO_CONTENT,
        operation_class=with_request_body(PATCH_BODY),
        responses=problems(
            *_TUS_HEADERS,
            ErrorCode.UPLOAD_NOT_FOUND,
            ErrorCode.UPLOAD_EXPIRED,
            ErrorCode.UPLOAD_COMPLETED,
            ErrorCode.UPLOAD_IN_PROGRESS,
            ErrorCode.UPLOAD_OFFSET_MISMATCH,
            ErrorCode.UPLOAD_LOCKED,
            ErrorCode.UPLOAD_LENGTH_EXCEEDED,
            ErrorCode.CHECKSUM_MISMATCH,
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            ErrorCode.UNSUPPORTED_FILE_TYPE,
            ErrorCode.CONTENT_TYPE_MISMATCH,
            ErrorCode.EMPTY_FILE,
            ErrorCode.UPLOAD_SIZE_MISMATCH,
            ErrorCode.UPLOAD_TYPE_MISMATCH,
            ErrorCode.QUOTA_EXCEEDED,
            ErrorCode.TOO_MANY_UPLOADS,
        ),
    )
    async def tus_append(
        self,
        upload_id: FromPath[uuid.UUID],
        upload_offset: UploadOffset,
        request: Request[Principal, Any, Any],
        tus_uploads: NamedDependency[TusUploads],
        upload_checksum: Annotated[str | None, HeaderParameter(name="Upload-Checksum")] = None,
    ) -> Response[None]:
        """The bytes at `Upload-Offset` (`Content-Type: application/offset+octet-stream`),
        streamed to the store; the new offset comes back. The PATCH that completes the upload
        answers once the file is verified and ready. `Upload-Checksum: sha1 <base64>` is
        checked (460 on a mismatch, nothing kept)."""
        if request.headers.get("content-type") != OFFSET_STREAM:
            raise DomainError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, f"send {OFFSET_STREAM}")
        state = await tus_uploads.append(
            upload_id,
            upload_offset,
            request.stream(),
            checksum=parse_checksum(upload_checksum),
        )
        return Response(None, status_code=HTTP_204_NO_CONTENT, headers=_tus_headers(state))

    @delete(
        "/{upload_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        responses=problems(
            *_TUS_HEADERS,
            ErrorCode.UPLOAD_NOT_FOUND,
            ErrorCode.UPLOAD_IN_PROGRESS,
            ErrorCode.UPLOAD_COMPLETED,
        ),
    )
    async def tus_terminate(
        self, upload_id: FromPath[uuid.UUID], tus_uploads: NamedDependency[TusUploads]
    ) -> None:
        """Termination: the upload's bytes go and its quota is released."""
        await tus_uploads.terminate(upload_id)


async def _bounded_body(request: Request[Any, Any, Any]) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BODY:
            raise DomainError(ErrorCode.BODY_TOO_LARGE, "JSON body too large", field="body")
    return bytes(body)


def _metadata(fields: dict[str, list[str]]) -> FileMetadata:
    """Form fields as FileMetadata: empty optional fields mean "not given"."""
    unknown = set(fields) - {*_SINGLE_FIELDS, "audiences"}
    if unknown:
        name = sorted(unknown)[0]
        raise DomainError(ErrorCode.UNKNOWN_FIELD, f"unknown field '{name}'", field=name)
    data: dict[str, object] = {}
    for name in _SINGLE_FIELDS:
        values = fields.get(name, [])
        if len(values) > 1:
            raise DomainError(
                ErrorCode.INVALID_FIELD, f"field '{name}' given more than once", field=name
            )
        if values and (values[0] or name == "title"):
            data[name] = values[0]
    data["audiences"] = [value for value in fields.get("audiences", []) if value]
    if "title" not in data:
        raise DomainError(ErrorCode.MISSING_FIELD, "title is required", field="title")
    return convert_or_invalid(data, FileMetadata)


class TaxonomyReadController(Controller):
    """Read-only: every user of the tenant (viewer and up) fills upload forms from these."""

    guards = [requires_role(Role.VIEWER)]
    tags = ["taxonomy"]

    @get("/")
    async def list_terms(
        self,
        taxonomy: NamedDependency[TaxonomyService[Any]],
        limit: Limit = 20,
        offset: Offset = 0,
    ) -> Page[TermOut]:
        """The tenant's terms, sorted by name, in pages (`limit` at most 100): a form that
        needs them all asks for `limit=100` and pages on while `offset + limit < total`."""
        return await taxonomy.list_terms(limit=limit, offset=offset)


class TaxonomyAdminController(TaxonomyReadController):
    """Tenant admins and owners manage the taxonomy."""

    guards = [requires_role(Role.ADMIN)]
    tags = ["admin"]

    @post("/", responses=problems(ErrorCode.CATEGORY_EXISTS, ErrorCode.AUDIENCE_EXISTS))
    async def create_term(
        self, data: JSONBody[TermIn], taxonomy: NamedDependency[TaxonomyService[Any]]
    ) -> TermOut:
        """The name is trimmed; a name the tenant already uses is 409 (`*_exists`)."""
        return await taxonomy.create_term(data)

    @get(
        "/{term_id:uuid}",
        responses=problems(ErrorCode.CATEGORY_NOT_FOUND, ErrorCode.AUDIENCE_NOT_FOUND),
    )
    async def get_term(
        self, term_id: FromPath[uuid.UUID], taxonomy: NamedDependency[TaxonomyService[Any]]
    ) -> TermOut:
        """One term by id."""
        return await taxonomy.get_term(term_id)

    @patch(
        "/{term_id:uuid}",
        responses=problems(
            ErrorCode.CATEGORY_NOT_FOUND,
            ErrorCode.AUDIENCE_NOT_FOUND,
            ErrorCode.CATEGORY_EXISTS,
            ErrorCode.AUDIENCE_EXISTS,
        ),
    )
    async def rename_term(
        self,
        term_id: FromPath[uuid.UUID],
        data: JSONBody[TermIn],
        taxonomy: NamedDependency[TaxonomyService[Any]],
    ) -> TermOut:
        """Rename; files keep referring to the term by id."""
        return await taxonomy.rename_term(term_id, data)

    @delete(
        "/{term_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        responses=problems(ErrorCode.CATEGORY_NOT_FOUND, ErrorCode.AUDIENCE_NOT_FOUND),
    )
    async def delete_term(
        self, term_id: FromPath[uuid.UUID], taxonomy: NamedDependency[TaxonomyService[Any]]
    ) -> None:
        """Files are never deleted with a term: a deleted category leaves its files without a
        category (`category` becomes null); a deleted audience is taken off every file."""
        await taxonomy.delete_term(term_id)


_CATEGORIES = {"taxonomy": Provide(provide_categories, sync_to_thread=False)}
_AUDIENCES = {"taxonomy": Provide(provide_audiences, sync_to_thread=False)}


class CategoriesController(TaxonomyReadController):
    path = "/api/v1/categories"
    dependencies = _CATEGORIES


class AudiencesController(TaxonomyReadController):
    path = "/api/v1/audiences"
    dependencies = _AUDIENCES


class CategoriesAdminController(TaxonomyAdminController):
    path = "/api/v1/admin/categories"
    dependencies = _CATEGORIES


class AudiencesAdminController(TaxonomyAdminController):
    path = "/api/v1/admin/audiences"
    dependencies = _AUDIENCES
