"""Celery tasks of the devices app: thin wrappers around services."""

from celery import shared_task

from devices.services import prune_readings as prune_readings_service


@shared_task(name="devices.tasks.prune_readings")
def prune_readings() -> dict:
    return prune_readings_service()
