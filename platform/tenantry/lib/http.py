"""Where a request came from (its host and origin, trusting forwarded headers only from proxies),
and conditional requests (entity tags).

A trusted proxy appends what it saw to `X-Forwarded-*`; anything before that value came from the
client. So the last value is the proxy's own, and the only one believed.
"""

from __future__ import annotations

import hashlib
import re

from litestar.datastructures import Headers
from litestar.types import Scope

MAX_HOST_LENGTH = 253
# One label at a time (a pattern over the whole name with optional dots backtracks
# exponentially on a name that fails at its end): letters, digits, hyphens, underscores.
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_IPV6_LITERAL = re.compile(r"\[[0-9a-f:.]{2,45}\]")
_PORT = re.compile(r"[0-9]{1,5}")


def _forwarded(scope: Scope, headers: Headers, name: str, trusted: tuple[str, ...]) -> str | None:
    value = headers.get(name)
    client = scope.get("client")
    if value and client and client[0] in trusted:
        return value.rsplit(",", 1)[-1].strip()
    return None


def _host_and_port(scope: Scope, headers: Headers, trusted: tuple[str, ...]) -> tuple[str, str]:
    raw = _forwarded(scope, headers, "x-forwarded-host", trusted) or headers.get("host") or ""
    raw = raw.strip().lower()
    if raw.startswith("["):  # IPv6 literal, keep the brackets
        name, _, rest = raw.partition("]")
        return name + "]", rest.removeprefix(":")
    if raw.count(":") == 1:
        name, _, port = raw.partition(":")
        return name.rstrip("."), port
    return raw.rstrip("."), ""


def request_host(scope: Scope, headers: Headers, trusted_proxies: tuple[str, ...]) -> str:
    """The Host (or a trusted proxy's X-Forwarded-Host), lowercased, without port or final dot."""
    return _host_and_port(scope, headers, trusted_proxies)[0]


def is_valid_host(host: str) -> bool:
    """A lowercased host name, IPv4 address or bracketed IPv6 literal; linear in its length."""
    if not host or len(host) > MAX_HOST_LENGTH:
        return False
    if host.startswith("["):
        return _IPV6_LITERAL.fullmatch(host) is not None
    return all(_LABEL.fullmatch(label) for label in host.split("."))


def request_origin(scope: Scope, headers: Headers, trusted_proxies: tuple[str, ...]) -> str:
    """`scheme://host[:port]` as the client called it, for links it should open as given."""
    host, port = _host_and_port(scope, headers, trusted_proxies)
    scheme = _forwarded(scope, headers, "x-forwarded-proto", trusted_proxies) or scope.get(
        "scheme", "http"
    )
    if scheme not in ("http", "https"):
        scheme = "http"
    if not is_valid_host(host):
        server = scope.get("server")
        host, port = (server[0], str(server[1])) if server else ("localhost", "")
    port = port if _PORT.fullmatch(port) and 0 < int(port) <= 65535 else ""
    return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"


def strong_etag(body: bytes) -> str:
    """A strong entity tag for exactly these bytes."""
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether `If-None-Match` names `etag` (RFC 9110: a weak comparison, `*` matches any)."""
    if not if_none_match:
        return False
    candidates = (candidate.strip().removeprefix("W/") for candidate in if_none_match.split(","))
    return any(candidate in ("*", etag) for candidate in candidates)
