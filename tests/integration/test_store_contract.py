"""One contract for every ObjectStore: LocalStore, S3Store on moto, S3Store on MinIO (Docker).

Each backend comes with a probe: how to follow a download URL the way a client would, and how
to see what an interrupted upload might have left behind (temp files, multipart uploads).
"""

import asyncio
import functools
import itertools
import random
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qs, urlsplit
from uuid import UUID, uuid4

import aioboto3
import httpx
import pytest

from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.storage import (
    InvalidKeyError,
    LocalStore,
    ObjectStore,
    S3Store,
    StoreError,
    StoreUnavailableError,
    branding_key,
    content_disposition,
    file_key,
    parse_range,
    tenant_prefix,
)
from tenantry.storage.s3 import MIN_PART_SIZE
from tests.fixtures.s3 import LOCAL_SIGNING_KEY, S3Endpoint, open_s3_store

if TYPE_CHECKING:
    from types_aiobotocore_s3.client import S3Client

PART_SIZE = MIN_PART_SIZE  # the S3 fixtures' part size
FILENAME = 'Résumé "final" 東京.pdf'


ORIGIN = "http://127.0.0.1:8000"  # where the API is reached; only local links use it


@dataclass(frozen=True)
class Download:
    status: int
    body: bytes
    content_type: str | None = None
    content_disposition: str | None = None


class Probe(Protocol):
    async def download(self, url: str) -> Download: ...

    async def leftovers(self) -> list[str]:
        """Remains of unfinished uploads: temp files, incomplete multipart uploads."""
        ...

    async def received_bytes(self, key: str) -> int:
        """Bytes of an upload in progress that already reached the store's medium."""
        ...

    async def object_parts(self, key: str) -> int | None:
        """How many parts a stored object was uploaded in, where the store can tell."""
        ...

    async def put_foreign(self, key: str, body: bytes) -> None:
        """An object the server did not make (put in the bucket or the directory by hand)."""
        ...


class LocalProbe:
    """Plays the app route the lead wires: verify the signature, then stream the range."""

    def __init__(self, store: LocalStore, root: Path) -> None:
        self.store = store
        self.root = root

    async def download(self, url: str) -> Download:
        parts = urlsplit(url)
        key = parts.path.removeprefix("/files-local/")
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        if not self.store.verify_signed(key, query["exp"], query["fn"], query["ct"], query["sig"]):
            return Download(status=403, body=b"")
        info = await self.store.head(key)
        assert info is not None
        body = b"".join([chunk async for chunk in self.store.open_range(key, 0, info.size - 1)])
        return Download(200, body, query["ct"], content_disposition(query["fn"]))

    async def leftovers(self) -> list[str]:
        return [str(path) for path in self.root.rglob("*.part")]

    async def received_bytes(self, key: str) -> int:
        directory = self.root / "objects" / key.rpartition("/")[0]
        return sum(path.stat().st_size for path in directory.glob("*.part"))

    async def object_parts(self, key: str) -> int | None:
        return None

    async def put_foreign(self, key: str, body: bytes) -> None:
        path = self.root / "objects" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)


@functools.cache
def _probe_session() -> aioboto3.Session:
    """One session for every probe: a session loads the S3 service model once."""
    return aioboto3.Session()


