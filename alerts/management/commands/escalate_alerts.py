"""Escalate overdue alerts one tier (enterprise -> park -> county -> city); also unshelves expired
shelves, applies device maintenance suppression and records confirmed linkage writes.

Run from cron/systemd or Celery beat (alerts.tasks.escalate_alerts, every minute); ``--loop N``
runs it every N seconds until SIGTERM. Safe to run as several instances (row locks, unique steps).
"""

from __future__ import annotations

import signal
import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from alerts.services import alerts_escalate


class Command(BaseCommand):
    help = "Escalate alerts that are unacknowledged or unanswered past their deadline."

    def add_arguments(self, parser):
        parser.add_argument("--loop", type=float, default=0, help="repeat every N seconds until stopped")

    def handle(self, *args, loop, **options):
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        if loop:
            signal.signal(signal.SIGTERM, stop)
            signal.signal(signal.SIGINT, stop)
        while True:
            if loop:
                close_old_connections()  # a long-running loop must not hold a dead connection
            count = alerts_escalate()
            self.stdout.write(f"escalated {count} alert(s)")
            if not loop or stopping:
                return
            deadline = time.monotonic() + loop
            while not stopping and time.monotonic() < deadline:
                time.sleep(min(0.5, loop))
            if stopping:
                return
