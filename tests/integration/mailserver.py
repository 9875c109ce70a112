"""A local SMTP server for tests (aiosmtpd on 127.0.0.1): records each message it accepts, with the connection it
came on, and answers RCPT and DATA from a script per address."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class MailServer:
    """Accepts mail on 127.0.0.1 at a free port. ``rcpt[address]`` and ``data[address]`` are replies to give, in
    order, before accepting (``["451 4.3.0 busy"]``: refuse once, then accept); ``slow_s`` delays each DATA reply.
    With ``login=(user, password)`` the server offers AUTH (over plain text: a test server only) and accepts only
    that pair; ``logins`` counts the successful ones. With ``tls`` (a certificate and its key, see ``self_signed``)
    it offers STARTTLS and refuses mail before it."""

    def __init__(
        self, *, login: tuple[str, str] | None = None, slow_s: float = 0.0, tls: tuple[Path, Path] | None = None
    ) -> None:
        self.rcpt: dict[str, list[str]] = {}
        self.data: dict[str, list[str]] = {}
        self.slow_s = slow_s
        self.messages: list[EmailMessage] = []
        self.peers: list[tuple[str, int]] = []  # each accepted message's client address: one per connection
        self.encrypted: list[bool] = []  # whether each accepted message came over TLS
        self.data_started = 0  # DATA commands received, answered or not
        self.refused: list[tuple[str, str]] = []  # (address, reply) for each refusal given
        self.login = login
        self.logins = 0
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        options: dict[str, Any] = {}
        if login is not None:
            options = {"authenticator": self._authenticate, "auth_require_tls": False}
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
            options |= {"tls_context": context, "require_starttls": True}
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
        self.data_started += 1
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
        self.encrypted.append(session.ssl is not None)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        """The messages accepted for ``address``."""
        return [m for m in self.messages if m["To"] == address]

    @staticmethod
    def self_signed(folder: Path) -> tuple[Path, Path]:
        """A certificate for 127.0.0.1 and its key, made by the openssl command; the certificate is its own CA."""
        cert, key = folder / "cert.pem", folder / "key.pem"
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
                *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
            ],
            check=True,
            capture_output=True,
        )
        return cert, key

    def __enter__(self) -> MailServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
