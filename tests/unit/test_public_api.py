"""The public surface: what ``import zsched`` offers, and the 0.1 import paths that still work (with a warning)."""

from __future__ import annotations

import importlib
import sys

import pytest

import zsched
from zsched._moved import MOVED

PUBLIC = [
    "AsyncScheduler",
    "BatchChange",
    "BatchSummary",
    "CallableDelivery",
    "ConfigError",
    "Contact",
    "Core",
    "Delivery",
    "DeliveryError",
    "EmailChannel",
    "EmailError",
    "EmailRejectedError",
    "EmbeddedServer",
    "Erasure",
    "IdempotencyConflictError",
    "Inbox",
    "InboxDelivery",
    "InboxItem",
    "Keyspace",
    "NotFoundError",
    "NotPendingError",
    "Notification",
    "Ownership",
    "Page",
    "Pauses",
    "PastScheduleError",
    "PermanentDeliveryError",
    "RecurringNotFoundError",
    "RecurringPage",
    "RecurringSchedule",
    "ReadMarks",
    "Rendered",
    "ReshardProgress",
    "Retention",
    "RetryPolicy",
    "Router",
    "ScheduleResult",
    "Scheduler",
    "Settings",
    "SmsChannel",
    "SmsError",
    "SmsRejectedError",
    "Stats",
    "Template",
    "TemplateInUseError",
    "TemplateNotFoundError",
    "TemplateRef",
    "TemplateRenderError",
    "TemplateVariant",
    "TwilioMessages",
    "UnavailableError",
    "UnknownChannelError",
    "ValidationError",
    "WebhookChannel",
    "WebhookError",
    "Worker",
    "ZschedError",
]


def test_all_is_pinned() -> None:
    assert sorted(zsched.__all__) == sorted(PUBLIC)
    for name in zsched.__all__:
        assert getattr(zsched, name) is not None


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_path_still_imports_with_a_deprecation_warning(old: str) -> None:
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {MOVED[old]}"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(MOVED[old])


def test_old_names_resolve_to_the_same_objects() -> None:
    sys.modules.pop("zsched.core", None)
    sys.modules.pop("zsched.worker", None)
    with pytest.warns(DeprecationWarning):
        from zsched.core import Core, Script
        from zsched.worker import Worker
    assert Core is zsched.Core and Worker is zsched.Worker
    assert Script is importlib.import_module("zsched.engine").Script
