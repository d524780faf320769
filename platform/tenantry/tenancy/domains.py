"""A tenant's own domains: the name rules, and proof of control by a DNS TXT record.

A domain a tenant's admins ask for waits, unverified, until DNS carries
`_tenantry-challenge.<domain> TXT "tenantry-verification=<token>"`; only verified domains
resolve a tenant (`tenancy.cache`). The check asks the name servers the deployment is configured
with (`TENANTRY_DNS_NAMESERVERS`, else the system's), through dnspython.
"""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import UTC, datetime

import dns.asyncresolver
import dns.exception
import dns.resolver
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.config import Settings
from tenantry.db.models import TenantDomain
from tenantry.lib.errors import DomainError, ErrorCode

CHALLENGE_LABEL = "_tenantry-challenge"
RECORD_PREFIX = "tenantry-verification="
LOOKUP_SECONDS = 5.0

_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalize_domain(domain: str, settings: Settings) -> str:
    """Lowercase, no trailing dot, valid labels, and never under the platform's base domain."""
    name = domain.strip().lower().rstrip(".")
    labels = name.split(".")
    base = settings.base_domain
    if (
        len(labels) < 2
        or not all(_HOST_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise DomainError(
            ErrorCode.INVALID_DOMAIN, f"'{domain}' is not a valid domain name", field="domain"
        )
    if name == base or name.endswith("." + base) or name in settings.shared_hosts:
        # `{slug}.{base}` hosts belong to slugs; letting a tenant claim one would hijack it.
        raise DomainError(
            ErrorCode.INVALID_DOMAIN,
            f"'{domain}' is under the platform's base domain '{base}'",
            field="domain",
        )
    return name


def new_verification_token() -> str:
    return secrets.token_urlsafe(24)


def challenge_name(domain: str) -> str:
    return f"{CHALLENGE_LABEL}.{domain}"


def challenge_value(token: str) -> str:
    return RECORD_PREFIX + token


class DnsVerifier:
    def __init__(self, nameservers: tuple[str, ...], port: int = 53) -> None:
        self._nameservers = nameservers
        self._port = port

    def _resolver(self) -> dns.asyncresolver.Resolver:
        if not self._nameservers:
            return dns.asyncresolver.Resolver()
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = list(self._nameservers)
        resolver.port = self._port
        return resolver

    async def carries(self, domain: str, token: str) -> bool:
        """Whether the domain's challenge record holds the token (no record: False; DNS that
        does not answer: 503, so a flaky resolver never reads as a failed proof)."""
        try:
            answer = await self._resolver().resolve(
                challenge_name(domain), "TXT", lifetime=LOOKUP_SECONDS
            )
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return False
        except dns.exception.DNSException as exc:
            raise DomainError(
                ErrorCode.DNS_UNAVAILABLE, f"DNS did not answer for {domain}: {exc}"
            ) from exc
        wanted = challenge_value(token)
        return any(b"".join(record.strings).decode(errors="replace") == wanted for record in answer)


async def verify_domain(
    session: AsyncSession, tenant_id: uuid.UUID, domain: str, verifier: DnsVerifier
) -> TenantDomain:
    """Marks the tenant's domain verified if DNS carries its record (409 if not yet)."""
    row = (
        await session.execute(
            select(TenantDomain)
            .where(TenantDomain.tenant_id == tenant_id, TenantDomain.domain == domain)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if row is None:
        raise DomainError(ErrorCode.DOMAIN_NOT_FOUND, f"the tenant has no domain '{domain}'")
    if row.verified:
        return row
    if row.verification_token is None or not await verifier.carries(
        row.domain, row.verification_token
    ):
        raise DomainError(
            ErrorCode.DOMAIN_NOT_VERIFIED,
            f"no TXT record {challenge_name(row.domain)} with the verification value",
        )
    row.verified = True
    row.verified_at = datetime.now(UTC)
    await session.flush()
    return row
