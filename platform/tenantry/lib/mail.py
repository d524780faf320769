"""Outgoing mail: invitations and password resets.

`SmtpMailer` sends through an SMTP server (STARTTLS or TLS when asked, login when given).
Without SMTP settings there is no mailer at all, and the services say so to their callers (an
admin then gets an invitation's token once, in the API answer). `tenantry dev` runs a local mail
sink (`tenantry.server`) and points the app at it, so invitations can be followed in dev.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol, runtime_checkable

import aiosmtplib
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope


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


class MailSink:
    """`tenantry dev`'s local SMTP server: every message it takes is shown on the console and
    kept as an .eml file under its directory, so invitations and resets can be followed."""

    def __init__(self, directory: Path, show: Callable[[str], None]) -> None:
        self.directory = directory
        self._show = show
        self._controller: Controller | None = None
        self.port = 0

    async def handle_DATA(self, _server: object, _session: object, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        message = message_from_bytes(content)
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}.eml"
        path.write_bytes(content)
        body = message.get_payload(decode=True)
        text = body.decode(errors="replace") if isinstance(body, bytes) else ""
        self._show(f"mail to {message['To']}: {message['Subject']} ({path})\n{text}")
        return "250 OK"

    def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._controller = Controller(self, hostname=host, port=port or _free_port(host))
        self._controller.start()
        self.port = self._controller.port
        return self.port

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port
