"""Celery tasks: thin wrappers around services."""

from celery import shared_task


@shared_task(name="alerts.tasks.escalate_alerts")
def escalate_alerts() -> int:
    from alerts.services import alerts_escalate

    return alerts_escalate()
