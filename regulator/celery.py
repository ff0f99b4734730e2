"""Celery app; the beat schedule is in settings (CELERY_BEAT_SCHEDULE)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "regulator.settings")

app = Celery("regulator")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
