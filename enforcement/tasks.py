"""Celery tasks: thin wrappers around services."""

from celery import shared_task


@shared_task(name="enforcement.tasks.score_credit", autoretry_for=(Exception,), retry_backoff=60, max_retries=3)
def score_credit() -> dict:
    from enforcement import services

    return services.credit_recompute()


@shared_task(name="enforcement.tasks.notify_draw", autoretry_for=(Exception,), retry_backoff=30, max_retries=5)
def notify_draw(draw_id: int) -> int:
    from enforcement import services
    from enforcement.models import Draw

    draw = Draw.objects.select_related("plan").filter(pk=draw_id).first()
    return services.draw_notify(draw=draw) if draw else 0
