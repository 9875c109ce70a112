"""The OpenAPI document is generated from the msgspec types the API decodes and serves, so it cannot drift:
request bodies, parameters and responses are ``schema_components`` of the Structs in ``zsched.web.bodies``,
whose ``Meta`` carry the engine's limits; bodies are decoded without those constraints, so the engine's checks
still answer (the HTTP answers are pinned by tests/integration/test_http_errors.py)."""

from __future__ import annotations

from typing import Any

import msgspec

from zsched.engine import validation
from zsched.models import Notification
from zsched.web import bodies, openapi, views

REF = "#/components/schemas/"


def _components(*types: Any) -> dict[str, Any]:
    return msgspec.json.schema_components(types, ref_template=REF + "{name}")[1]


def test_bodies_and_responses_are_the_structs_schemas() -> None:
    doc = openapi.document(("websocket",))
    schemas = doc["components"]["schemas"]
    shapes: tuple[type[msgspec.Struct], ...] = (
        bodies.RescheduleBody,
        views.Scheduled,
        views.ScheduleStatus,
        views.NotificationView,
        views.Cancelled,
        views.NotificationPage,
        views.StatsView,
        views.Health,
        views.ErrorBody,
    )
    for name, schema in _components(*shapes).items():
        assert schemas[name] == schema, name
    generated = _components(bodies.ScheduleBody)["ScheduleBody"]
    generated["properties"]["channels"]["anyOf"][0]["items"] = {"enum": ["websocket"]}  # the server's channels
    generated["anyOf"] = bodies.SCHEDULE_TIMING  # scheduled_at, or deliver_at_local with local_date
    assert schemas["ScheduleBody"] == generated
    post = doc["paths"]["/api/notifications/schedule/"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {"$ref": REF + "ScheduleBody"}
    assert post["responses"]["201"]["content"]["application/json"]["schema"] == {"$ref": REF + "Scheduled"}


def test_the_rules_are_the_engines_constants() -> None:
    body = openapi.document()["components"]["schemas"]["ScheduleBody"]["properties"]
    assert body["recipients"]["maxItems"] == validation.MAX_RECIPIENTS
    assert body["title"]["maxLength"] == validation.MAX_TITLE and body["message"]["maxLength"] == validation.MAX_MESSAGE
    assert body["type"]["maxLength"] == validation.MAX_TYPE
    (text, *_) = body["recipients"]["items"]["anyOf"]
    assert text["maxLength"] == validation.MAX_RECIPIENT_LEN and text["format"] == "recipient-id"
    listing = {p["name"]: p for p in openapi.document()["paths"]["/api/notifications/"]["get"]["parameters"]}
    assert listing["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": bodies.MAX_LIMIT, "default": 50}
    assert listing["cursor"]["schema"]["maximum"] == validation.MAX_ID
    (key,) = openapi.document()["paths"]["/api/notifications/schedule/"]["post"]["parameters"]
    assert key["name"] == "Idempotency-Key" and key["schema"]["maxLength"] == bodies.MAX_IDEMPOTENCY_HEADER


def test_bodies_decode_without_their_constraints_into_their_struct() -> None:
    """The Meta constraints document; the engine checks, with its own messages (so a 201 or 422 is unchanged)."""
    raw = b'{"recipients": [], "title": "", "message": "m", "scheduled_at": "2030-01-01T00:00:00", "zz": 1}'
    body = bodies.schedule_decoder.decode(raw)
    assert isinstance(body, bodies.ScheduleBody) and body.recipients == [] and body.title == ""
    assert body.scheduled_at.tzinfo is None  # naive: refused later by the engine with its own message
    assert body.type == "system" and body.priority == "normal" and body.data is None and body.channels is None
    assert isinstance(
        bodies.reschedule_decoder.decode(b'{"scheduled_at": "2030-01-01T00:00:00Z"}'), bodies.RescheduleBody
    )


def test_every_notification_field_is_shown_or_deliberately_not() -> None:
    """A field added to Notification must be added to NotificationView (and so to the document), or listed."""
    for field in Notification.__struct_fields__:
        assert field in views.NotificationView.__struct_fields__ or field in views.UNVIEWED, field


def test_every_documented_response_schema_resolves() -> None:
    doc = openapi.document()
    schemas = doc["components"]["schemas"]
    for path, methods in doc["paths"].items():
        for op in methods.values():
            for response in op["responses"].values():
                for content in response.get("content", {}).values():
                    ref = content["schema"].get("$ref")
                    assert ref is None or ref.removeprefix(REF) in schemas, (path, ref)
