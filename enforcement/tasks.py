"""Celery tasks: thin wrappers around services."""

from celery import shared_task


@shared_task(name="enforcement.tasks.score_credit", autoretry_for=(Exception,), retry_backoff=60, max_retries=3)
def score_credit() -> dict:
    from enforcement import services

    return services.credit_recompute()
