"""Writes the sniffing corpus in tests/data/corpus/: small, structurally real files.

Every file is built from its format's specification here, so the corpus carries no third-party
content. Run `uv run python tests/data/make_corpus.py` to regenerate; the outputs are committed
so the tests do not depend on this script. `file --mime-type tests/data/corpus/*` (libmagic)
serves as an independent check of the verdicts in tests/unit/test_sniff.py.
"""

import io
import random
import struct
import wave
import zlib
from pathlib import Path

CORPUS = Path(__file__).parent / "corpus"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_1x1() -> bytes:
    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)  # 1x1, 8-bit greyscale
    pixels = zlib.compress(b"\x00\x80")  # filter byte, one grey pixel
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", pixels)
        + png_chunk(b"IEND", b"")
    )


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def jpeg_8x8(app_segment: bytes) -> bytes:
    """A baseline 8x8 mid-grey JPEG: every coefficient is zero, so both Huffman tables need
    one symbol (DC category 0, AC end-of-block) and the scan is two one-bit codes."""
    quantization = b"\x00" + bytes([1] * 64)
    frame = struct.pack(">BHHB", 8, 8, 8, 1) + b"\x01\x11\x00"
    dc_table = b"\x00" + bytes([1] + [0] * 15) + b"\x00"
    ac_table = b"\x10" + bytes([1] + [0] * 15) + b"\x00"
    scan = b"\x01\x01\x00\x00\x3f\x00"
    entropy_coded = b"\x3f"  # bits 0 (DC) 0 (EOB), padded with ones
    return (
        b"\xff\xd8"
        + app_segment
        + jpeg_segment(0xDB, quantization)
        + jpeg_segment(0xC0, frame)
        + jpeg_segment(0xC4, dc_table)
        + jpeg_segment(0xC4, ac_table)
        + jpeg_segment(0xDA, scan)
        + entropy_coded
        + b"\xff\xd9"
    )


def jfif_app0() -> bytes:
    return jpeg_segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")


def exif_app1() -> bytes:
    # Little-endian TIFF header, then one IFD with no entries and no next IFD.
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 0) + struct.pack("<I", 0)
    return jpeg_segment(0xE1, b"Exif\x00\x00" + tiff)


def gif_1x1() -> bytes:
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0)  # global colour table of 2 entries
        + b"\x00\x00\x00\xff\xff\xff"
        + b"\x2c"
        + struct.pack("<HHHHB", 0, 0, 1, 1, 0)
        + b"\x02\x02\x44\x01\x00"  # LZW minimum code size 2: clear, index 0, end
        + b"\x3b"
    )


class BitWriter:
    """Least-significant-bit-first bit packing, as VP8L uses."""

    def __init__(self) -> None:
        self.value = 0
        self.length = 0

    def write(self, value: int, bits: int) -> None:
        self.value |= value << self.length
        self.length += bits

    def to_bytes(self) -> bytes:
        return self.value.to_bytes((self.length + 7) // 8, "little")


def webp_lossless_1x1() -> bytes:
    bits = BitWriter()
    bits.write(0x2F, 8)  # VP8L signature
    bits.write(0, 14)  # width - 1
    bits.write(0, 14)  # height - 1
    bits.write(0, 1)  # alpha unused
    bits.write(0, 3)  # version
    bits.write(0, 1)  # no transform
    bits.write(0, 1)  # no colour cache
    bits.write(0, 1)  # no meta prefix codes
    # Five simple prefix codes (green, red, blue, alpha, distance), one symbol each, so the
    # single pixel takes no bits: 0 for colours and distance, 255 for alpha (opaque black).
    for symbol in (0, 0, 0, 255, 0):
        bits.write(1, 1)  # simple code
        bits.write(0, 1)  # one symbol
        bits.write(1, 1)  # symbol is 8 bits wide
        bits.write(symbol, 8)
    payload = bits.to_bytes()
    chunk = b"VP8L" + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) % 2)
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def wav_short() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(b"\x00\x00" * 80)
    return buffer.getvalue()


def ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def ogg_page(packet: bytes, *, sequence: int, flags: int) -> bytes:
    assert len(packet) < 255
    header = (
        b"OggS" + struct.pack("<BBqIII", 0, flags, 0, 0x5EED, sequence, 0) + bytes([1, len(packet)])
    )
    page = header + packet
    return page[:22] + struct.pack("<I", ogg_crc(page)) + page[26:]


