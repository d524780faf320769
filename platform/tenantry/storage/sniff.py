"""Content sniffing: the real MIME type of an upload from its first bytes.

The caller collects the first SNIFF_BYTES bytes of the stream (fewer if the file is shorter)
and passes them to `sniff`. Only signatures are checked, not whole-file validity: an 8-byte PNG
signature sniffs as image/png even if the rest is missing, while input cut inside a signature
sniffs as None. Results are canonical IANA names, which is what the database stores and what
downloads are served as.
"""

import codecs

SNIFF_BYTES = 4096

_OCTET_STREAM = "application/octet-stream"

# ISO base media (MP4 family) major and compatible brands from the `ftyp` box.
_FTYP_BRANDS = {
    b"isom": "video/mp4",
    b"iso2": "video/mp4",
    b"iso3": "video/mp4",
    b"iso4": "video/mp4",
    b"iso5": "video/mp4",
    b"iso6": "video/mp4",
    b"mp41": "video/mp4",
    b"mp42": "video/mp4",
    b"avc1": "video/mp4",
    b"dash": "video/mp4",
    b"mmp4": "video/mp4",
    b"MSNV": "video/mp4",
    b"M4V ": "video/mp4",
    b"M4VH": "video/mp4",
    b"M4VP": "video/mp4",
    b"M4A ": "audio/mp4",
    b"M4B ": "audio/mp4",
    b"M4P ": "audio/mp4",
    b"qt  ": "video/quicktime",
    b"3gp4": "video/3gpp",
    b"3gp5": "video/3gpp",
    b"3gp6": "video/3gpp",
    b"3gp7": "video/3gpp",
    b"3ge6": "video/3gpp",
    b"3ge7": "video/3gpp",
    b"3gg6": "video/3gpp",
    b"3g2a": "video/3gpp2",
    b"3g2b": "video/3gpp2",
    b"3g2c": "video/3gpp2",
}

_RIFF_FORMS = {b"WEBP": "image/webp", b"WAVE": "audio/wav"}

_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_EBML_DOCTYPE_ID = b"\x42\x82"
_EBML_DOCTYPES = {b"webm": "video/webm", b"matroska": "video/x-matroska"}

# MPEG audio frame header tables, indexed by the header's bit fields (0 = free/invalid).
_MPEG_BITRATES_KBPS = {
    # (is MPEG-1, layer) -> bitrate by index 0..14
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
# version bits -> sample rate by index: 11 MPEG-1, 10 MPEG-2, 00 MPEG-2.5
_MPEG_SAMPLE_RATES = {
    0b11: (44100, 48000, 32000),
    0b10: (22050, 24000, 16000),
    0b00: (11025, 12000, 8000),
}

# WHATWG MIME Sniffing "binary data bytes": control characters that do not occur in text.
_BINARY_BYTES = frozenset([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20)])


def sniff(head: bytes) -> str | None:
    """The MIME type the bytes really are, or None when they match nothing we accept."""
    if not head:
        return None
    for detect in (_sniff_signature, _sniff_ftyp, _sniff_ebml, _sniff_mpeg_audio, _sniff_text):
        found = detect(head)
        if found is not None:
            return found
    return None


def _sniff_signature(head: bytes) -> str | None:
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    # Every JPEG variant (JFIF E0, EXIF E1, raw DB, Adobe EE, ICC E2, ...) starts SOI + marker.
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and len(head) >= 12:
        return _RIFF_FORMS.get(head[8:12])
    if head.startswith(b"OggS"):
        return _sniff_ogg(head)
    return None


def _sniff_ogg(head: bytes) -> str:
    # The first page holds one packet; Theora's identification header means video.
    if len(head) > 26:
        first_packet = 27 + head[26]
        if head[first_packet : first_packet + 7] == b"\x80theora":
            return "video/ogg"
    return "audio/ogg"


def _sniff_ftyp(head: bytes) -> str | None:
    if head[4:8] != b"ftyp" or len(head) < 12:
        return None
    box_size = int.from_bytes(head[0:4], "big")
    if box_size < 16:
        return None
    major = _FTYP_BRANDS.get(head[8:12])
    if major is not None:
        return major
    # Unknown major brand: fall back to the first compatible brand we know.
    compatible = head[16 : min(box_size, len(head))]
    for offset in range(0, len(compatible) - 3, 4):
        brand = _FTYP_BRANDS.get(compatible[offset : offset + 4])
        if brand is not None:
            return brand
    return None


def _read_vint(data: bytes, pos: int, *, keep_marker: bool) -> tuple[int, int] | None:
    """An EBML variable-length integer at `pos`: (value, length in bytes), or None."""
    if pos >= len(data) or data[pos] == 0:
        return None
    length = 9 - data[pos].bit_length()
    if pos + length > len(data):
        return None
    value = data[pos] if keep_marker else data[pos] & (0xFF >> length)
    for byte in data[pos + 1 : pos + length]:
        value = (value << 8) | byte
    return value, length


