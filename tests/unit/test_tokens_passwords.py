from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import jwt
import pytest

from tenantry.auth.passwords import PasswordHasher, validate_password
from tenantry.auth.tokens import TokenIssuer, bearer_token, hash_refresh_token
from tenantry.lib.errors import DomainError

SECRET = "unit-test-secret-" + "z" * 32


@pytest.fixture
def issuer() -> TokenIssuer:
    return TokenIssuer(secret=SECRET, issuer="tenantry", ttl_seconds=900)


def test_tenant_token_round_trip(issuer: TokenIssuer) -> None:
    user, tenant = uuid.uuid4(), uuid.uuid4()
    token = issuer.issue(subject=user, role="editor", audience="tenant", tenant_id=tenant)
    claims = issuer.verify(token, "tenant")
    assert (claims.sub, claims.role, claims.tid) == (user, "editor", tenant)
    assert issuer.try_verify(token, "tenant") == claims


def test_audiences_do_not_mix(issuer: TokenIssuer) -> None:
    platform = issuer.issue(
        subject=uuid.uuid4(), role="platform_admin", audience="platform", tenant_id=None
    )
    with pytest.raises(DomainError):
        issuer.verify(platform, "tenant")
    assert issuer.try_verify(platform, "tenant") is None
    tenant = issuer.issue(
        subject=uuid.uuid4(), role="owner", audience="tenant", tenant_id=uuid.uuid4()
    )
    with pytest.raises(DomainError):
        issuer.verify(tenant, "platform")


def test_platform_token_carrying_a_tenant_is_refused(issuer: TokenIssuer) -> None:
    claims = {
        "iss": "tenantry",
        "aud": "platform",
        "sub": str(uuid.uuid4()),
        "role": "platform_admin",
        "iat": int(time.time()),
        "exp": int(time.time()) + 60,
        "jti": "j",
        "tid": str(uuid.uuid4()),
    }
    with pytest.raises(DomainError):
        issuer.verify(jwt.encode(claims, SECRET, algorithm="HS256"), "platform")


def test_expired_token_has_its_own_code(issuer: TokenIssuer) -> None:
    expired = TokenIssuer(secret=SECRET, issuer="tenantry", ttl_seconds=-60)
    token = expired.issue(
        subject=uuid.uuid4(), role="viewer", audience="tenant", tenant_id=uuid.uuid4()
    )
    with pytest.raises(DomainError) as caught:
        issuer.verify(token, "tenant")
    assert caught.value.code == "token_expired"


def test_hs512_token_with_same_secret_is_refused(issuer: TokenIssuer) -> None:
    claims = {
        "iss": "tenantry",
        "aud": "tenant",
        "sub": str(uuid.uuid4()),
        "role": "owner",
        "tid": str(uuid.uuid4()),
        "iat": int(time.time()),
        "exp": int(time.time()) + 60,
        "jti": "j",
    }
    with pytest.raises(DomainError):
        issuer.verify(jwt.encode(claims, SECRET, algorithm="HS512"), "tenant")


def _claims(**changes: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": "tenantry",
        "aud": "tenant",
        "sub": str(uuid.uuid4()),
        "role": "owner",
        "tid": str(uuid.uuid4()),
        "iat": now,
        "exp": now + 60,
        "jti": "j",
        "ep": 3,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def test_tokens_pyjwt_signs_are_verified_and_read_as_pyjwt_reads_them(issuer: TokenIssuer) -> None:
    claims = _claims()
    verified = issuer.verify(jwt.encode(claims, SECRET, algorithm="HS256"), "tenant")
    assert (str(verified.sub), str(verified.tid), verified.role, verified.ep) == (
        claims["sub"],
        claims["tid"],
        "owner",
        3,
    )
    ours = issuer.issue(
        subject=uuid.uuid4(), role="viewer", audience="tenant", tenant_id=uuid.uuid4()
    )
    assert jwt.decode(ours, SECRET, algorithms=["HS256"], audience="tenant")["role"] == "viewer"


def _tampered(token: str, part: int, replace: str) -> str:
    parts = token.split(".")
    parts[part] = replace
    return ".".join(parts)


def _signed(**changes: object) -> Callable[[], str]:
    """Made when the test runs (other tests may move the clock)."""
    return lambda: jwt.encode(_claims(**changes), SECRET, algorithm="HS256")


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(_signed(exp=None), id="no-exp"),
        pytest.param(_signed(jti=None), id="no-jti"),
        pytest.param(_signed(iat=None), id="no-iat"),
        pytest.param(lambda: _signed(iat=int(time.time()) + 600)(), id="issued-in-the-future"),
        pytest.param(lambda: _signed(nbf=int(time.time()) + 600)(), id="not-yet-valid"),
        pytest.param(_signed(aud=["tenant", "platform"]), id="audience-list"),
        pytest.param(_signed(exp=1.5e12), id="float-exp"),
        pytest.param(_signed(sub="not-a-uuid"), id="sub"),
        pytest.param(lambda: _signed()() + "!", id="sig-not-base64"),
        pytest.param(lambda: _tampered(_signed()(), 0, "eyJhbGciOiJub25lIn0"), id="alg-none"),
        pytest.param(lambda: _signed()() + ".x", id="four-parts"),
        pytest.param(lambda: "caf\u00e9.b.c", id="not-ascii"),
        pytest.param(lambda: "", id="empty"),
        pytest.param(lambda: _signed()()[:-2], id="truncated"),
    ],
)
def test_malformed_or_unsigned_tokens_are_401s(
    issuer: TokenIssuer, make_token: Callable[[], str]
) -> None:
    with pytest.raises(DomainError) as caught:
        issuer.verify(make_token(), "tenant")
    assert caught.value.code == "invalid_token"


def test_a_signed_payload_that_is_not_a_claims_object_is_a_401(issuer: TokenIssuer) -> None:
    token = jwt.api_jws.encode(b"[1, 2]", SECRET, algorithm="HS256")
    with pytest.raises(DomainError) as caught:
        issuer.verify(token, "tenant")
    assert caught.value.code == "invalid_token"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        (None, None),
        ("", None),
    ],
)
def test_bearer_token(header: str | None, expected: str | None) -> None:
    assert bearer_token(header) == expected


def test_refresh_token_hash_is_stable_and_not_the_token() -> None:
    assert hash_refresh_token("abc") == hash_refresh_token("abc")
    assert hash_refresh_token("abc") != "abc"
    assert len(hash_refresh_token("abc")) == 64


def test_password_limits() -> None:
    assert validate_password("x" * 72) == b"x" * 72
    with pytest.raises(DomainError) as too_long:
        validate_password("x" * 73)
    assert too_long.value.code == "password_too_long"
    with pytest.raises(DomainError) as multibyte:
        validate_password("€" * 25)  # 25 characters, 75 bytes
    assert multibyte.value.code == "password_too_long"
    with pytest.raises(DomainError) as short:
        validate_password("1234567")
    assert short.value.code == "password_too_short"


async def test_hasher_round_trip_and_unknown_user() -> None:
    hasher = PasswordHasher(rounds=4, concurrency=2)
    hashed = await hasher.hash("correct horse")
    assert await hasher.verify("correct horse", hashed)
    assert not await hasher.verify("wrong horse", hashed)
    # An unknown user (no hash) never verifies, even against the dummy hash's own password.
    assert not await hasher.verify("not-a-real-password", None)