def ogg_opus_empty() -> bytes:
    """An Ogg Opus stream with its two header pages and no audio: valid, and silent."""
    opus_head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 48000, 0, 0)
    vendor = b"tenantry corpus"
    opus_tags = b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", 0)
    return ogg_page(opus_head, sequence=0, flags=0x02) + ogg_page(opus_tags, sequence=1, flags=0x04)


def ebml_element(element_id: bytes, data: bytes) -> bytes:
    assert len(data) < 0x7F
    return element_id + bytes([0x80 | len(data)]) + data


def matroska(doctype: bytes) -> bytes:
    header = b"".join(
        [
            ebml_element(b"\x42\x86", b"\x01"),  # EBMLVersion
            ebml_element(b"\x42\xf7", b"\x01"),  # EBMLReadVersion
            ebml_element(b"\x42\xf2", b"\x04"),  # EBMLMaxIDLength
            ebml_element(b"\x42\xf3", b"\x08"),  # EBMLMaxSizeLength
            ebml_element(b"\x42\x82", doctype),  # DocType
            ebml_element(b"\x42\x87", b"\x04"),  # DocTypeVersion
            ebml_element(b"\x42\x85", b"\x02"),  # DocTypeReadVersion
        ]
    )
    info = b"".join(
        [
            ebml_element(b"\x2a\xd7\xb1", struct.pack(">I", 1_000_000)),  # TimestampScale
            ebml_element(b"\x4d\x80", b"tenantry"),  # MuxingApp
            ebml_element(b"\x57\x41", b"tenantry"),  # WritingApp
        ]
    )
    segment = ebml_element(b"\x15\x49\xa9\x66", info)  # Info
    return (
        ebml_element(b"\x1a\x45\xdf\xa3", header)
        + b"\x18\x53\x80\x67"  # Segment
        + b"\x01\xff\xff\xff\xff\xff\xff\xff"  # unknown size, as live muxers write it
        + segment
    )


def iso_box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mp4(major_brand: bytes, *compatible: bytes) -> bytes:
    ftyp = iso_box(b"ftyp", major_brand + struct.pack(">I", 0x200) + b"".join(compatible))
    return ftyp + iso_box(b"free", b"") + iso_box(b"mdat", b"\x00" * 16)


def mpeg_frame() -> bytes:
    # MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, no padding: 144 * 128000 / 44100 = 417 bytes.
    return b"\xff\xfb\x90\x64" + b"\x00" * 413


def id3v2(title: bytes) -> bytes:
    frame = b"TIT2" + struct.pack(">I", len(title) + 1) + b"\x00\x00" + b"\x03" + title
    size = len(frame)
    syncsafe = bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))
    return b"ID3\x04\x00\x00" + syncsafe + frame


def pdf_minimal() -> bytes:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 72 72] >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref_at,
    )
    return bytes(out)


def binary_junk() -> bytes:
    # Seeded, and led by a NUL so it can never pass as text or hit a signature by chance.
    return b"\x00" + random.Random(1337).randbytes(255)


TEXT = "Mentor notes: naïve café, 東京, emoji 🎓.\nSecond line.\n"

CORPUS_FILES = {
    "clip.mp4": mp4(b"isom", b"isom", b"iso2", b"avc1", b"mp41"),
    "photo-jfif.jpg": jpeg_8x8(jfif_app0()),
    "photo-exif.jpg": jpeg_8x8(exif_app1()),
    "jpeg-renamed.pdf": jpeg_8x8(jfif_app0()),
    "notes.txt": TEXT.encode(),
    "notes-bom.txt": b"\xef\xbb\xbf" + TEXT.encode(),
    "empty.bin": b"",
    "image.png": png_1x1(),
    "truncated.png": png_1x1()[:20],
    "document.pdf": pdf_minimal(),
    "image.gif": gif_1x1(),
    "image.webp": webp_lossless_1x1(),
    "sound.wav": wav_short(),
    "sound.opus": ogg_opus_empty(),
    "video.webm": matroska(b"webm"),
    "video.mkv": matroska(b"matroska"),
    "song-id3.mp3": id3v2(b"Corpus") + mpeg_frame() * 2,
    "song-raw.mp3": mpeg_frame() * 3,
    "junk.bin": binary_junk(),
}


def main() -> None:
    CORPUS.mkdir(exist_ok=True)
    for name, content in CORPUS_FILES.items():
        (CORPUS / name).write_bytes(content)


if __name__ == "__main__":
    main()
