"""A real SMTP server in the test process (aiosmtpd), keeping what it receives."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller

from tests.integration.live import free_port

TOKEN = re.compile(r"^ {4}(\S+)\r?$", re.MULTILINE)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def to(self, address: str, *, wait_seconds: float = 5.0) -> list[Message]:
        deadline = time.monotonic() + wait_seconds
        while True:
            found = [m for m in self.messages if m["To"] == address]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.02)

    def token_sent_to(self, address: str) -> str:
        """The token in the newest message to `address` (the mails indent it on its own line)."""
        messages = self.to(address)
        assert messages, f"no mail to {address}"
        body = messages[-1].get_payload(decode=True)
        assert isinstance(body, bytes)
        match = TOKEN.search(body.decode())
        assert match, body
        return match.group(1)


@contextmanager
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()
