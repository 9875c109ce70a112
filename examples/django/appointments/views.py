"""Create an appointment and schedule its reminder in one transaction; show the reminder's status.

The reminder is scheduled only if the appointment is committed: ``schedule_on_commit`` waits for the commit,
so a rollback (a failed save, an exception later in the view) leaves no orphan reminder behind.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from appointments.models import Appointment
from zsched import ScheduleResult
from zsched.contrib.django import get_scheduler, schedule_on_commit


@require_POST
def create(request: HttpRequest) -> JsonResponse:
    """POST who, what, starts_at (ISO 8601 with a timezone): 201 with the appointment's id."""
    try:
        starts_at = datetime.fromisoformat(request.POST["starts_at"])
        who, what = request.POST["who"], request.POST["what"]
    except (KeyError, ValueError) as exc:
        return JsonResponse({"error": f"who, what and starts_at are required: {exc}"}, status=400)
    remind_at = starts_at - settings.REMIND_BEFORE
    soon = remind_at <= timezone.now() + timedelta(seconds=1)  # (nearly) past already: remind at once
    with transaction.atomic():
        appointment = Appointment.objects.create(who=who, what=what, starts_at=starts_at)

        def remember(result: ScheduleResult) -> None:  # after the commit: keep the reminder's id
            Appointment.objects.filter(pk=appointment.pk).update(reminder_id=result.notification_ids[0])

        schedule_on_commit(
            [who],
            f"Reminder: {what}",
            f"{what} starts at {starts_at.isoformat()}",
            at=None if soon else remind_at,
            delay=0 if soon else None,
            type="reminder",
            data={"appointment": appointment.pk},
            idempotency_key=f"appointment-{appointment.pk}",
            on_scheduled=remember,
        )
    return JsonResponse({"id": appointment.pk}, status=201)


@require_GET
def detail(request: HttpRequest, pk: int) -> JsonResponse:
    """The appointment and its reminder's status (pending, sent, ...), read from zsched."""
    appointment = get_object_or_404(Appointment, pk=pk)
    status = None
    if appointment.reminder_id is not None:
        status = get_scheduler().status(appointment.reminder_id).scheduled_status
    return JsonResponse(
        {
            "id": appointment.pk,
            "who": appointment.who,
            "what": appointment.what,
            "starts_at": appointment.starts_at.isoformat(),
            "reminder_id": appointment.reminder_id,
            "reminder_status": status,
        }
    )
