"""Sniffing against a corpus of real files, plus the other pure storage helpers: declared-type
matching, Range parsing, LocalStore URL signatures, key layout, Content-Disposition."""

import re
import struct
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from uuid import UUID, uuid4

import pytest

from tenantry.storage import (
    SNIFF_BYTES,
    InvalidKeyError,
    LocalStore,
    RangeNotSatisfiable,
    branding_key,
    content_disposition,
    declared_matches,
    file_key,
    parse_range,
    sniff,
    tenant_prefix,
)

CORPUS = Path(__file__).parent.parent / "data" / "corpus"


def sniff_file(name: str) -> str | None:
    with (CORPUS / name).open("rb") as file:
        return sniff(file.read(SNIFF_BYTES))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("clip.mp4", "video/mp4"),
        ("photo-jfif.jpg", "image/jpeg"),
        ("photo-exif.jpg", "image/jpeg"),
        ("jpeg-renamed.pdf", "image/jpeg"),
        ("notes.txt", "text/plain"),
        ("notes-bom.txt", "text/plain"),
        ("empty.bin", None),
        ("image.png", "image/png"),
        ("truncated.png", "image/png"),
        ("document.pdf", "application/pdf"),
        ("image.gif", "image/gif"),
        ("image.webp", "image/webp"),
        ("sound.wav", "audio/wav"),
        ("sound.opus", "audio/ogg"),
        ("video.webm", "video/webm"),
        ("video.mkv", "video/x-matroska"),
        ("song-id3.mp3", "audio/mpeg"),
        ("song-raw.mp3", "audio/mpeg"),
        ("junk.bin", None),
    ],
)
def test_corpus(name: str, expected: str | None) -> None:
    assert sniff_file(name) == expected


def test_mp4_ftyp_box_starts_at_offset_4() -> None:
    head = (CORPUS / "clip.mp4").read_bytes()

    assert head[4:8] == b"ftyp"


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = b"ftyp" + major + b"\x00\x00\x02\x00" + b"".join(compatible)
    return struct.pack(">I", 4 + len(body)) + body + b"\x00\x00\x00\x08free"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        # JPEG: start-of-image plus any marker, whatever the first segment is.
        (b"\xff\xd8\xff\xdb\x00\x43\x00", "image/jpeg"),
        (b"\xff\xd8\xff\xee\x00\x0eAdobe", "image/jpeg"),
        (b"\xff\xd8\xff\xe2\x0c\x58ICC_PROFILE", "image/jpeg"),
        (b"\xff\xd8\xff\xed\x00\x1cPhotoshop", "image/jpeg"),
        (b"\xff\xd8", None),
        # PNG: the full 8-byte signature decides; cut inside it, it is nothing.
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\x89PNG\r\n", None),
        (b"GIF87a\x01\x00\x01\x00", "image/gif"),
        (b"%PDF-1.7\n", "application/pdf"),
        # ISO base media brands.
        (ftyp(b"iso2", b"isom"), "video/mp4"),
        (ftyp(b"mp42", b"isom"), "video/mp4"),
        (ftyp(b"avc1"), "video/mp4"),
        (ftyp(b"M4V ", b"M4A "), "video/mp4"),
        (ftyp(b"dash", b"iso6"), "video/mp4"),
        (ftyp(b"M4A ", b"isom"), "audio/mp4"),
        (ftyp(b"qt  ", b"qt  "), "video/quicktime"),
        (ftyp(b"3gp4", b"isom"), "video/3gpp"),
        (ftyp(b"3gp5"), "video/3gpp"),
        (ftyp(b"3g2a"), "video/3gpp2"),
        (ftyp(b"XXXX", b"zzzz", b"mp42"), "video/mp4"),
        (ftyp(b"XXXX", b"zzzz"), None),
        (b"\x00\x00\x00\x0cftypisom", None),  # box too short to be an ftyp
        # RIFF forms other than WebP and WAVE are not accepted.
        (b"RIFF\x24\x00\x00\x00AVI LIST", None),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "audio/wav"),
        # MPEG audio frame sync: reserved layer bits (ADTS AAC) and bad bitrates are rejected.
        (b"\xff\xfb\x90\x64", "audio/mpeg"),
        (b"\xff\xf1\x50\x80\x02\x1f\xfc", None),
        (b"\xff\xfb\xf0\x64", None),
        (b"\xff\xfb\x90\x64" + b"\x00" * 413 + b"\x00\x00\x00\x00", None),  # no second frame
        (b"ID3\x03\x00\x00\x00\x00\x00\x10", "audio/mpeg"),
        (b"ID3\xff\x00\x00\x00\x00\x00\x10", None),
        # Ogg: Theora in the first packet means video.
        (b"OggS\x00\x02" + bytes(20) + b"\x01\x2a\x80theora", "video/ogg"),
        (b"OggS\x00\x02" + bytes(20) + b"\x01\x1e\x01vorbis", "audio/ogg"),
        # EBML with a doctype we do not serve.
        (b"\x1a\x45\xdf\xa3\x87\x42\x82\x84abcd", None),
    ],
)
def test_signatures(head: bytes, expected: str | None) -> None:
    assert sniff(head) == expected


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"plain ASCII\n", "text/plain"),
        (b"tabs\tand\r\nform feeds\f", "text/plain"),
        ("Ünïcödé".encode(), "text/plain"),
        (b"\xef\xbb\xbf", "text/plain"),
        # The sniff window may end inside a character: "東" is three bytes, two of them here.
        ("text then 東".encode()[:-1], "text/plain"),
        (b"nul \x00 inside", None),
        (b"escape-free control \x01", None),
        (b"invalid \xff\xfe utf-8", None),
        (b"overlong \xc0\xaf", None),
        ("broken 東".encode()[:-1] + b" in the middle", None),
    ],
)
def test_text(head: bytes, expected: str | None) -> None:
    assert sniff(head) == expected