class S3Probe:
    """Looks at the bucket through a client of its own, opened once (`async with` the probe)."""

    def __init__(self, store: S3Store, endpoint: S3Endpoint) -> None:
        self.store = store
        self.endpoint = endpoint
        self._stack = AsyncExitStack()
        self._client_or_none: S3Client | None = None

    async def __aenter__(self) -> "S3Probe":
        self._client_or_none = await self._stack.enter_async_context(
            _probe_session().client(
                "s3",
                endpoint_url=self.endpoint.endpoint_url,
                region_name=self.endpoint.region,
                aws_access_key_id=self.endpoint.access_key_id,
                aws_secret_access_key=self.endpoint.secret_access_key,
            )
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._client_or_none = None
        await self._stack.aclose()

    @asynccontextmanager
    async def _client(self) -> AsyncIterator["S3Client"]:
        # One client for every look: a new session per call costs more than the call itself,
        # and test_upload_reads_ahead_by_at_most_two_parts looks once per chunk it sends.
        assert self._client_or_none is not None, "use the probe as `async with S3Probe(...)`"
        yield self._client_or_none

    async def download(self, url: str) -> Download:
        async with httpx.AsyncClient() as http:
            response = await http.get(url)
        return Download(
            response.status_code,
            response.content,
            response.headers.get("content-type"),
            response.headers.get("content-disposition"),
        )

    async def leftovers(self) -> list[str]:
        async with self._client() as client:
            response = await client.list_multipart_uploads(Bucket=self.store.bucket)
        return [upload["Key"] for upload in response.get("Uploads", [])]

    async def received_bytes(self, key: str) -> int:
        async with self._client() as client:
            uploads = await client.list_multipart_uploads(Bucket=self.store.bucket, Prefix=key)
            total = 0
            for upload in uploads.get("Uploads", []):
                parts = await client.list_parts(
                    Bucket=self.store.bucket, Key=key, UploadId=upload["UploadId"]
                )
                total += sum(part["Size"] for part in parts.get("Parts", []))
        return total

    async def object_parts(self, key: str) -> int | None:
        async with self._client() as client:
            response = await client.head_object(Bucket=self.store.bucket, Key=key)
        etag = response["ETag"].strip('"')
        return int(etag.rpartition("-")[2]) if "-" in etag else 1

    async def put_foreign(self, key: str, body: bytes) -> None:
        async with self._client() as client:
            await client.put_object(Bucket=self.store.bucket, Key=key, Body=body)


@dataclass
class Backend:
    name: str
    store: ObjectStore
    probe: Probe
    verifies_presigned_urls: bool


@pytest.fixture(
    params=["local", "moto", pytest.param("minio", marks=pytest.mark.docker)],
)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "local":
        root = tmp_path / "store"
        local = LocalStore(root, signing_key=LOCAL_SIGNING_KEY)
        yield Backend("local", local, LocalProbe(local, root), verifies_presigned_urls=True)
        return
    endpoint: S3Endpoint = request.getfixturevalue(f"{request.param}_endpoint")
    async with open_s3_store(endpoint) as s3, S3Probe(s3, endpoint) as probe:
        yield Backend(request.param, s3, probe, endpoint.verifies_presigned_urls)


def payload(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


def irregular_chunks(data: bytes) -> Iterator[bytes]:
    """Chunk sizes that never line up with part boundaries, including one huge chunk."""
    sizes = [1, 65_536, 1_048_583, 3, 6 * 1024 * 1024 + 11, 262_144]
    offset, turn = 0, 0
    while offset < len(data):
        size = sizes[turn % len(sizes)]
        yield data[offset : offset + size]
        offset += size
        turn += 1


async def stream(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def keys_under(store: ObjectStore, prefix: str) -> list[str]:
    return sorted([key async for key in store.list_keys(prefix)])


def new_file_key() -> tuple[UUID, str]:
    tenant_id = uuid4()
    return tenant_id, file_key(tenant_id, uuid4())


async def test_put_then_head(backend: Backend) -> None:
    _, key = new_file_key()
    data = b"%PDF-1.4 small document"

    written = await backend.store.put_stream(
        key, stream(iter([data[:5], data[5:]])), content_type="application/pdf"
    )

    assert written == len(data)
    info = await backend.store.head(key)
    assert info is not None
    assert (info.size, info.content_type) == (len(data), "application/pdf")


async def test_empty_object(backend: Backend) -> None:
    _, key = new_file_key()

    assert await backend.store.put_stream(key, stream(iter([])), content_type="text/plain") == 0

    info = await backend.store.head(key)
    assert info is not None
    assert info.size == 0


async def test_head_of_missing_object_is_none(backend: Backend) -> None:
    _, key = new_file_key()

    assert await backend.store.head(key) is None


async def test_multipart_round_trip_through_download_url(backend: Backend) -> None:
    _, key = new_file_key()
    data = payload(2 * PART_SIZE + 1024 * 1024)  # three parts on S3: 5 + 5 + 1 MiB

    written = await backend.store.put_stream(
        key, stream(irregular_chunks(data)), content_type="application/pdf"
    )
    url = await backend.store.presign_get(
        key, filename=FILENAME, content_type="application/pdf", expires_in=300, origin=ORIGIN
    )
    download = await backend.probe.download(url)

    assert written == len(data)
    assert download.status == 200
    assert download.body == data
    assert download.content_type == "application/pdf"
    assert download.content_disposition == content_disposition(FILENAME)
    assert "filename*=UTF-8''R%C3%A9sum%C3%A9%20%22final%22%20%E6%9D%B1%E4%BA%AC.pdf" in (
        download.content_disposition or ""
    )
    assert await backend.probe.object_parts(key) == (None if backend.name == "local" else 3)


async def test_upload_reads_ahead_by_at_most_two_parts(backend: Backend) -> None:
    """Memory stays bounded: what the store has taken from the stream but not yet written out
    is never more than one part in flight plus one buffering (plus the current chunk)."""
    _, key = new_file_key()
    chunk_size = 512 * 1024
    total_chunks = 5 * PART_SIZE // chunk_size
    largest_lag = 0

    async def observed_chunks() -> AsyncIterator[bytes]:
        nonlocal largest_lag
        for produced in range(total_chunks):
            lag = produced * chunk_size - await backend.probe.received_bytes(key)
            largest_lag = max(largest_lag, lag)
            yield bytes(chunk_size)

    await backend.store.put_stream(key, observed_chunks(), content_type="video/mp4")

    assert largest_lag <= 2 * PART_SIZE + chunk_size


async def test_failure_mid_stream_leaves_nothing(backend: Backend) -> None:
    tenant_id, key = new_file_key()
    failure = RuntimeError("client went away")

    async def two_parts_then_failure() -> AsyncIterator[bytes]:
        for _ in range(2 * PART_SIZE // (1024 * 1024) + 1):
            yield bytes(1024 * 1024)
        raise failure

    with pytest.raises(RuntimeError) as raised:
        await backend.store.put_stream(key, two_parts_then_failure(), content_type="video/mp4")

    assert raised.value is failure
    assert await backend.store.head(key) is None
    assert await keys_under(backend.store, tenant_prefix(tenant_id)) == []
    assert await backend.probe.leftovers() == []


async def test_cancelled_upload_leaves_nothing(backend: Backend) -> None:
    tenant_id, key = new_file_key()
    two_parts_sent = asyncio.Event()

    async def stalls_after_two_parts() -> AsyncIterator[bytes]:
        for _ in range(2 * PART_SIZE // (1024 * 1024) + 1):
            yield bytes(1024 * 1024)
        two_parts_sent.set()
        await asyncio.Event().wait()  # the client stops sending
        yield b""

    upload = asyncio.create_task(
        backend.store.put_stream(key, stalls_after_two_parts(), content_type="video/mp4")
    )
    await two_parts_sent.wait()
    upload.cancel()
    with pytest.raises(asyncio.CancelledError):
        await upload

    assert await backend.store.head(key) is None
    assert await keys_under(backend.store, tenant_prefix(tenant_id)) == []
    assert await backend.probe.leftovers() == []


async def test_read_returns_a_small_object_whole(backend: Backend) -> None:
    logo = branding_key(uuid4(), "logo")
    data = payload(70_000)
    await backend.store.put_stream(
        logo, stream(iter([data[:1000], data[1000:]])), content_type="image/png"
    )

    assert await backend.store.read(logo, max_bytes=len(data)) == data
    assert await backend.store.read(branding_key(uuid4(), "logo"), max_bytes=10) is None
    with pytest.raises(StoreError):  # larger than the caller keeps: not read at all
        await backend.store.read(logo, max_bytes=len(data) - 1)
    with pytest.raises(InvalidKeyError):
        await backend.store.read("tenants/../etc/passwd", max_bytes=10)


async def test_delete_is_idempotent(backend: Backend) -> None:
    _, key = new_file_key()
    await backend.store.put_stream(key, stream(iter([b"data"])), content_type="text/plain")

    await backend.store.delete(key)
    await backend.store.delete(key)
    await backend.store.delete(new_file_key()[1])  # never existed

    assert await backend.store.head(key) is None


async def test_delete_prefix_removes_only_that_tenant(backend: Backend) -> None:
    tenant_a, tenant_b = uuid4(), uuid4()
    keys_a = [
        file_key(tenant_a, uuid4()),
        file_key(tenant_a, uuid4()),
        branding_key(tenant_a, "logo"),
    ]
    key_b = file_key(tenant_b, uuid4())
    for key in [*keys_a, key_b]:
        await backend.store.put_stream(key, stream(iter([b"x" * 10])), content_type="image/png")

    deleted = await backend.store.delete_prefix(tenant_prefix(tenant_a))

    assert deleted == len(keys_a)
    assert await keys_under(backend.store, tenant_prefix(tenant_a)) == []
    assert await keys_under(backend.store, tenant_prefix(tenant_b)) == [key_b]
    assert await backend.store.head(key_b) is not None


async def test_delete_prefix_refuses_to_leave_one_tenant(backend: Backend) -> None:
    with pytest.raises(InvalidKeyError):
        await backend.store.delete_prefix("tenants/")


async def test_list_keys_under_prefix(backend: Backend) -> None:
    tenant_id = uuid4()
    files = sorted(file_key(tenant_id, uuid4()) for _ in range(3))
    logo = branding_key(tenant_id, "logo")
    other_tenant = file_key(uuid4(), uuid4())
    for key in [*files, logo, other_tenant]:
        await backend.store.put_stream(key, stream(iter([b"x"])), content_type="image/png")

    assert await keys_under(backend.store, tenant_prefix(tenant_id)) == sorted([*files, logo])
    assert await keys_under(backend.store, f"{tenant_prefix(tenant_id)}files/") == files


async def test_list_keys_leaves_out_what_the_server_did_not_make(backend: Backend) -> None:
    """Objects put beside ours by hand are not listed (so the reconciler neither deletes them
    nor stops on a key its stores refuse)."""
    tenant_id = uuid4()
    ours = file_key(tenant_id, uuid4())
    await backend.store.put_stream(ours, stream(iter([b"x"])), content_type="image/png")
    for foreign in ("notes.txt", "not-a-uuid", f"{uuid4()}.bak"):
        await backend.probe.put_foreign(f"{tenant_prefix(tenant_id)}files/{foreign}", b"hand")
    assert await keys_under(backend.store, tenant_prefix(tenant_id)) == [ours]


async def test_download_url_for_one_key_does_not_open_another(backend: Backend) -> None:
    if not backend.verifies_presigned_urls:
        pytest.skip(f"{backend.name} does not verify presigned-URL signatures")
    tenant_id, key = new_file_key()
    other_key = file_key(tenant_id, uuid4())
    for stored in (key, other_key):
        await backend.store.put_stream(stored, stream(iter([b"secret"])), content_type="text/plain")
    url = await backend.store.presign_get(
        key, filename="a.txt", content_type="text/plain", expires_in=300, origin=ORIGIN
    )

    tampered = await backend.probe.download(url.replace(key, other_key))

    assert tampered.status == 403
    assert tampered.body != b"secret"


async def test_keys_outside_the_layout_are_refused(backend: Backend) -> None:
    for bad_key in ("../../etc/passwd", "tenants/../x", f"{tenant_prefix(uuid4())}files/x"):
        with pytest.raises(InvalidKeyError):
            await backend.store.put_stream(bad_key, stream(iter([b"x"])), content_type="text/plain")
        with pytest.raises(InvalidKeyError):
            await backend.store.head(bad_key)


async def test_check_passes_on_a_working_store(backend: Backend) -> None:
    await backend.store.check()


async def test_s3_check_fails_for_a_missing_bucket(moto_endpoint: S3Endpoint) -> None:
    store = S3Store(
        bucket=f"missing-{uuid4().hex}",
        endpoint_url=moto_endpoint.endpoint_url,
        region=moto_endpoint.region,
        access_key_id=moto_endpoint.access_key_id,
        secret_access_key=moto_endpoint.secret_access_key,
    )
    async with store:
        with pytest.raises(StoreUnavailableError):
            await store.check()


async def test_local_check_fails_when_root_is_unusable(tmp_path: Path) -> None:
    root_is_a_file = tmp_path / "not-a-directory"
    root_is_a_file.write_bytes(b"")

    with pytest.raises(StoreUnavailableError):
        await LocalStore(root_is_a_file, signing_key=LOCAL_SIGNING_KEY).check()


async def test_local_open_range_reads_the_requested_bytes(local_store: LocalStore) -> None:
    _, key = new_file_key()
    data = payload(3 * 1024 * 1024 + 5)
    await local_store.put_stream(key, stream(irregular_chunks(data)), content_type="video/mp4")

    start, end = parse_range("bytes=1048570-2097160", len(data)) or (0, 0)
    chunks = [chunk async for chunk in local_store.open_range(key, start, end)]

    assert b"".join(chunks) == data[start : end + 1]
    assert max(len(chunk) for chunk in chunks) <= 1024 * 1024


# -- resumable uploads: appends to a multipart upload, then finish_append ----------------------


class ClientGone(Exception):
    """The body's sender hung up."""


async def body(
    chunks: Iterable[bytes], failure: BaseException | None = None
) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
    if failure is not None:
        raise failure


async def resumable(backend: Backend) -> tuple[UUID, str, str]:
    tenant_id, key = new_file_key()
    return tenant_id, key, await backend.store.start_multipart(key, content_type="video/mp4")


async def stored(store: ObjectStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in store.read_stream(key)])


async def assert_finished(
    backend: Backend, tenant_id: UUID, key: str, upload_id: str, data: bytes, *, parts: int
) -> None:
    """finish_append makes `data` the object, in `parts` parts where the store tells, and
    leaves nothing else behind: no staging beside the key, no upload."""
    await backend.store.finish_append(key, upload_id)
    assert await stored(backend.store, key) == data
    assert await backend.probe.object_parts(key) == (None if backend.name == "local" else parts)
    assert await keys_under(backend.store, tenant_prefix(tenant_id)) == [key]
    assert await backend.probe.leftovers() == []


async def test_appends_across_parts_finish_byte_identical(backend: Backend) -> None:
    tenant_id, key, upload_id = await resumable(backend)
    data = payload(2 * PART_SIZE + 2 * 1024 * 1024)  # 12 MiB: 5 + 5 + 2 on S3
    cuts = [0, 1024 * 1024 + 3, PART_SIZE + 17, 2 * PART_SIZE, len(data)]  # one exactly a part
    for start, end in itertools.pairwise(cuts):
        await backend.store.append(key, upload_id, start, body(irregular_chunks(data[start:end])))

    await assert_finished(backend, tenant_id, key, upload_id, data, parts=3)


async def test_append_keeps_what_arrived_when_the_body_fails_mid_part(backend: Backend) -> None:
    tenant_id, key, upload_id = await resumable(backend)
    data = payload(2 * PART_SIZE + 12345)
    arrived = PART_SIZE + 2 * 1024 * 1024 + 5  # a part sent and part of the next one taken
    failure = ClientGone()

    with pytest.raises(ClientGone) as raised:
        await backend.store.append(
            key, upload_id, 0, body(irregular_chunks(data[:arrived]), failure)
        )
    assert raised.value is failure
    await backend.store.append(key, upload_id, arrived, body([data[arrived:]]))

    await assert_finished(backend, tenant_id, key, upload_id, data, parts=3)


async def test_append_drops_unrecorded_bytes_in_the_tail(backend: Backend) -> None:
    tenant_id, key, upload_id = await resumable(backend)
    data = payload(3 * 1024 * 1024)
    recorded = 1024 * 1024
    await backend.store.append(key, upload_id, 0, body([data[:recorded]]))
    # An append whose end never reached the database: its bytes are not the upload's.
    await backend.store.append(key, upload_id, recorded, body([b"\xff" * 1_500_000]))

    await backend.store.append(key, upload_id, recorded, body([data[recorded:]]))

    await assert_finished(backend, tenant_id, key, upload_id, data, parts=1)


async def test_append_drops_unrecorded_bytes_inside_sent_parts(backend: Backend) -> None:
    """The crash case: unrecorded appends whose bytes filled parts the store already sent (the
    part holding the recorded offset included), twice in a row, then the recorded one."""
    tenant_id, key, upload_id = await resumable(backend)
    data = payload(2 * PART_SIZE + 2 * 1024 * 1024)
    recorded = 3 * 1024 * 1024
    await backend.store.append(key, upload_id, 0, body([data[:recorded]]))
    garbage = payload(len(data) - recorded, seed=99)
    await backend.store.append(key, upload_id, recorded, body(irregular_chunks(garbage)))
    with pytest.raises(ClientGone):  # this one cut off after a part, and not recorded either
        await backend.store.append(
            key, upload_id, recorded, body([garbage[: PART_SIZE + 7]], ClientGone())
        )

    await backend.store.append(key, upload_id, recorded, body(irregular_chunks(data[recorded:])))

    await assert_finished(backend, tenant_id, key, upload_id, data, parts=3)


async def test_append_beyond_what_the_store_holds_is_refused(backend: Backend) -> None:
    tenant_id, key, upload_id = await resumable(backend)
    data = payload(4000)
    await backend.store.append(key, upload_id, 0, body([data[:1000]]))

    with pytest.raises(StoreError):
        await backend.store.append(key, upload_id, 2000, body([data[2000:]]))

    await backend.store.append(key, upload_id, 1000, body([data[1000:]]))
    await assert_finished(backend, tenant_id, key, upload_id, data, parts=1)


async def test_s3_goes_back_only_to_where_the_last_append_began(backend: Backend) -> None:
    """S3 keeps the state the last append began from, not every earlier byte: an offset inside
    parts sent before that is refused, and nothing changes."""
    if backend.name == "local":
        pytest.skip("the local store cuts its staged file anywhere")
    tenant_id, key, upload_id = await resumable(backend)
    data = payload(2 * PART_SIZE + 1000)
    began = 3 * 1024 * 1024
    await backend.store.append(key, upload_id, 0, body([data[:began]]))
    await backend.store.append(key, upload_id, began, body([data[began:-1000]]))

    with pytest.raises(StoreError):
        await backend.store.append(key, upload_id, began + 1, body([data[began + 1 :]]))

    await backend.store.append(key, upload_id, len(data) - 1000, body([data[-1000:]]))
    await assert_finished(backend, tenant_id, key, upload_id, data, parts=3)


async def test_empty_resumable_upload(backend: Backend) -> None:
    tenant_id, key, upload_id = await resumable(backend)
    await backend.store.append(key, upload_id, 0, body([]))

    await assert_finished(backend, tenant_id, key, upload_id, b"", parts=1)
    info = await backend.store.head(key)
    assert info is not None and (info.size, info.content_type) == (0, "video/mp4")


async def test_resumable_upload_of_exactly_one_part(backend: Backend) -> None:
    tenant_id, key, upload_id = await resumable(backend)
    data = payload(PART_SIZE)
    await backend.store.append(key, upload_id, 0, body(irregular_chunks(data)))

    await assert_finished(backend, tenant_id, key, upload_id, data, parts=1)


async def test_aborting_a_resumable_upload_leaves_nothing(backend: Backend) -> None:
    tenant_id, key, upload_id = await resumable(backend)
    await backend.store.append(key, upload_id, 0, body([payload(PART_SIZE + 1000)]))

    await backend.store.abort_multipart(key, upload_id)
    await backend.store.abort_multipart(key, upload_id)  # already gone: not an error

    assert await keys_under(backend.store, tenant_prefix(tenant_id)) == []
    assert await backend.probe.leftovers() == []


async def test_delete_prefix_removes_resumable_uploads(backend: Backend) -> None:
    tenant_id, key, upload_id = await resumable(backend)
    await backend.store.append(key, upload_id, 0, body([payload(PART_SIZE + 1000)]))

    await backend.store.delete_prefix(tenant_prefix(tenant_id))

    assert await keys_under(backend.store, tenant_prefix(tenant_id)) == []
    assert await backend.probe.leftovers() == []


async def test_two_appends_at_once_never_make_an_object_of_both(backend: Backend) -> None:
    """What the caller's lease rules out, should a PATCH outlive it: the local store refuses
    the second append at once; on S3 the second rewrites parts the first one's state names,
    and completing that state is refused. Either way no object mixes them."""
    tenant_id, key, upload_id = await resumable(backend)
    first, second = payload(2 * PART_SIZE + 1, seed=1), payload(2 * PART_SIZE + 1, seed=2)
    paused, resume = asyncio.Event(), asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield first[:PART_SIZE]
        yield first[PART_SIZE:-1]
        paused.set()
        await resume.wait()
        yield first[-1:]

    appending = asyncio.create_task(backend.store.append(key, upload_id, 0, slow()))
    await paused.wait()
    if backend.name == "local":
        with pytest.raises(DomainError) as locked:
            await backend.store.append(key, upload_id, 0, body([second]))
        assert locked.value.error == ErrorCode.UPLOAD_LOCKED
    else:
        await backend.store.append(key, upload_id, 0, body([second]))
    resume.set()
    await appending

    if backend.name == "local":
        await assert_finished(backend, tenant_id, key, upload_id, first, parts=1)
        return
    with pytest.raises(StoreError):
        await backend.store.finish_append(key, upload_id)
    assert await backend.store.head(key) is None
    await backend.store.abort_multipart(key, upload_id)
    assert await keys_under(backend.store, tenant_prefix(tenant_id)) == []
    assert await backend.probe.leftovers() == []


async def test_s3_finishes_again_after_a_completion_whose_answer_was_lost(
    backend: Backend,
) -> None:
    """The tus layer retries finishing after a failure; S3 may have completed the upload and
    only its answer was lost."""
    if backend.name == "local":
        pytest.skip("the local store publishes with a rename: no answer to lose")
    assert isinstance(backend.store, S3Store)
    tenant_id, key, upload_id = await resumable(backend)
    data = payload(PART_SIZE + 1000)
    await backend.store.append(key, upload_id, 0, body([data]))
    parts = await backend.store._client.list_parts(
        Bucket=backend.store.bucket, Key=key, UploadId=upload_id
    )
    last = await backend.store._client.upload_part(
        Bucket=backend.store.bucket, Key=key, UploadId=upload_id, PartNumber=2, Body=data[-1000:]
    )
    await backend.store._client.complete_multipart_upload(
        Bucket=backend.store.bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [
                {"PartNumber": 1, "ETag": parts["Parts"][0]["ETag"]},
                {"PartNumber": 2, "ETag": last["ETag"]},
            ]
        },
    )

    await backend.store.append(key, upload_id, len(data), body([]))  # the retried PATCH
    await assert_finished(backend, tenant_id, key, upload_id, data, parts=2)
