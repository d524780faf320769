"""Streaming multipart/form-data: metadata fields first, then the `file` part as a byte stream.

The body is parsed as it arrives (`multipart.PushMultipartParser`); nothing is buffered beyond
the small metadata fields, so a 2 GiB upload costs no more memory than a 2 KiB one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header

from tenantry.lib.errors import DomainError, ErrorCode

FILE_FIELD = "file"
MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 100


@dataclass
class FilePart:
    filename: str
    declared_type: str | None
    chunks: AsyncIterator[bytes]


@dataclass
class FormStart:
    """The metadata fields that preceded the file part, and the file part (None: missing)."""

    fields: dict[str, list[str]]
    file: FilePart | None


def boundary_of(content_type: str | None) -> str:
    essence, options = parse_options_header(content_type or "")
    if essence != "multipart/form-data" or not options.get("boundary"):
        raise DomainError(
            ErrorCode.INVALID_MULTIPART,
            "expected multipart/form-data with a boundary",
            field="body",
        )
    return str(options["boundary"])


async def read_form(body: AsyncIterator[bytes], content_type: str | None) -> FormStart:
    """Read fields up to the file part; the returned FilePart streams the rest of the body."""
    parser = PushMultipartParser(boundary_of(content_type), max_segment_count=MAX_FIELDS + 1)
    events = _events(parser, body)
    fields: dict[str, list[str]] = {}
    try:
        async for event in events:
            if not isinstance(event, MultipartSegment):
                continue
            if event.name == FILE_FIELD:
                return FormStart(
                    fields,
                    FilePart(
                        filename=event.filename or "upload",
                        declared_type=event.content_type,
                        chunks=_file_body(events),
                    ),
                )
            fields.setdefault(event.name, []).append(await _field_value(events, event.name))
    except MultipartError as exc:
        raise DomainError(
            ErrorCode.INVALID_MULTIPART, f"malformed multipart body: {exc}", field="body"
        ) from exc
    return FormStart(fields, None)


async def _events(
    parser: PushMultipartParser, body: AsyncIterator[bytes]
) -> AsyncIterator[MultipartSegment | bytearray | memoryview | bytes | None]:
    async for chunk in body:
        for event in parser.parse(chunk):
            yield event
    for event in parser.parse(b""):  # end of input: raises if the body was cut short
        yield event


async def _field_value(events: AsyncIterator[object], name: str) -> str:
    value = bytearray()
    async for event in events:
        if event is None:
            break
        if isinstance(event, bytes | bytearray | memoryview):
            value += event
            if len(value) > MAX_FIELD_BYTES:
                raise DomainError(
                    ErrorCode.FIELD_TOO_LARGE, f"field '{name}' is too large", field=name
                )
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DomainError(
            ErrorCode.INVALID_FIELD, f"field '{name}' is not UTF-8", field=name
        ) from exc


async def _file_body(events: AsyncIterator[object]) -> AsyncIterator[bytes]:
    """The file's bytes; anything but the end of the form after them is refused."""
    try:
        async for event in events:
            if event is None:
                break
            if isinstance(event, bytes | bytearray | memoryview):
                yield bytes(event)
        async for event in events:
            if isinstance(event, MultipartSegment):
                # The file was streamed before this field was seen: refuse rather than
                # silently ignore it (the upload is aborted, nothing is kept).
                raise DomainError(
                    ErrorCode.FIELD_AFTER_FILE,
                    f"field '{event.name}' comes after the file part; send metadata first",
                    field=event.name,
                )
    except MultipartError as exc:
        raise DomainError(
            ErrorCode.INVALID_MULTIPART, f"malformed multipart body: {exc}", field="body"
        ) from exc