def test_sniff_window_is_enough_for_text_cut_mid_character() -> None:
    text = ("é" * SNIFF_BYTES).encode()  # two bytes each: the window ends on a boundary or not

    assert sniff(text[:SNIFF_BYTES]) == "text/plain"
    assert sniff(text[: SNIFF_BYTES - 1]) == "text/plain"


@pytest.mark.parametrize(
    ("declared", "sniffed", "expected"),
    [
        (None, "image/png", True),
        ("application/octet-stream", "video/mp4", True),
        ("", "video/mp4", True),
        ("image/png", "image/png", True),
        ("IMAGE/PNG", "image/png", True),
        ("image/jpg", "image/jpeg", True),
        ("image/pjpeg", "image/jpeg", True),
        ("audio/x-wav", "audio/wav", True),
        ("audio/mp3", "audio/mpeg", True),
        ("audio/mpeg", "audio/mpeg", True),
        ("audio/webm", "video/webm", True),
        ("audio/mp4", "video/mp4", True),
        ("video/mp4", "audio/mp4", True),
        ("video/ogg", "audio/ogg", True),
        ("text/plain; charset=utf-8", "text/plain", True),
        ("text/csv", "text/plain", True),
        ("application/pdf", "image/jpeg", False),
        ("image/png", "image/jpeg", False),
        ("text/html", "image/png", False),
        ("video/quicktime", "video/mp4", False),
        ("application/json", "text/plain", False),
    ],
)
def test_declared_matches(declared: str | None, sniffed: str, expected: bool) -> None:
    assert declared_matches(declared, sniffed) is expected


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 1000, None),
        ("bytes=0-", 1000, (0, 999)),
        ("bytes=-500", 1000, (500, 999)),
        ("bytes=-5000", 1000, (0, 999)),
        ("bytes=100-199", 1000, (100, 199)),
        ("bytes=100-100", 1000, (100, 100)),
        ("bytes=900-5000", 1000, (900, 999)),
        ("Bytes = 1-2", 1000, (1, 2)),
        # Ignored, so the whole object is sent: malformed, other units, several ranges.
        ("bytes=200-100", 1000, None),
        ("bytes=-", 1000, None),
        ("items=0-1", 1000, None),
        ("bytes=0-1,5-6", 1000, None),
        ("bytes=a-b", 1000, None),
        ("bytes=" + "9" * 5000 + "-", 1000, None),
    ],
)
def test_parse_range(header: str | None, size: int, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    ("header", "size"),
    [("bytes=1000-", 1000), ("bytes=1000-1001", 1000), ("bytes=-0", 1000), ("bytes=0-", 0)],
)
def test_parse_range_not_satisfiable(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable) as raised:
        parse_range(header, size)

    assert raised.value.size == size


SIGNING_KEY = b"unit-test-signing-key-0123456789abcdef"


@pytest.fixture
def store() -> LocalStore:
    return LocalStore(Path("/nonexistent"), signing_key=SIGNING_KEY)


@pytest.fixture
def key() -> str:
    return file_key(uuid4(), uuid4())


async def signed(store: LocalStore, key: str) -> tuple[str, dict[str, str]]:
    url = await store.presign_get(
        key,
        filename='Plan "Ä".pdf',
        content_type="application/pdf",
        expires_in=60,
        origin="http://127.0.0.1:8000",
    )
    parts = urlsplit(url)
    return parts.path, {name: values[0] for name, values in parse_qs(parts.query).items()}


