"""S8 email throughput: already-due notifications sent by one worker through the email channel to a local SMTP
server (aiosmtpd, in a child process so it does not take this process's CPU), plain and rendered from a template in
each recipient's locale; beside a raw baseline: as many messages sent by aiosmtplib over one connection, no Redis.

The worker runs here, in-process, as ``zsched worker`` runs it: claim a batch, read its addresses in one round trip,
send it over one SMTP connection, ack it."""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import time
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import msgspec
import redis.asyncio as aioredis

from zsched import AsyncScheduler
from zsched.delivery import EmailChannel, Router, Worker
from zsched.engine import Core
from zsched.engine.keys import Keyspace

from .common import MESSAGE, TITLE, Context, Figure, chunks, fill, recipients

FROM = "bench@zsched.example"
LOCALES = ("en", "fr", "pt-BR", "de")
TEMPLATE = {
    "en": {"title": "Your {{ plan }} plan renews", "message": "Hello {{ recipient }}, it renews on {{ day }}."},
    "fr": {"title": "Votre offre {{ plan }}", "message": "Bonjour {{ recipient }}, renouvelée le {{ day }}."},
    "pt-BR": {"title": "Seu plano {{ plan }}", "message": "Olá {{ recipient }}, renova em {{ day }}."},
}


def _sink(port: int, ready: Any, accepted: Any) -> None:
    """The SMTP server's process: accept every message, count it, keep nothing."""
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with accepted.get_lock():
                accepted.value += 1
            return "250 2.0.0 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    while True:
        time.sleep(3600)  # the parent terminates this process


class Sink:
    """A counting SMTP server on 127.0.0.1 in a child process."""

    def __enter__(self) -> Sink:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        spawn = multiprocessing.get_context("spawn")
        self.accepted = spawn.Value("q", 0)
        ready = spawn.Event()
        self.process = spawn.Process(target=_sink, args=(self.port, ready, self.accepted), daemon=True)
        self.process.start()
        if not ready.wait(30):
            raise RuntimeError("the SMTP sink did not start within 30 s")
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.join(10)


def set_addresses(ctx: Context, prefix: str, people: list[str]) -> None:
    """Every recipient's email address (and a locale, in turn), written straight into the contacts hash."""
    keys = Keyspace(prefix)
    r = ctx.redis()
    pipe = r.pipeline(transaction=False)
    for i, who in enumerate(people):
        contact = {"email": f"u{who}@bench.example", "locale": LOCALES[i % len(LOCALES)]}
        pipe.hset(keys.for_recipient(who).contacts, who, msgspec.json.encode(contact))
    pipe.execute()
    r.close()


async def _drain(ctx: Context, prefix: str, port: int, count: int) -> float:
    """One worker over the email channel until ``count`` are sent; emails per second."""
    connection = aioredis.Redis.from_url(ctx.url)
    scheduler = AsyncScheduler(connection, core=Core(Keyspace(prefix)))
    channel = EmailChannel(
        connection,
        scheduler.core.keys,
        host="127.0.0.1",
        port=port,
        from_address=FROM,
        starttls=False,  # a local plain-text server
        local_hostname="bench.localhost",  # no DNS lookup of this host's name (seconds where no resolver answers)
    )
    worker = Worker(scheduler, Router({"email": channel}, default=("email",)))
    started = time.perf_counter()
    running = asyncio.create_task(worker.run())
    deadline = started + max(30.0, count / 100)
    while worker.delivered < count and time.perf_counter() < deadline and not running.done():
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    worker.should_exit = True
    await running
    await scheduler.close()
    return worker.delivered / elapsed


async def _raw(port: int, count: int) -> float:
    """The baseline: ``count`` messages of the same size over one aiosmtplib connection, nothing else."""
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, local_hostname="bench.localhost")
    await smtp.connect()
    started = time.perf_counter()
    for i in range(count):
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = FROM, f"u{i}@bench.example", TITLE
        msg.set_content(f"{TITLE}\n\n{MESSAGE}\n")
        await smtp.send_message(msg)
    elapsed = time.perf_counter() - started
    await smtp.quit()
    return count / elapsed


def measure(ctx: Context, label: str = "S8") -> list[Figure]:
    """Emails per second with one worker, plain and templated, and the raw SMTP baseline."""
    count = ctx.size(1_000, 50)
    people = recipients(count)
    figures = []
    with Sink() as sink:
        base = asyncio.run(_raw(sink.port, count))
        for templated in (False, True):
            prefix = ctx.prefix("s8-tpl" if templated else "s8")
            set_addresses(ctx, prefix, people)
            zs = ctx.scheduler(prefix)
            with ctx.bar(f"{label} setup: {count:,} due", count) as bar:
                if templated:
                    zs.put_template("renewal", TEMPLATE)
                    for group in chunks(people, 1000):
                        zs.schedule_template(group, "renewal", {"plan": "Pro", "day": "1 March"}, delay=0)
                        bar.update(len(group))
                else:
                    fill(zs, chunks(people, 1000), delay_s=0, ops_per_round=20, bar=bar)
            zs.close()
            before = sink.accepted.value
            rate = asyncio.run(_drain(ctx, prefix, sink.port, count))
            arrived = sink.accepted.value - before
            ctx.drop(prefix)
            name = "emails/s, 1 worker" + (", rendered from a template per locale" if templated else "")
            figures.append(
                Figure(label, name, rate, "emails/s", baseline=base, note=f"{count:,} due; {arrived:,} arrived")
            )
    return figures
