"""The error catalogue and its one mapping to RFC 9457 problem details.

Every problem `code` the API answers with is a member of `ErrorCode`, with its status, title and
meaning; `docs/errors.md` is generated from it (a test keeps the two in step), and each problem's
`type` is `/problems/{code}`, which the app serves. Services raise `DomainError(ErrorCode.X)`;
this module is the only place that turns errors into `application/problem+json` responses.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import Enum
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    InternalServerException,
    NotAuthorizedException,
    ValidationException,
)
from litestar.types import ExceptionHandlersMap

from tenantry.lib.logging import request_context

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_PATH = "/problems"
logger = structlog.get_logger("tenantry.errors")


class ErrorCode(Enum):
    """(HTTP status, title, meaning) of every problem code; the member's name, lowercased, is
    the `code` clients match on."""

    # -- generic input and protocol errors --------------------------------------------------
    BAD_REQUEST = (400, "Bad request", "The request could not be read (malformed syntax).")
    INVALID_JSON = (400, "Malformed JSON", "The body is not valid JSON.")
    VALIDATION_ERROR = (
        400,
        "Invalid input",
        "A query or path parameter, or a JSON body field, is missing, of the wrong type or out "
        "of range; `errors` names it.",
    )
    INVALID_FIELD = (
        422,
        "Invalid field",
        "A field is well formed but not acceptable (a form field, a merged setting); `errors` "
        "names it.",
    )
    INVALID_VALUE = (
        422,
        "Value not storable",
        "A value cannot be stored as given (a NUL character, a number out of range).",
    )
    UNKNOWN_FIELD = (422, "Unknown field", "The form carries a field this route does not take.")
    MISSING_FIELD = (422, "Missing field", "A required form field is absent.")
    BODY_TOO_LARGE = (413, "Body too large", "The request body exceeds this route's limit.")
    NOT_FOUND = (404, "Not found", "No route or resource at this path.")
    METHOD_NOT_ALLOWED = (405, "Method not allowed", "The path exists, but not with this method.")
    UNSUPPORTED_MEDIA_TYPE = (
        415,
        "Unsupported media type",
        "The request's Content-Type is not one this route accepts.",
    )
    INVALID_HOST = (400, "Invalid host", "The Host header is not a valid host name.")
    CLIENT_DISCONNECTED = (
        499,
        "Client closed the request",
        "The client went away before its request was read whole; nothing was kept. No client "
        "sees it: it is what the access log and the metrics record (nginx's 499).",
    )
    INTERNAL_ERROR = (
        500,
        "Internal server error",
        "A bug on our side; the request id in the answer finds it in the logs.",
    )
    DATABASE_UNAVAILABLE = (
        503,
        "Database unavailable",
        "The database could not be reached; nothing was changed. Retry later.",
    )
    CONCURRENT_CHANGE = (
        409,
        "Concurrent change",
        "Another request changed the same data at the same moment; nothing was changed. Retry.",
    )
    STORAGE_UNAVAILABLE = (
        503,
        "File storage unavailable",
        "The object store failed or could not be reached; nothing was kept. Retry later.",
    )
    # -- tenancy ---------------------------------------------------------------------------
    UNKNOWN_TENANT = (404, "Unknown tenant", "No active tenant serves this host or slug.")
    TENANT_REQUIRED = (
        404,
        "Tenant required",
        "A shared host was called without naming a tenant: use the tenant's host or `X-Tenant`.",
    )
    TENANT_MISMATCH = (
        403,
        "Token belongs to another tenant",
        "The bearer token was issued by another tenant than the one this host serves.",
    )
    TENANT_SUSPENDED = (403, "Tenant suspended", "The tenant is suspended by the operator.")
    RATE_LIMITED = (
        429,
        "Rate limited",
        "The tenant's requests (or its logins, signups and password resets) are above its "
        "plan's rate; `Retry-After` says when a request will be admitted again.",
    )
    TOO_MANY_UPLOADS = (
        429,
        "Too many uploads at once",
        "The tenant has as many uploads in flight as its plan allows; retry after one ends.",
    )
    ORIGIN_NOT_ALLOWED = (
        403,
        "Origin not allowed",
        "A browser preflight from an origin that is not the tenant's (its host, its verified "
        "domains, the origins its admins list).",
    )
    # -- authentication and authorisation --------------------------------------------------
    MISSING_TOKEN = (401, "Authentication required", "The route needs a bearer token.")
    INVALID_TOKEN = (
        401,
        "Invalid token",
        "The token is malformed, forged, for another audience or tenant, or its user is gone.",
    )
    TOKEN_EXPIRED = (401, "Token expired", "The access token has expired: refresh it.")
    INVALID_CREDENTIALS = (401, "Invalid email or password", "Login failed.")
    INVALID_REFRESH_TOKEN = (
        401,
        "Invalid refresh token",
        "The refresh token is unknown, expired, or its account is disabled.",
    )
    REFRESH_TOKEN_REUSED = (
        401,
        "Refresh token reused",
        "A rotated refresh token was used again; every session of its family was revoked.",
    )
    INSUFFICIENT_ROLE = (403, "Insufficient role", "The caller's role is below the route's.")
    USER_REQUIRED = (403, "User required", "The route is a user's own account: not for API keys.")
    TOKEN_NOT_FOUND = (
        404,
        "Token not found",
        "No such invitation or password-reset token here: unknown, used, expired, or another "
        "tenant's.",
    )
    MAIL_UNAVAILABLE = (503, "Mail unavailable", "The mail server did not take the message.")
    # -- tenant administration --------------------------------------------------------------
    USER_NOT_FOUND = (404, "User not found", "No user with this id in this tenant.")
    BEYOND_PLAN = (
        422,
        "Beyond the plan",
        "A setting goes beyond the tenant's plan (its types, its largest file); `errors` names "
        "it and the detail the limit.",
    )
    API_KEY_NOT_FOUND = (404, "API key not found", "No API key with this id in this tenant.")
    ROLE_TOO_HIGH = (
        403,
        "Role too high",
        "An API key's role is at most the role of whoever creates it.",
    )
    OWNER_REQUIRED = (
        403,
        "Owner required",
        "Only an owner makes, changes or removes owners and admins.",
    )
    LAST_OWNER = (
        409,
        "Last owner",
        "The tenant's last active owner cannot be demoted, disabled or deleted.",
    )
    INVALID_PASSWORD = (
        403,
        "Invalid password",
        "The current password is wrong.",
    )
    SIGNUP_DISABLED = (403, "Signup disabled", "This tenant does not allow self-signup.")
    EMAIL_TAKEN = (409, "Email taken", "An account with this email exists in this tenant.")
    PASSWORD_TOO_SHORT = (422, "Password too short", "Passwords have at least 8 characters.")
    PASSWORD_TOO_LONG = (
        422,
        "Password too long",
        "Passwords have at most 72 bytes in UTF-8 (bcrypt ignores the rest).",
    )
    # -- platform: tenants and domains -----------------------------------------------------
    TENANT_NOT_FOUND = (404, "Tenant not found", "No tenant with this id (or it was offboarded).")
    SLUG_TAKEN = (409, "Slug taken", "Another tenant has this slug (offboarded ones keep theirs).")
    SLUG_RESERVED = (422, "Slug reserved", "The slug is reserved for the platform.")
    DOMAIN_TAKEN = (409, "Domain taken", "Another tenant uses this domain.")
    INVALID_DOMAIN = (
        422,
        "Invalid domain",
        "Not a valid domain name, or one under the platform's base domain.",
    )
    DOMAIN_NOT_FOUND = (404, "Domain not found", "The tenant has no such domain.")
    DOMAIN_NOT_VERIFIED = (
        409,
        "Domain not verified",
        "DNS does not carry the domain's verification record (yet): add the TXT record the "
        "domain lists, wait for DNS, try again.",
    )
    DNS_UNAVAILABLE = (503, "DNS unavailable", "The name servers did not answer; try again.")
    # -- files -----------------------------------------------------------------------------
    FILE_NOT_FOUND = (404, "File not found", "No ready file with this id in this tenant.")
    INVALID_MULTIPART = (
        422,
        "Malformed multipart body",
        "The body is not multipart/form-data with a boundary, or it was cut short.",
    )
    MISSING_FILE = (422, "Missing file", "The form has no `file` part.")
    FIELD_AFTER_FILE = (
        422,
        "Field after the file part",
        "Metadata fields must come before the `file` part; the upload was aborted.",
    )
    FIELD_TOO_LARGE = (422, "Field too large", "A form field exceeds 64 KiB.")
    EMPTY_FILE = (422, "Empty file", "The file has no bytes.")
    FILE_TOO_LARGE = (413, "File too large", "The file exceeds the tenant's `max_file_bytes`.")
    QUOTA_EXCEEDED = (
        413,
        "Storage quota exceeded",
        "The tenant's storage quota would be exceeded.",
    )
    UNSUPPORTED_FILE_TYPE = (
        415,
        "File type not allowed",
        "The content is not a type the platform accepts, or not one the tenant allows.",
    )
    CONTENT_TYPE_MISMATCH = (
        415,
        "Declared content type does not match the content",
        "The declared type disagrees with the type sniffed from the file's bytes.",
    )
    UPLOAD_NOT_FOUND = (404, "Upload not found", "No direct upload with this id in this tenant.")
    UPLOAD_IN_PROGRESS = (
        409,
        "Upload being completed",
        "Another request is completing this upload right now; retry to read its result.",
    )
    UPLOAD_COMPLETED = (
        409,
        "Upload completed",
        "The upload is complete and its file is ready; delete the file instead.",
    )
    UPLOAD_EXPIRED = (
        410,
        "Upload expired",
        "The upload was not completed before its `expires_at`; start a new one.",
    )
    UPLOAD_PARTS_INVALID = (
        422,
        "Parts do not match",
        "The parts listed are not the upload's (numbers 1 to n, each once, in order, with the "
        "ETag the store answered for each), or the store does not hold them all. The upload "
        "stays open: send the missing parts and complete again.",
    )
    UPLOAD_SIZE_MISMATCH = (
        422,
        "Size does not match",
        "The uploaded object's size is not the size declared; the object was deleted and the "
        "reserved quota released.",
    )
    UPLOAD_TYPE_MISMATCH = (
        422,
        "Type does not match",
        "The uploaded object's bytes are not of the declared type, or not of a type the tenant "
        "accepts; the object was deleted and the reserved quota released.",
    )
    UPLOAD_OFFSET_MISMATCH = (
        409,
        "Offset does not match",
        "A tus PATCH's `Upload-Offset` is not the upload's offset: ask with HEAD and resume "
        "from there.",
    )
    UPLOAD_LENGTH_EXCEEDED = (
        413,
        "Beyond the upload's length",
        "The PATCH carries bytes beyond the tus upload's `Upload-Length`; none of them was kept.",
    )
    UPLOAD_LOCKED = (
        423,
        "Upload locked",
        "Another PATCH is appending to this tus upload right now; retry after it ends.",
    )
    CHECKSUM_MISMATCH = (
        460,
        "Checksum mismatch",
        "The PATCH body's sha1 is not its `Upload-Checksum`; nothing of it was kept: send it "
        "again.",
    )
    TUS_VERSION_UNSUPPORTED = (
        412,
        "tus version not supported",
        "The request's `Tus-Resumable` is not a version this server speaks (`Tus-Version`).",
    )
    INVALID_LANGUAGE = (422, "Invalid language", "Not an ISO 639-1 language code.")
    UNKNOWN_CATEGORY = (422, "Unknown category", "No category with this id in this tenant.")
    UNKNOWN_AUDIENCE = (422, "Unknown audience", "No audience with this id in this tenant.")
    CATEGORY_NOT_FOUND = (404, "Category not found", "No category with this id in this tenant.")
    AUDIENCE_NOT_FOUND = (404, "Audience not found", "No audience with this id in this tenant.")
    CATEGORY_EXISTS = (409, "Category exists", "The tenant has a category with this name.")
    AUDIENCE_EXISTS = (409, "Audience exists", "The tenant has an audience with this name.")
    # -- tenant administration: branding ----------------------------------------------------
    LOGO_NOT_FOUND = (404, "Logo not found", "The tenant has no uploaded logo.")
    INVALID_SVG = (
        422,
        "SVG refused",
        "The SVG logo is not well-formed XML, declares a DTD or entities, is not an `<svg>` "
        "document, nests too deeply, or has nothing drawable left once scripts, event handlers, "
        "foreign content and external references are removed.",
    )
    # -- usage reports ------------------------------------------------------------------------
    TIMEZONE_NOT_KEPT = (
        422,
        "Time zone not kept",
        "Usage is kept in days of the tenant's reporting zone (`usage_timezone`, default UTC); "
        "`tz` must name that zone.",
    )
    # -- signed download links (local store) -----------------------------------------------
    INVALID_SIGNATURE = (
        404,
        "Invalid or expired link",
        "The signed link was altered, has expired, or its tenant no longer serves it.",
    )
    OBJECT_NOT_FOUND = (404, "Object not found", "The signed link names an object that is gone.")
    PART_REFUSED = (
        403,
        "Part upload refused",
        "The signed part URL was altered or has expired, or its tenant no longer serves it.",
    )
    PART_SIZE_MISMATCH = (
        422,
        "Part size does not match",
        "The part's body is not the exact size its signed URL names; nothing was stored.",
    )

    @property
    def code(self) -> str:
        return self.name.lower()

    @property
    def status(self) -> int:
        status: int = self.value[0]
        return status

    @property
    def title(self) -> str:
        title: str = self.value[1]
        return title

    @property
    def meaning(self) -> str:
        meaning: str = self.value[2]
        return meaning

    @property
    def type_uri(self) -> str:
        return f"{PROBLEM_TYPE_PATH}/{self.code}"


_BY_CODE = {member.code: member for member in ErrorCode}


def catalogue_markdown() -> str:
    """docs/errors.md, made from the catalogue (`python -m tenantry.lib.errors > docs/errors.md`)."""
    lines = [
        "# Error codes",
        "",
        "Every error is RFC 9457 problem details (`application/problem+json`) with a stable",
        "`code`. Its `type` is `/problems/{code}` on the API itself, which answers with the entry",
        "below. Made from `tenantry.lib.errors.ErrorCode`; a test keeps this page in step.",
        "",
        "| code | status | title | meaning |",
        "|---|---|---|---|",
    ]
    lines += [
        f'| <a id="{e.code}"></a>`{e.code}` | {e.status} | {e.title} | {e.meaning} |'
        for e in ErrorCode
    ]
    return "\n".join(lines) + "\n"


def error_code(code: str) -> ErrorCode | None:
    return _BY_CODE.get(code)


class FieldError(msgspec.Struct):
    field: str
    message: str


class Problem(msgspec.Struct, omit_defaults=True):
    """RFC 9457 problem details; `type` is a URI reference to the code's catalogue entry."""

    type: str
    title: str
    status: int
    code: str
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None
    request_id: str | None = None


