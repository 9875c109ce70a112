"""An appointment, and the id of the reminder zsched holds for it."""

from django.db import models


class Appointment(models.Model):
    who = models.CharField(max_length=128)
    what = models.CharField(max_length=200)
    starts_at = models.DateTimeField()
    reminder_id = models.BigIntegerField(null=True, blank=True)  # set once the reminder is scheduled
