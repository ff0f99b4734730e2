"""Celery task: on the 1st of the month, archive last month's report of every county.

Listed in CELERY_IMPORTS (settings) because autodiscovery only imports ``<app>.tasks``.
"""

from celery import shared_task


@shared_task(name="enterprises.reports.tasks.archive_monthly_reports", autoretry_for=(OSError,), max_retries=2)
def archive_monthly_reports() -> dict:
    from enterprises.reports.archive import archive_monthly_reports as run

    paths = run()
    return {"files": len(paths)}
