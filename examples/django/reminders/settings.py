"""Settings of the example project: one app, sqlite, and where zsched keeps its schedules."""

from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "example-only-not-secret"  # an example; read yours from the environment
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["appointments"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware", "django.middleware.csrf.CsrfViewMiddleware"]
ROOT_URLCONF = "reminders.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

# zsched (zsched.contrib.django): each is optional; unset, zsched's ZSCHED_* environment decides, and with
# no URL at all the embedded server in ./.zsched is used. `zsched serve` (the worker) must use the same.
# ZSCHED_URL = "redis://127.0.0.1:6379/0"
ZSCHED_PREFIX = "reminders"
ZSCHED_PARTITIONS = 1

REMIND_BEFORE = timedelta(hours=1)  # the app's own setting: how long before an appointment to remind