class DomainError(Exception):
    """Every error a service raises on purpose: a catalogue entry, a detail, maybe a field."""

    def __init__(
        self,
        error: ErrorCode,
        detail: str | None = None,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or error.title)
        self.error = error
        self.detail = detail or error.title
        self.errors = [FieldError(field, self.detail)] if field else None
        self.headers = headers
        if error.status == 401:
            self.headers = {**(headers or {}), "WWW-Authenticate": 'Bearer realm="tenantry"'}

    @property
    def code(self) -> str:
        return self.error.code


def problem_response(
    request: Request[Any, Any, Any],
    error: ErrorCode,
    *,
    detail: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    status: int | None = None,
) -> Response[Problem]:
    status = status or error.status
    problem = Problem(
        type=error.type_uri,
        title=error.title,
        status=status,
        code=error.code,
        detail=detail,
        instance=request.url.path,
        errors=errors,
        request_id=request_context().get("request_id"),
    )
    return Response(problem, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_errors(extra: Any) -> list[FieldError] | None:
    """Litestar's validation extras (`[{"key", "message", "source"}]`) as named field errors."""
    if not isinstance(extra, list):
        return None
    errors = []
    for item in extra:
        if isinstance(item, dict):
            key = str(item.get("key") or item.get("source") or "body")
            errors.append(FieldError(field=key, message=str(item.get("message", ""))))
    return errors or None


def _domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[Problem]:
    if exc.error.status >= 500:  # an outage: worth a line with its cause
        logger.warning(exc.error.code, detail=exc.detail, cause=repr(exc.__cause__))
    return problem_response(
        request, exc.error, detail=exc.detail, errors=exc.errors, headers=exc.headers
    )


def _validation_error(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[Problem]:
    errors = _field_errors(exc.extra)
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors) if errors else exc.detail
    return problem_response(request, ErrorCode.VALIDATION_ERROR, detail=detail, errors=errors)


_HTTP_ERRORS = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.MISSING_TOKEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.BODY_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
}


