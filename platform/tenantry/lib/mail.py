"""Outgoing mail: invitations and password resets.

`SmtpMailer` sends through an SMTP server (STARTTLS or TLS when asked, login when given).
Without SMTP settings there is no mailer at all, and the services say so to their callers (an
admin then gets an invitation's token once, in the API answer). `tenantry dev` runs a local mail
sink (`tenantry.server`) and points the app at it, so invitations can be followed in dev.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol, runtime_checkable

import aiosmtplib


@dataclass(frozen=True, slots=True)
class Mail:
    to: str
    subject: str
    text: str


@runtime_checkable  # Litestar checks injected values against their declared type
class Mailer(Protocol):
    async def send(self, mail: Mail) -> None: ...


class MailUnavailable(Exception):
    """The SMTP server could not take the message."""


@dataclass(frozen=True, slots=True)
class SmtpMailer:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    use_tls: bool = False
    timeout_seconds: float = 10.0

    async def send(self, mail: Mail) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message.set_content(mail.text)
        try:
            await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                start_tls=self.starttls,
                use_tls=self.use_tls,
                timeout=self.timeout_seconds,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise MailUnavailable(str(exc)) from exc


def smtp_mailer(
    host: str | None,
    port: int,
    *,
    sender: str,
    username: str | None,
    password: str | None,
    starttls: bool,
    use_tls: bool,
) -> SmtpMailer | None:
    """The mailer for these settings; none without a host."""
    if not host:
        return None
    return SmtpMailer(
        host=host,
        port=port,
        sender=sender,
        username=username,
        password=password,
        starttls=starttls,
        use_tls=use_tls,
    )
