"""Properties of the edge validators, for any input hypothesis can think of."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from litestar.datastructures import Headers

from tenantry.config import Settings
from tenantry.files.languages import ISO_639_1
from tenantry.files.rules import clean_filename, normalize_language
from tenantry.lib.errors import DomainError, ErrorCode
from tenantry.lib.http import MAX_HOST_LENGTH, is_valid_host, request_host, request_origin
from tenantry.platform.services import normalize_domain
from tenantry.storage.keys import (
    STAGING_NAMES,
    InvalidKeyError,
    branding_key,
    file_key,
    file_of_key,
    staging_key,
    staging_owner,
    tenant_of_key,
    tenant_prefix,
    validate_key,
    validate_prefix,
    validate_tenant_scoped_prefix,
)
from tenantry.storage.local_http import RangeNotSatisfiable, parse_range
from tenantry.storage.protocol import content_disposition

PROXY = "10.0.0.1"
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300)
label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)


def scope(client: str = "192.0.2.7", scheme: str = "http") -> Any:
    return {
        "type": "http",
        "client": (client, 1234),
        "server": ("10.9.9.9", 8000),
        "scheme": scheme,
    }


# -- lib/http.py ---------------------------------------------------------------------------


@given(host=header_text, forwarded=header_text)
def test_request_host_is_normalised_and_ignores_untrusted_forwarding(
    host: str, forwarded: str
) -> None:
    headers = Headers({"host": host, "x-forwarded-host": forwarded})
    result = request_host(scope(), headers, (PROXY,))
    assert result == result.lower()
    assert not result.endswith(".") or result.endswith("]")
    # An untrusted client's X-Forwarded-Host changes nothing.
    assert result == request_host(scope(), Headers({"host": host}), (PROXY,))


@given(labels=st.lists(label, min_size=1, max_size=5), port=st.integers(1, 65535))
def test_request_host_strips_port_and_case(labels: list[str], port: int) -> None:
    name = ".".join(labels)
    headers = Headers({"host": f"{name.upper()}:{port}"})
    assert request_host(scope(), headers, ()) == name
    assert is_valid_host(name)


@given(forwarded=st.lists(st.lists(label, min_size=1, max_size=3), min_size=1, max_size=3))
def test_only_the_trusted_proxys_own_forwarded_value_counts(forwarded: list[list[str]]) -> None:
    values = [".".join(labels) for labels in forwarded]
    headers = Headers({"host": "inner.example", "x-forwarded-host": ", ".join(values)})
    assert request_host(scope(client=PROXY), headers, (PROXY,)) == values[-1]


@given(host=st.text(max_size=300))
def test_valid_hosts_carry_nothing_dangerous(host: str) -> None:
    if is_valid_host(host):
        assert len(host) <= MAX_HOST_LENGTH
        assert not set(host) & set("/\\@?#%\"' \r\n\t\x00<>")


@given(host=header_text, proto=header_text, client=st.sampled_from([PROXY, "192.0.2.7"]))
def test_request_origin_is_always_a_plain_http_origin(host: str, proto: str, client: str) -> None:
    headers = Headers({"host": host, "x-forwarded-proto": proto, "x-forwarded-host": host})
    origin = request_origin(scope(client=client), headers, (PROXY,))
    match = re.fullmatch(r"(https?)://([^/:\s]+|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?", origin)
    assert match is not None, origin
    assert is_valid_host(match.group(2)) or match.group(2) == "10.9.9.9"


# -- files/rules.py ------------------------------------------------------------------------


@given(filename=st.text(max_size=600))
def test_clean_filename_has_no_path_and_no_control_characters(filename: str) -> None:
    name = clean_filename(filename)
    assert 1 <= len(name) <= 255
    assert "/" not in name and "\\" not in name
    assert all(ch.isprintable() for ch in name)
    assert clean_filename(name) == name  # idempotent


@given(language=st.text(max_size=8))
def test_normalize_language_accepts_exactly_iso_639_1(language: str) -> None:
    if language.lower() in ISO_639_1:
        assert normalize_language(language) == language.lower()
    else:
        with pytest.raises(DomainError) as raised:
            normalize_language(language)
        assert raised.value.error is ErrorCode.INVALID_LANGUAGE


# -- storage/keys.py -----------------------------------------------------------------------


@given(
    tenant=st.uuids(),
    file=st.uuids(),
    name=st.from_regex(r"[a-z0-9][a-z0-9_-]{0,62}", fullmatch=True),
)
def test_server_made_keys_are_valid_and_scoped(
    tenant: uuid.UUID, file: uuid.UUID, name: str
) -> None:
    for key in (file_key(tenant, file), branding_key(tenant, name)):
        assert validate_key(key) == key
        assert key.startswith(tenant_prefix(tenant))
        assert tenant_of_key(key) == tenant
    assert validate_tenant_scoped_prefix(tenant_prefix(tenant))
    assert validate_prefix("tenants/")


@given(key=st.text(max_size=120))
def test_arbitrary_text_is_a_key_only_in_the_server_layout(key: str) -> None:
    try:
        validate_key(key)
    except InvalidKeyError:
        return
    assert ".." not in key and not key.startswith("/") and "\\" not in key
    parts = key.split("/")
    assert parts[0] == "tenants" and uuid.UUID(parts[1])


@given(prefix=st.text(max_size=80))
def test_tenant_scoped_prefixes_never_span_tenants(prefix: str) -> None:
    try:
        validate_tenant_scoped_prefix(prefix)
    except InvalidKeyError:
        return
    assert prefix.endswith("/") and uuid.UUID(prefix.split("/")[1])


@given(name=st.text(max_size=80))
def test_branding_names_cannot_escape(name: str) -> None:
    try:
        key = branding_key(uuid.uuid4(), name)
    except InvalidKeyError:
        return
    assert "/" not in name and validate_key(key) == key


@given(tenant=st.uuids(), file=st.uuids(), name=st.sampled_from(STAGING_NAMES))
def test_staging_keys_belong_to_their_file_and_are_no_files(
    tenant: uuid.UUID, file: uuid.UUID, name: str
) -> None:
    key = file_key(tenant, file)
    staging = staging_key(key, name)
    assert validate_key(staging) == staging and tenant_of_key(staging) == tenant
    assert staging_owner(staging) == key
    assert file_of_key(staging) is None and file_of_key(key) == (tenant, file)
    assert staging_owner(key) is None and staging_owner(branding_key(tenant, "logo")) is None
    for not_a_file in (staging, branding_key(tenant, "logo")):
        with pytest.raises(InvalidKeyError):
            staging_key(not_a_file, name)
    with pytest.raises(InvalidKeyError):
        staging_key(key, "tus-other")


def test_keys_refuse_strings_for_uuids() -> None:
    with pytest.raises(TypeError):
        file_key("tenants/../x", uuid.uuid4())  # type: ignore[arg-type]


# -- storage/local_http.py -----------------------------------------------------------------


@given(header=st.one_of(st.none(), header_text), size=st.integers(0, 10**12))
def test_parse_range_answers_inside_the_object_or_refuses(header: str | None, size: int) -> None:
    try:
        result = parse_range(header, size)
    except RangeNotSatisfiable as exc:
        error = exc
    else:
        error = None
    if error is not None:
        assert error.size == size
    elif result is not None:
        start, end = result
        assert 0 <= start <= end < size


@given(size=st.integers(1, 10**9), data=st.data())
def test_parse_range_of_well_formed_ranges(size: int, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, size - 1))
    end = data.draw(st.integers(start, size + 10))
    assert parse_range(f"bytes={start}-{end}", size) == (start, min(end, size - 1))
    suffix = data.draw(st.integers(1, size + 10))
    assert parse_range(f"bytes=-{suffix}", size) == (max(0, size - suffix), size - 1)


# -- storage/protocol.py -------------------------------------------------------------------


@given(filename=st.text(max_size=300))
def test_content_disposition_cannot_be_broken_out_of(filename: str) -> None:
    value = content_disposition(filename)
    assert not re.search(r"[\x00-\x1f\x7f]", value)  # no CR/LF: no header injection
    match = re.fullmatch(
        r"attachment; filename=\"([^\"\\]*)\"; filename\*=UTF-8''([A-Za-z0-9%._~-]*)", value
    )
    assert match is not None, value
    assert all(0x20 <= ord(ch) <= 0x7E for ch in match.group(1))


# -- platform/services.py ------------------------------------------------------------------

SETTINGS = Settings(env="test", jwt_secret="x" * 40)


@given(domain=st.text(max_size=80))
def test_normalize_domain_returns_clean_names_or_invalid_domain(domain: str) -> None:
    try:
        name = normalize_domain(domain, SETTINGS)
    except DomainError as exc:
        error: DomainError | None = exc
    else:
        error = None
    if error is not None:
        assert error.error is ErrorCode.INVALID_DOMAIN
        return
    assert name == name.lower() and not name.endswith(".")
    assert re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", name), name
    assert name != SETTINGS.base_domain and not name.endswith("." + SETTINGS.base_domain)
    assert normalize_domain(name, SETTINGS) == name


@given(labels=st.lists(label, min_size=1, max_size=3))
def test_no_domain_under_the_base_domain(labels: list[str]) -> None:
    assume(labels)
    with pytest.raises(DomainError):
        normalize_domain(".".join([*labels, SETTINGS.base_domain]), SETTINGS)