_BODY_ERROR_PATH = re.compile(r" - at `\$\.data\.?([^`]*)`$")


def _body_validation_error(exc: HTTPException) -> list[FieldError] | None:
    """Litestar reports some body errors (e.g. an unknown field in a nested object) as a 500
    when it cannot name the field again; msgspec's cause says it is the client's body."""
    cause = exc.__cause__
    if not isinstance(exc, InternalServerException) or not isinstance(
        cause, msgspec.ValidationError
    ):
        return None
    match = _BODY_ERROR_PATH.search(str(cause))
    if match is None:
        return None
    message = str(cause)[: match.start()]
    return [FieldError(field=match.group(1) or "body", message=message[:200])]


# Litestar's words when the body's sender hangs up (`Request.stream`): the client's doing,
# not a server error, and counted as such.
_CLIENT_GONE = "client disconnected prematurely"


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    """Errors the framework raises itself (routing, body limits)."""
    if (body_errors := _body_validation_error(exc)) is not None:
        detail = "; ".join(f"{e.field}: {e.message}" for e in body_errors)
        return problem_response(
            request, ErrorCode.VALIDATION_ERROR, detail=detail, errors=body_errors
        )
    if isinstance(exc, InternalServerException) and exc.detail == _CLIENT_GONE:
        logger.info("client_disconnected", path=request.url.path)
        return problem_response(request, ErrorCode.CLIENT_DISCONNECTED)
    if exc.status_code >= 500:
        return _unhandled(request, exc)
    if isinstance(exc, NotAuthorizedException):
        error = ErrorCode.MISSING_TOKEN
    else:
        error = _HTTP_ERRORS.get(exc.status_code, ErrorCode.BAD_REQUEST)
    return problem_response(
        request, error, detail=exc.detail, headers=exc.headers, status=exc.status_code
    )


def _too_deep(request: Request[Any, Any, Any], exc: RecursionError) -> Response[Problem]:
    """msgspec gives up on a body nested deeper than the interpreter's recursion limit, with a
    RecursionError rather than a DecodeError; only client input nests like that."""
    return problem_response(request, ErrorCode.INVALID_JSON, detail="the body nests too deeply")


def _unhandled(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    logger.exception("unhandled_error", error=type(exc).__name__)
    return problem_response(request, ErrorCode.INTERNAL_ERROR)


def translated(
    translate: Callable[[Exception], DomainError | None],
) -> Callable[[Request[Any, Any, Any], Exception], Response[Problem]]:
    """A handler for a lower layer's errors: its catalogue error where it has one, else a 500."""

    def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
        error = translate(exc)
        return _domain_error(request, error) if error is not None else _unhandled(request, exc)

    return handle


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    DomainError: _domain_error,
    ValidationException: _validation_error,
    HTTPException: _http_error,
    RecursionError: _too_deep,
    Exception: _unhandled,
}


if __name__ == "__main__":
    print(catalogue_markdown(), end="")
