"""Delivery: the worker (claim -> deliver -> ack or retry), the partitions it owns (``Ownership``), the router,
and one module per channel.

websocket   the inbox stream + PUBLISH that the WebSocket gateway forwards (``InboxDelivery``)
webhook     an HTTP POST of the notification JSON, signed with HMAC-SHA256 (``WebhookChannel``)
email       a text email over SMTP to the recipient's contact address (``EmailChannel``)
sms         a text message to the recipient's phone number through an ``SmsProvider`` (``SmsChannel``)
<any name>  a Python callable (sync or async) or ``Delivery`` registered with ``Router.register``
"""

from ..errors import (
    DeliveryError,
    EmailError,
    EmailRejectedError,
    PermanentDeliveryError,
    SmsError,
    SmsRejectedError,
    UnknownChannelError,
    WebhookError,
)
from .callables import CallableDelivery
from .channel import Delivery, Outcome
from .email import EmailChannel
from .inbox import InboxDelivery
from .ownership import Ownership
from .router import Router
from .sms import SmsChannel, SmsProvider, TwilioMessages
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
    "Ownership",
    "PermanentDeliveryError",
    "Router",
    "SmsChannel",
    "SmsError",
    "SmsProvider",
    "SmsRejectedError",
    "TwilioMessages",
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
