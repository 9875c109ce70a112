"""The lean WebSocket protocol's two small parts (its event inbox and its backpressure flag), and that
``zsched serve`` runs it, falling back to uvicorn's own choice when it cannot be imported."""

from __future__ import annotations

import asyncio
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from zsched.cli import run
from zsched.web.gateway.protocol import LeanWebSocketProtocol, _Flag, _Inbox


def test_inbox_hands_events_over_in_order_and_wakes_a_waiting_reader() -> None:
    async def scenario() -> list[Any]:
        inbox = _Inbox()
        reader = asyncio.create_task(inbox.get())
        await asyncio.sleep(0)
        assert not reader.done() and inbox.empty()
        inbox.put_nowait({"type": "websocket.connect"})
        inbox.put_nowait({"type": "websocket.receive", "text": "a"})
        first = await reader
        assert inbox.qsize() == 1 and not inbox.empty()
        return [first, await inbox.get()]

    assert asyncio.run(scenario()) == [{"type": "websocket.connect"}, {"type": "websocket.receive", "text": "a"}]


def test_inbox_reader_cancelled_loses_no_event() -> None:
    async def scenario() -> Any:
        inbox = _Inbox()
        cancelled = asyncio.create_task(inbox.get())
        other = asyncio.create_task(inbox.get())
        await asyncio.sleep(0)
        cancelled.cancel()
        inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await asyncio.gather(cancelled, return_exceptions=True)
        return await asyncio.wait_for(other, 1)

    assert asyncio.run(scenario()) == {"type": "websocket.disconnect", "code": 1000}


def test_flag_holds_senders_while_cleared_and_one_cancelled_sender_leaves_the_others_waiting() -> None:
    async def scenario() -> None:
        flag = _Flag()
        flag.set()
        assert await flag.wait() and flag.is_set()
        flag.clear()  # the transport's buffer is full (pause_writing)
        first, second = asyncio.create_task(flag.wait()), asyncio.create_task(flag.wait())
        await asyncio.sleep(0.01)
        assert not first.done() and not second.done()
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        await asyncio.sleep(0)
        assert not second.done()
        flag.set()  # resume_writing
        assert await asyncio.wait_for(second, 1)

    asyncio.run(scenario())


def test_serve_runs_the_lean_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: seen.update(options))
    monkeypatch.setattr(run.signal, "signal", lambda *_: None)
    app = SimpleNamespace(state=SimpleNamespace(liveness=SimpleNamespace(fatal=None)))
    assert run.serve_app(app, "127.0.0.1", 0) == 0  # type: ignore[arg-type]
    assert seen["ws"] is LeanWebSocketProtocol
    assert run.websocket_protocol() is LeanWebSocketProtocol


def test_without_the_lean_protocol_serve_leaves_the_choice_to_uvicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zsched.web.gateway.protocol", None)  # importing it raises ImportError
    assert run.websocket_protocol() == "auto"
