"""A socket's sends: written at once when nothing is queued or in hand before them, else queued in order."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from zsched.web.gateway.socket import Socket, TokenBucket


def _socket(written: list[str], *, accept: bool = True) -> Socket:
    client = Socket(Any, "ada", "ch", 4, digest="d", budget=TokenBucket(1.0, 1))  # type: ignore[arg-type]

    def direct(text: str) -> bool:
        if accept:
            written.append(text)
        return accept

    client.direct = direct
    return client


def test_with_nothing_before_it_a_message_is_written_at_once() -> None:
    written: list[str] = []
    client = _socket(written)
    client.push("a")
    client.push("b")
    assert written == ["a", "b"] and client.outbox == []


def test_a_message_in_the_handlers_hand_makes_the_next_ones_queue_behind_it() -> None:
    written: list[str] = []
    client = _socket(written)
    client.busy = True  # the handler took one and waits for the transport to take it
    client.push("b")
    client.busy = False
    client.push("c")  # "b" is still queued: "c" goes behind it, not past it
    assert written == [] and client.outbox == ["b", "c"]


def test_a_refused_direct_write_queues_and_the_queue_stays_bounded() -> None:
    written: list[str] = []
    client = _socket(written, accept=False)  # the transport's buffer is full, or the client's close arrived
    for text in "abcd":
        client.push(text)
    assert client.outbox == list("abcd") and not client.closing
    client.push("e")
    assert client.closing and client.close_code == 1013


def test_a_closing_socket_writes_nothing_more() -> None:
    written: list[str] = []
    client = _socket(written)
    client.stop()
    client.push("late")
    assert written == []


def test_the_handler_sends_what_was_queued_in_order() -> None:
    async def scenario() -> list[str]:
        written: list[str] = []
        client = _socket(written)
        client.busy = True
        for text in "xyz":
            client.push(text)
        client.busy = False
        return [await client.next_message() for _ in range(3)]  # type: ignore[misc]

    assert asyncio.run(scenario()) == ["x", "y", "z"]


def test_attach_takes_the_protocols_synchronous_paths_or_none() -> None:
    client = _socket([])
    protocol = SimpleNamespace(send_text_now=lambda text: True, release_writer=lambda: None)
    client.attach(SimpleNamespace(__self__=protocol))
    assert client.direct is protocol.send_text_now and client.release is protocol.release_writer
    client.attach(lambda message: None)  # a middleware's wrapper, or another protocol
    assert client.direct is None and client.release is None


def test_closing_releases_a_sender_waiting_for_room_once() -> None:
    released: list[int] = []
    client = _socket([])
    client.release = lambda: released.append(1)
    client.stop()  # not busy: nothing to release
    assert released == []
    client = _socket([])
    client.release = lambda: released.append(1)
    client.busy = True
    client.close(1013, "send queue full")
    client.stop()
    assert released == [1]


def test_a_direct_write_that_raises_falls_back_to_the_handler_for_good(caplog: pytest.LogCaptureFixture) -> None:
    client = _socket([])
    calls: list[str] = []

    def broken(text: str) -> bool:
        calls.append(text)
        raise AttributeError("an attribute this uvicorn does not set")

    client.direct = broken
    client.push("a")
    client.push("b")
    assert client.outbox == ["a", "b"] and calls == ["a"], "queued, in order; the direct path tried once"
    assert "direct write failed" in caplog.text
