"""Celery tasks of the registry: thin wrappers around the risk services."""

from celery import shared_task


@shared_task(name="enterprises.tasks.train_risk_model", autoretry_for=(Exception,), retry_backoff=300, max_retries=2)
def train_risk_model() -> dict:
    from enterprises.risk.training import train_risk_model as train

    outcome = train()
    return {"status": outcome.status, "message": outcome.message, "version": getattr(outcome.model, "version", None)}


@shared_task(name="enterprises.tasks.grade_risk", autoretry_for=(Exception,), retry_backoff=120, max_retries=3)
def grade_risk() -> dict:
    from enterprises.risk.grading import grade_enterprises

    summary = grade_enterprises()
    return {
        "method": summary.method,
        "model_version": summary.model_version,
        "graded": summary.graded,
        "by_grade": summary.by_grade,
    }
