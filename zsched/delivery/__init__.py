"""Delivery: the worker (claim -> deliver -> ack or retry), the router, and one module per channel.

websocket   the inbox stream + PUBLISH that the WebSocket gateway forwards (``InboxDelivery``)
webhook     an HTTP POST of the notification JSON, signed with HMAC-SHA256 (``WebhookChannel``)
email       a text email over SMTP to the recipient's contact address (``EmailChannel``)
<any name>  a Python callable (sync or async) or ``Delivery`` registered with ``Router.register``
"""

from ..errors import (
    DeliveryError,
    EmailError,
    EmailRejectedError,
    PermanentDeliveryError,
    UnknownChannelError,
    WebhookError,
)
from .callables import CallableDelivery
from .channel import Delivery, Outcome
from .email import EmailChannel
from .inbox import InboxDelivery
from .router import Router
from .webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookChannel, sign, verify_signature
from .wiring import ChannelContext, build_router, build_worker, enabled_channels, register_channel, unregister_channel
from .worker import Worker

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "CallableDelivery",
    "ChannelContext",
    "Delivery",
    "DeliveryError",
    "EmailChannel",
    "EmailError",
    "EmailRejectedError",
    "InboxDelivery",
    "Outcome",
    "PermanentDeliveryError",
    "Router",
    "UnknownChannelError",
    "WebhookChannel",
    "WebhookError",
    "Worker",
    "build_router",
    "build_worker",
    "enabled_channels",
    "register_channel",
    "sign",
    "unregister_channel",
    "verify_signature",
]
