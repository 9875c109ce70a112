"""The email channel: each notification as a plain-text email over SMTP (aiosmtplib), to the address in the
recipient's contact data (``Scheduler.set_contact``).

A batch is sent over one SMTP connection: its addresses are read in one round trip, the connection is opened
(STARTTLS and login when configured) once, every message goes through it in turn, and it is closed at the end.
A connection lost mid-batch (a timeout, a drop) is opened again for the next message, once: after a second loss
the rest of the batch is left to its retry, so a server that hangs costs a batch two timeouts, not one each.

What a failure means:

- the server could not be reached, did not answer within ``timeout_s``, dropped the connection, or refused the
  session (greeting, EHLO, STARTTLS, login: a configuration or server problem, not this message's): ``EmailError``,
  retried with the usual backoff;
- the server answered a 4xx to the message (MAIL, RCPT, DATA): ``EmailError``, retried;
- it answered a 5xx to the message, or the recipient has no email address: ``EmailRejectedError``, a
  ``PermanentDeliveryError``: the notification fails at once, with the reply code in ``last_error``; except 530
  (STARTTLS or a login needed first), which says the session is misconfigured, not the message: retried.

The first line of an error (what the creator sees) names the server and the reply code; what the server said
follows on the next line, stored as ``last_error_detail``, which only admins are shown: it often quotes the
address, which is the recipient's personal data.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import aiosmtplib

from ..engine import contacts
from ..engine.keys import Keyspace
from ..errors import ConfigError, EmailError, EmailRejectedError, FieldError
from ..models import Notification
from .addresses import read_contacts
from .channel import Outcome

LOST_CONNECTIONS = 2
"""A batch stops after losing this many connections (timeouts, drops) and leaves the rest to its retry."""


class EmailChannel:
    """Sends each notification as a text email (subject: its title; body: title and message) from
    ``from_address``, over one SMTP connection per batch."""

    def __init__(
        self,
        connection: Any,
        keyspace: Keyspace,
        *,
        host: str,
        from_address: str,
        port: int = 587,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        timeout_s: float = 10.0,
        local_hostname: str | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        if not host:
            raise ConfigError("the email channel needs an SMTP host (ZSCHED_SMTP_HOST); got an empty one", "smtp_host")
        try:
            contacts.email(from_address)
        except FieldError as exc:
            raise ConfigError(f"ZSCHED_SMTP_FROM: {exc}", "smtp_from") from None
        if (username is None) != (password is None):
            raise ConfigError(
                "ZSCHED_SMTP_USERNAME and ZSCHED_SMTP_PASSWORD go together: set both to log in, or neither",
                "smtp_username",
            )
        if timeout_s <= 0:
            raise ConfigError(f"ZSCHED_SMTP_TIMEOUT_S must be positive; got {timeout_s}", "smtp_timeout_s")
        self.redis = connection
        self.keys = keyspace
        self.host, self.port = host, port
        self.server = f"{host}:{port}"
        self.from_address = from_address
        self.domain = from_address.rpartition("@")[2]
        self.username, self.password = username, password
        self.starttls = starttls
        self.timeout_s = timeout_s
        self.local_hostname = local_hostname
        self.tls_context = tls_context  # None: the system's trusted CAs, and the host name checked

    async def deliver(self, batch: Sequence[Notification]) -> list[Outcome]:
        """Send the batch over one connection; one outcome per notification, in order."""
        outcomes: list[Outcome] = [None] * len(batch)
        found = await read_contacts(self.redis, self.keys, [n.recipient for n in batch])
        todo: list[tuple[int, Notification, str]] = []
        for position, n in enumerate(batch):
            address = found[n.recipient].email
            if address is None:
                outcomes[position] = EmailRejectedError(
                    f"recipient {n.recipient} has no email address in their contact data; set one "
                    f"(zsched contact set {n.recipient} --email ...) and retry it from the dead letters"
                )
            else:
                todo.append((position, n, address))
        sent_at = datetime.now(UTC)
        smtp: aiosmtplib.SMTP | None = None
        lost = 0  # connections lost mid-batch: the second ends the batch (a hung server costs two timeouts)
        try:
            for done, (position, n, address) in enumerate(todo):
                if smtp is None:
                    try:
                        smtp = await self._connect()
                    except EmailError as exc:  # nothing more can go out in this batch: retry the rest later
                        for rest, _, _ in todo[done:]:
                            outcomes[rest] = exc
                        break
                try:
                    await self._send(smtp, self.message(n, address, sent_at), address)
                except Exception as exc:  # this message's outcome alone: the ones sent before it stay sent
                    outcomes[position] = exc
                    if not smtp.is_connected:
                        smtp, lost = None, lost + 1  # the next message opens a new connection ...
                        if lost == LOST_CONNECTIONS:  # ... unless this server keeps losing them: retry the rest
                            for rest, _, _ in todo[done + 1 :]:
                                outcomes[rest] = EmailError(
                                    f"SMTP server {self.server} lost {lost} connections in one batch; retrying"
                                )
                            break
        finally:
            if smtp is not None:
                await self._quit(smtp)
        return outcomes

    def message(self, n: Notification, address: str, sent_at: datetime) -> EmailMessage:
        """The email for ``n``: a text part (the title, a blank line, the message), and beside it the HTML part
        when its template has one (multipart/alternative). Its Message-ID is the same on every attempt, so a
        receiver can drop a duplicate delivery."""
        msg = EmailMessage()
        msg["From"] = self.from_address
        msg["To"] = address
        msg["Subject"] = " ".join(n.title.split())  # a header is one line
        msg["Date"] = format_datetime(sent_at)
        msg["Message-ID"] = f"<zsched.{n.id}@{self.domain}>"
        msg["X-Zsched-Id"] = str(n.id)
        msg.set_content(f"{n.title}\n\n{n.message}\n")
        if n.html is not None:
            msg.add_alternative(n.html, subtype="html")
        return msg

    async def _connect(self) -> aiosmtplib.SMTP:
        """An open, greeted (and, as configured, STARTTLS-upgraded and logged-in) connection; EmailError if not."""
        if self.local_hostname is None:  # the name EHLO gives, looked up once (aiosmtplib would on every connect)
            self.local_hostname = await asyncio.to_thread(socket.getfqdn)
        smtp = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            start_tls=self.starttls,
            timeout=self.timeout_s,
            local_hostname=self.local_hostname,
            tls_context=self.tls_context,
        )
        try:
            async with asyncio.timeout(self.timeout_s):
                await smtp.connect()
        except (TimeoutError, aiosmtplib.SMTPTimeoutError) as exc:
            smtp.close()
            raise EmailError(f"SMTP server {self.server} did not answer within {self.timeout_s} s") from exc
        except aiosmtplib.SMTPResponseException as exc:  # greeting, EHLO, STARTTLS or AUTH refused
            smtp.close()
            raise EmailError(
                f"SMTP server {self.server} refused the session with {exc.code} ({type(exc).__name__}); check the "
                f"ZSCHED_SMTP_* settings\nreply: {_one_line(exc.message)}"
            ) from exc
        except (aiosmtplib.SMTPConnectError, OSError) as exc:  # refused, unreachable, TLS failed, dropped
            smtp.close()
            raise EmailError(
                f"SMTP server {self.server} could not be reached ({type(exc).__name__})\n{_one_line(str(exc))}"
            ) from exc
        except aiosmtplib.SMTPException as exc:  # e.g. no STARTTLS, or no login mechanism zsched speaks
            smtp.close()
            raise EmailError(
                f"SMTP server {self.server} cannot be used as configured: {_one_line(str(exc), 120).rstrip('.')}; "
                "check the "
                "ZSCHED_SMTP_* settings"
            ) from exc
        return smtp

    async def _send(self, smtp: aiosmtplib.SMTP, msg: EmailMessage, address: str) -> None:
        """Send one message; EmailError when it may go later, EmailRejectedError when it never will."""
        try:
            async with asyncio.timeout(self.timeout_s):
                await smtp.send_message(msg, sender=self.from_address, recipients=[address])
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients[0]
            raise self._refusal(refused.code, refused.message, "RCPT") from exc
        except aiosmtplib.SMTPResponseException as exc:
            stage = "MAIL" if isinstance(exc, aiosmtplib.SMTPSenderRefused) else "DATA"
            raise self._refusal(exc.code, exc.message, stage) from exc
        except (TimeoutError, aiosmtplib.SMTPTimeoutError) as exc:
            smtp.close()  # a late reply would be read as the next command's
            raise EmailError(f"SMTP server {self.server} did not answer within {self.timeout_s} s") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            smtp.close()
            raise EmailError(
                f"SMTP server {self.server} dropped the connection ({type(exc).__name__})\n{_one_line(str(exc))}"
            ) from exc
        except ValueError as exc:  # an address aiosmtplib will not put on the wire (stored before validation)
            raise EmailRejectedError(f"the recipient's email address cannot be sent to: {exc}") from exc

    def _refusal(self, code: int, text: str, stage: str) -> EmailError | EmailRejectedError:
        """A reply refusing the message: 5xx is for good, anything else (4xx) is worth another try; but 530
        ("STARTTLS first", "authentication required") is about the session, not the message: it is retried, so
        mail waits while the settings are fixed instead of failing."""
        reply = f"\nreply: {_one_line(text)}"
        if code == 530:
            return EmailError(
                f"SMTP server {self.server} wants STARTTLS or a login before mail (530 at {stage}); check the "
                f"ZSCHED_SMTP_* settings{reply}"
            )
        if 500 <= code < 600:
            return EmailRejectedError(f"SMTP server {self.server} refused the message with {code} at {stage}{reply}")
        return EmailError(f"SMTP server {self.server} deferred the message with {code} at {stage}; retrying{reply}")

    async def _quit(self, smtp: aiosmtplib.SMTP) -> None:
        """Say QUIT politely if the connection is still up; close it in any case."""
        try:
            if smtp.is_connected:
                async with asyncio.timeout(self.timeout_s):
                    await smtp.quit()
        except (TimeoutError, aiosmtplib.SMTPException, OSError):
            pass
        finally:
            smtp.close()


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(text.split())[:limit]