async def test_local_signed_url_verifies(store: LocalStore, key: str) -> None:
    path, params = await signed(store, key)

    assert path == f"/files-local/{key}"
    assert params["fn"] == 'Plan "Ä".pdf'
    assert store.verify_signed(key, params["exp"], params["fn"], params["ct"], params["sig"])


@pytest.mark.parametrize("field", ["key", "exp", "fn", "ct", "sig"])
async def test_local_signed_url_tampering_fails(store: LocalStore, key: str, field: str) -> None:
    _, params = await signed(store, key)
    values = {"key": key, **params}
    values[field] = {
        "key": file_key(uuid4(), uuid4()),
        "exp": str(int(params["exp"]) + 3600),
        "fn": "other.pdf",
        "ct": "text/html",
        "sig": params["sig"][:-1] + ("A" if params["sig"][-1] != "A" else "B"),
    }[field]

    assert not store.verify_signed(
        values["key"], values["exp"], values["fn"], values["ct"], values["sig"]
    )


async def test_local_signed_url_expires(store: LocalStore, key: str) -> None:
    _, params = await signed(store, key)
    expires_at = int(params["exp"])
    args = (key, params["exp"], params["fn"], params["ct"], params["sig"])

    assert store.verify_signed(*args, now=expires_at - 1)
    assert not store.verify_signed(*args, now=expires_at)


async def test_local_signature_is_bound_to_the_signing_key(store: LocalStore, key: str) -> None:
    _, params = await signed(store, key)
    other = LocalStore(Path("/nonexistent"), signing_key=b"another-signing-key-0123456789abcdef")

    assert not other.verify_signed(key, params["exp"], params["fn"], params["ct"], params["sig"])


@pytest.mark.parametrize(
    ("exp", "sig"), [("12x", "abc"), ("", "abc"), ("-1", "abc"), ("100", "sïg")]
)
def test_local_verify_rejects_malformed_input(
    store: LocalStore, key: str, exp: str, sig: str
) -> None:
    assert not store.verify_signed(key, exp, "a.pdf", "application/pdf", sig, now=0)


def test_local_store_rejects_short_signing_key() -> None:
    with pytest.raises(ValueError, match="at least"):
        LocalStore(Path("/nonexistent"), signing_key=b"short")


def test_keys_layout() -> None:
    tenant_id = UUID("0b7f6b8e-35a4-4b4e-9c59-2f2d8f1c3a10")
    file_id = UUID("6c1d0f4e-8f39-4c8e-a1b7-5e0e3b7c9d21")

    assert tenant_prefix(tenant_id) == "tenants/0b7f6b8e-35a4-4b4e-9c59-2f2d8f1c3a10/"
    assert file_key(tenant_id, file_id) == (
        "tenants/0b7f6b8e-35a4-4b4e-9c59-2f2d8f1c3a10/files/6c1d0f4e-8f39-4c8e-a1b7-5e0e3b7c9d21"
    )
    assert branding_key(tenant_id, "logo") == (
        "tenants/0b7f6b8e-35a4-4b4e-9c59-2f2d8f1c3a10/branding/logo"
    )


def test_keys_take_only_uuids() -> None:
    with pytest.raises(TypeError):
        file_key("../other-tenant", uuid4())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tenant_prefix(str(uuid4()))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["../logo", "logo/x", "Logo", "", "logo.png", "a" * 64])
def test_branding_names_are_strict(name: str) -> None:
    with pytest.raises(InvalidKeyError):
        branding_key(uuid4(), name)


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("report.pdf", "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"),
        (
            'Résumé "v2".pdf',
            'attachment; filename="R_sum_ _v2_.pdf"; '
            "filename*=UTF-8''R%C3%A9sum%C3%A9%20%22v2%22.pdf",
        ),
        (
            "a\r\nSet-Cookie: x=1",
            "attachment; filename=\"aSet-Cookie: x=1\"; filename*=UTF-8''aSet-Cookie%3A%20x%3D1",
        ),
        (
            "back\\slash%41",
            "attachment; filename=\"back_slash_41\"; filename*=UTF-8''back%5Cslash%2541",
        ),
        ("", "attachment; filename=\"download\"; filename*=UTF-8''download"),
    ],
)
def test_content_disposition(filename: str, expected: str) -> None:
    value = content_disposition(filename)

    assert value == expected
    assert re.fullmatch(r"[\x20-\x7e]+", value)