def _sniff_ebml(head: bytes) -> str | None:
    if not head.startswith(_EBML_MAGIC):
        return None
    header_size = _read_vint(head, 4, keep_marker=False)
    if header_size is None:
        return None
    pos = 4 + header_size[1]
    end = min(pos + header_size[0], len(head))
    while pos < end:
        element_id = _read_vint(head, pos, keep_marker=True)
        if element_id is None:
            return None
        id_bytes = head[pos : pos + element_id[1]]
        pos += element_id[1]
        size = _read_vint(head, pos, keep_marker=False)
        if size is None:
            return None
        pos += size[1]
        if id_bytes == _EBML_DOCTYPE_ID:
            return _EBML_DOCTYPES.get(head[pos : pos + size[0]].rstrip(b"\0"))
        pos += size[0]
    return None


def _sniff_mpeg_audio(head: bytes) -> str | None:
    if head.startswith(b"ID3") and _is_id3v2_header(head):
        return "audio/mpeg"
    frame_length = _mpeg_frame_length(head, 0)
    if frame_length is None:
        return None
    # One valid header can be chance; when the window holds the next header, it must be valid.
    if frame_length + 4 <= len(head) and _mpeg_frame_length(head, frame_length) is None:
        return None
    return "audio/mpeg"


def _is_id3v2_header(head: bytes) -> bool:
    # "ID3", major version 2..4, revision < 0xFF, flags, then a 4-byte syncsafe size.
    if len(head) < 10:
        return False
    version, revision = head[3], head[4]
    return 2 <= version <= 4 and revision != 0xFF and all(b < 0x80 for b in head[6:10])


def _mpeg_frame_length(data: bytes, pos: int) -> int | None:
    """Length of the MPEG audio frame whose header starts at `pos`, or None if not a header."""
    header = data[pos : pos + 4]
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version_bits = (header[1] >> 3) & 0b11
    layer = 4 - ((header[1] >> 1) & 0b11)  # bits 11/10/01 are layer I/II/III
    bitrate_index = header[2] >> 4
    rate_index = (header[2] >> 2) & 0b11
    # Reserved version 01, reserved layer 00 (also ADTS AAC), free or bad bitrate, bad rate.
    if version_bits == 0b01 or layer == 4 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    is_mpeg1 = version_bits == 0b11
    bitrate = _MPEG_BITRATES_KBPS[(is_mpeg1, layer)][bitrate_index] * 1000
    sample_rate = _MPEG_SAMPLE_RATES[version_bits][rate_index]
    padding = (header[2] >> 1) & 1
    if layer == 1:
        return (12 * bitrate // sample_rate + padding) * 4
    samples_per_frame = 1152 if (layer == 2 or is_mpeg1) else 576
    return samples_per_frame // 8 * bitrate // sample_rate + padding


def _sniff_text(head: bytes) -> str | None:
    body = head.removeprefix(b"\xef\xbb\xbf")
    if any(byte in _BINARY_BYTES for byte in body):
        return None
    # Not final: a multi-byte character cut by the end of the window is not an error.
    try:
        codecs.getincrementaldecoder("utf-8")().decode(body, final=False)
    except UnicodeDecodeError:
        return None
    return "text/plain"


# Declared types that name the same thing as a sniffed type. Container formats cannot tell
# audio-only from video by their signature, so either kind of declaration is accepted for them.
_ACCEPTED_DECLARATIONS = {
    "image/jpeg": {"image/jpeg", "image/jpg", "image/pjpeg"},
    "image/png": {"image/png", "image/x-png"},
    "application/pdf": {"application/pdf", "application/x-pdf"},
    "audio/wav": {"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"},
    "audio/mpeg": {"audio/mpeg", "audio/mp3", "audio/x-mp3", "audio/mpeg3", "audio/x-mpeg"},
    "audio/ogg": {"audio/ogg", "video/ogg", "application/ogg"},
    "video/ogg": {"audio/ogg", "video/ogg", "application/ogg"},
    "video/mp4": {"video/mp4", "audio/mp4", "application/mp4", "audio/x-m4a", "video/x-m4v"},
    "audio/mp4": {"audio/mp4", "audio/x-m4a", "audio/m4a", "video/mp4", "application/mp4"},
    "video/webm": {"video/webm", "audio/webm"},
    "video/x-matroska": {"video/x-matroska", "audio/x-matroska"},
    "video/3gpp": {"video/3gpp", "audio/3gpp"},
    "video/3gpp2": {"video/3gpp2", "audio/3gpp2"},
}


def mime_essence(value: str) -> str:
    """The type/subtype part of a MIME type, lower-cased, parameters dropped."""
    return value.partition(";")[0].strip().lower()


def declared_matches(declared: str | None, sniffed: str) -> bool:
    """Whether the client's declared type agrees with the sniffed one.

    No declaration, or application/octet-stream ("I don't know"), agrees with anything. Any
    text/* agrees with sniffed text/plain: sniffing cannot tell CSV from Markdown, and the file
    is stored and served as text/plain either way.
    """
    if declared is None:
        return True
    essence = mime_essence(declared)
    if essence in ("", _OCTET_STREAM):
        return True
    if sniffed == "text/plain":
        return essence.startswith("text/")
    return essence in _ACCEPTED_DECLARATIONS.get(sniffed, {sniffed})
