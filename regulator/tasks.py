"""Celery tasks of the shared core: thin wrappers around services."""

from celery import shared_task


@shared_task(name="regulator.tasks.anchor_audit")
def anchor_audit() -> str | None:
    from regulator.audit_anchors import write_anchor

    path = write_anchor()
    return str(path) if path else None
