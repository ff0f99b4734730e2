"""Recompute the dashboard's monthly snapshots (enterprises.indicator_snapshots)."""

from __future__ import annotations

import re
import time
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from enterprises.indicator_snapshots import build_snapshots, recent_months


class Command(BaseCommand):
    help = "重算监管驾驶舱的指标月快照（默认：本月及此前35个月）"

    def add_arguments(self, parser):
        parser.add_argument("--months", type=int, default=36, help="本月及此前共几个月（默认36）")
        parser.add_argument("--month", action="append", default=[], help="只重算指定月份 YYYY-MM（可重复）")
        parser.add_argument("--sample", action="store_true", help="同时把当前实时状态作为一次采样计入本月")

    def handle(self, *args, months, month, sample, **options):
        if month:
            firsts = []
            for text in month:
                m = re.fullmatch(r"(\d{4})-(\d{2})", text)
                if not m or not 1 <= int(m[2]) <= 12:
                    raise CommandError(f"月份格式应为 YYYY-MM：{text}")
                firsts.append(date(int(m[1]), int(m[2]), 1))
        else:
            if months < 1:
                raise CommandError("--months 至少为 1")
            firsts = recent_months(months)
        started = time.perf_counter()
        result = build_snapshots(firsts, sample=sample)
        self.stdout.write(
            f"{result['months']} months, {result['rows']} rows, {result['queries']} queries, "
            f"{time.perf_counter() - started:.1f} s"
        )
