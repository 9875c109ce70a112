"""A local SMTP server for tests (aiosmtpd on 127.0.0.1): records each message it accepts, with the connection it
came on, and answers RCPT and DATA from a script per address."""

from __future__ import annotations

import asyncio
import socket
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class MailServer:
    """Accepts mail on 127.0.0.1 at a free port. ``rcpt[address]`` and ``data[address]`` are replies to give, in
    order, before accepting (``["451 4.3.0 busy"]``: refuse once, then accept); ``slow_s`` delays each DATA reply.
    With ``login=(user, password)`` the server offers AUTH (over plain text: a test server only) and accepts only
    that pair; ``logins`` counts the successful ones."""

    def __init__(self, *, login: tuple[str, str] | None = None, slow_s: float = 0.0) -> None:
        self.rcpt: dict[str, list[str]] = {}
        self.data: dict[str, list[str]] = {}
        self.slow_s = slow_s
        self.messages: list[EmailMessage] = []
        self.peers: list[tuple[str, int]] = []  # each accepted message's client address: one per connection
        self.refused: list[tuple[str, str]] = []  # (address, reply) for each refusal given
        self.login = login
        self.logins = 0
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        options: dict[str, Any] = {}
        if login is not None:
            options = {"authenticator": self._authenticate, "auth_require_tls": False}
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, **options)

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == self.login
        self.logins += ok
        return AuthResult(success=ok, handled=False)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        script = self.rcpt.get(address)
        if script:
            reply = script.pop(0)
            self.refused.append((address, reply))
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.slow_s:
            await asyncio.sleep(self.slow_s)
        script = self.data.get(envelope.rcpt_tos[0])
        if script:
            reply = script.pop(0)
            self.refused.append((envelope.rcpt_tos[0], reply))
            return reply
        raw = envelope.original_content or envelope.content
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.peers.append(tuple(session.peer))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        """The messages accepted for ``address``."""
        return [m for m in self.messages if m["To"] == address]

    def __enter__(self) -> MailServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
