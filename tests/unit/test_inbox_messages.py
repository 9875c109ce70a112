"""The messages that say an inbox replay has a gap: ``truncated`` before the backlog, and ``ready`` after it."""

from __future__ import annotations

from zsched.web.gateway import messages
from zsched.web.gateway.messages import Ready, Truncated


def test_truncated_names_the_oldest_id_left_and_the_clients_position() -> None:
    assert messages.encode(Truncated("1767000000123-0", after="1766000000000-4")) == (
        '{"type":"truncated","oldest_stream_id":"1767000000123-0","after":"1766000000000-4"}'
    )
    assert messages.encode(Truncated(None)) == '{"type":"truncated","oldest_stream_id":null,"after":null}'


def test_ready_says_truncated_only_when_it_was() -> None:
    assert messages.encode(Ready("alice", 2, "1767000000124-0", True, "1767000000123-0")) == (
        '{"type":"ready","user":"alice","replayed":2,"stream_id":"1767000000124-0",'
        '"truncated":true,"oldest_stream_id":"1767000000123-0"}'
    )
    assert "truncated" not in messages.encode(Ready("alice", 0, None))
