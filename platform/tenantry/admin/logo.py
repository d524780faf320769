"""What a tenant's logo may be: PNG, JPEG, WebP or SVG, its declared type the one its bytes are,
and an SVG only as what is left of it after sanitising.

An SVG is a document that can run script and load things when opened by itself. It is parsed
by defusedxml (expat underneath), which refuses any DTD, so no entity expansion and nothing
external; then only an allowlist of SVG elements and attributes is kept (no script, no foreign
content, no `on*` handler, no reference that is not a `#fragment` of the document, no style that
loads or runs anything) and written out again by `_SvgWriter`. ElementTree's own serialiser
cannot write SVG's default namespace beside unqualified attributes.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import get_args
from xml.sax.saxutils import escape, quoteattr

import defusedxml
import defusedxml.ElementTree

from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.storage import SNIFF_BYTES, declared_matches, mime_essence, sniff
from tenantry.tenancy.schemas import SVG, LogoInfo, LogoType

LOGO_TYPES: tuple[LogoType, ...] = get_args(LogoType)
# What `sniff` names the raster types, as the logo types they are.
_RASTER_TYPES: dict[str, LogoType] = {t: t for t in LOGO_TYPES if t != SVG}
MAX_SVG_DEPTH = 32

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
XML_NS = "http://www.w3.org/XML/1998/namespace"
_PREFIXES = {XLINK_NS: "xlink:", XML_NS: "xml:"}


def _names(text: str) -> frozenset[str]:
    """A set of names written as a list of words (the allowlists below)."""
    return frozenset(text.split())


ELEMENTS = _names("""
    svg g defs symbol use title desc style path rect circle ellipse line polyline polygon
    text tspan linearGradient radialGradient stop clipPath mask pattern marker""")
# Drawn where they stand; what the containers below hold is drawn only when referenced.
DRAWABLE = _names("path rect circle ellipse line polyline polygon text use")
NOT_RENDERED = _names("defs symbol clipPath mask pattern marker linearGradient radialGradient")
# Presentation, geometry and accessibility; no event handler (`on*`) is among them.
ATTRIBUTES = _names("""
    id class style transform viewBox preserveAspectRatio width height x y x1 y1 x2 y2 cx cy
    r rx ry fx fy fr d points pathLength dx dy rotate textLength lengthAdjust fill fill-opacity
    fill-rule stroke stroke-width stroke-linecap stroke-linejoin stroke-miterlimit
    stroke-dasharray stroke-dashoffset stroke-opacity opacity color clip-path clip-rule
    clipPathUnits mask maskUnits maskContentUnits offset stop-color stop-opacity gradientUnits
    gradientTransform spreadMethod patternUnits patternContentUnits patternTransform
    markerWidth markerHeight markerUnits refX refY orient marker-start marker-mid marker-end
    font-family font-size font-style font-weight font-variant letter-spacing word-spacing
    text-anchor dominant-baseline alignment-baseline baseline-shift text-decoration
    writing-mode display visibility overflow vector-effect paint-order shape-rendering
    text-rendering color-interpolation version role aria-label aria-hidden aria-labelledby
    aria-describedby focusable""") | {f"{{{XML_NS}}}space", f"{{{XML_NS}}}lang"}
REFERENCES = frozenset({"href", f"{{{XLINK_NS}}}href"})

_LOCAL_REFERENCE = re.compile(r"#[A-Za-z_][\w.:-]*")
_LOCAL_URL = re.compile(r"url\(\s*(['\"]?)#[A-Za-z_][\w.:-]*\1\s*\)", re.IGNORECASE)
# What loads or runs something from CSS (a backslash could spell any of it as an escape).
_ACTIVE_CSS = re.compile(r"url\s*\(|@import|expression\s*\(|javascript:|\\", re.IGNORECASE)
_XML_START = re.compile(rb"(?:\xef\xbb\xbf)?\s*<")


@dataclass(frozen=True, slots=True)
class AcceptedLogo:
    content_type: LogoType
    data: bytes

    def info(self) -> LogoInfo:
        return LogoInfo(
            content_type=self.content_type,
            size=len(self.data),
            sha256=hashlib.sha256(self.data).hexdigest(),
        )


def accept_logo(declared: str | None, body: bytes) -> AcceptedLogo:
    """The logo to store: 415 unless the declared type is a logo type and the bytes are of that
    type, 422 for an empty body or an SVG that is refused."""
    declared_type = mime_essence(declared or "")
    # `declared_matches` takes "no type" (none, octet-stream) as agreeing with any: not here.
    undeclared = declared_type in ("", "application/octet-stream")
    if undeclared or not any(declared_matches(declared_type, t) for t in LOGO_TYPES):
        raise DomainError(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            f"a logo is sent as one of {', '.join(LOGO_TYPES)}, not as '{declared_type}'",
        )
    if not body:
        raise DomainError(ErrorCode.EMPTY_FILE, "the logo has no bytes")
    head = body[:SNIFF_BYTES]
    sniffed = _logo_type(head)
    if sniffed is None or not declared_matches(declared_type, sniffed):
        seen = sniffed or sniff(head) or "of no known type"
        raise DomainError(
            ErrorCode.CONTENT_TYPE_MISMATCH, f"the bytes are not {declared_type}: they are {seen}"
        )
    if sniffed == SVG:
        return AcceptedLogo(SVG, sanitize_svg(body))
    return AcceptedLogo(sniffed, body)


def _logo_type(head: bytes) -> LogoType | None:
    sniffed = sniff(head)
    if sniffed == "text/plain" and _XML_START.match(head):
        return SVG  # a candidate: parsing decides
    return _RASTER_TYPES.get(sniffed or "")


def sanitize_svg(document: bytes) -> bytes:
    """The document with only what may be drawn safely, or 422 `invalid_svg`."""
    try:
        root = defusedxml.ElementTree.fromstring(document, forbid_dtd=True)
    except defusedxml.DefusedXmlException as exc:
        raise DomainError(
            ErrorCode.INVALID_SVG,
            "an SVG logo may not have a DTD or declare entities (<!DOCTYPE>, <!ENTITY>)",
        ) from exc
    except ET.ParseError as exc:
        raise DomainError(ErrorCode.INVALID_SVG, f"the SVG is not well-formed XML: {exc}") from exc
    if root.tag != f"{{{SVG_NS}}}svg":
        raise DomainError(ErrorCode.INVALID_SVG, "the document is not an <svg> in SVG's namespace")
    writer = _SvgWriter()
    writer.write(root, depth=0, rendered=True)
    if not writer.drawn:
        raise DomainError(ErrorCode.INVALID_SVG, "nothing drawable is left once sanitised")
    return "".join(writer.parts).encode("utf-8")


class _SvgWriter:
    """Writes the allowlisted part of a parsed SVG and counts what of it is drawn."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.drawn = 0

    def write(self, element: ET.Element, *, depth: int, rendered: bool) -> None:
        if depth > MAX_SVG_DEPTH:
            raise DomainError(
                ErrorCode.INVALID_SVG, f"the SVG nests deeper than {MAX_SVG_DEPTH} elements"
            )
        namespace, _, name = element.tag.removeprefix("{").rpartition("}")
        if namespace != SVG_NS or name not in ELEMENTS:
            return  # with everything inside it
        if name == "style" and _ACTIVE_CSS.search(element.text or ""):
            return
        kept = {key: value for key, value in element.attrib.items() if _keeps(key, value)}
        rendered = rendered and name not in NOT_RENDERED
        if rendered and name in DRAWABLE and (name != "use" or REFERENCES & kept.keys()):
            self.drawn += 1
        namespaces = f' xmlns="{SVG_NS}" xmlns:xlink="{XLINK_NS}"' if depth == 0 else ""
        attributes = "".join(
            f" {_qualified(key)}={quoteattr(value)}" for key, value in kept.items()
        )
        self.parts.append(f"<{name}{namespaces}{attributes}>{escape(element.text or '')}")
        for child in element:
            self.write(child, depth=depth + 1, rendered=rendered)
            self.parts.append(escape(child.tail or ""))  # text after a child stays, kept or not
        self.parts.append(f"</{name}>")


def _keeps(key: str, value: str) -> bool:
    if key in REFERENCES:
        return _LOCAL_REFERENCE.fullmatch(value.strip()) is not None
    if key not in ATTRIBUTES:
        return False
    if key == "style":
        return not _ACTIVE_CSS.search(value)
    # Presentation attributes may point at the document's own gradients and clip paths.
    return not _ACTIVE_CSS.search(_LOCAL_URL.sub("", value))


def _qualified(key: str) -> str:
    namespace, _, name = key.removeprefix("{").rpartition("}")
    return f"{_PREFIXES.get(namespace, '')}{name}"
