"""Celery tasks of the hazards app: thin wrappers around services."""

from celery import shared_task


@shared_task(name="hazards.tasks.escalate_overdue")
def escalate_overdue() -> dict:
    from hazards.services import escalate_overdue as run

    return run()
