"""The gateway's wire format: the bytes each message had before it was a Struct, and decode errors that
name the field."""

from __future__ import annotations

import re

import msgspec
import pytest

from zsched.models import ms_to_datetime
from zsched.web.gateway import messages
from zsched.web.gateway.messages import Ack, Acked, Error, Ping, Pong, Ready


def test_server_messages_keep_their_bytes() -> None:
    at = ms_to_datetime(1_767_000_000_123)
    assert messages.encode(Ready("alice", 2, "1767000000123-0")) == (
        '{"type":"ready","user":"alice","replayed":2,"stream_id":"1767000000123-0"}'
    )
    assert messages.encode(Ready("alice", 0, None)) == '{"type":"ready","user":"alice","replayed":0,"stream_id":null}'
    assert messages.encode(Acked(7, at)) == '{"type":"acked","id":7,"delivered_at":"2025-12-29T09:20:00.123000Z"}'
    assert messages.encode(Error("no")) == '{"type":"error","error":"no"}'
    assert (messages.PING, messages.PONG) == ('{"type":"ping"}', '{"type":"pong"}')


def test_client_messages_decode_by_type() -> None:
    assert messages.decode('{"type":"ack","id":7}') == Ack(id=7)
    assert messages.decode('{"type":"ack","id":7,"ids":[8,9]}').all_ids() == [7, 8, 9]
    assert messages.decode('{"type":"ping"}') == Ping()
    assert messages.decode('{"type":"pong","extra":1}') == Pong()  # unknown fields are ignored


@pytest.mark.parametrize(
    ("text", "where"), [('{"type":"nope"}', "$.type"), ('{"type":"ack","ids":[1,"2"]}', "$.ids[1]"), ("{}", "type")]
)
def test_decode_errors_name_the_field(text: str, where: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=re.escape(where)):
        messages.decode(text)
