"""Monthly alarm-management report (EEMUA 191 style), printed or written as JSON."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from alerts.analytics import monthly_report
from alerts.models import Alert


class Command(BaseCommand):
    help = "Alerts per operator per 10 min, time in flood, standing alerts, chattering channels, false-alarm rate."

    def add_arguments(self, parser):
        parser.add_argument("--month", required=True, help="YYYY-MM")
        parser.add_argument("--json", action="store_true", help="print JSON instead of text")

    def handle(self, *args, month, json: bool = False, **options):
        try:
            report = monthly_report(Alert.objects.all(), month)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if json:
            self.stdout.write(_dumps(report))
            return
        out = self.stdout.write
        out(f"Alert report {report['month']}: {report['total']} alerts in {report['windows']} ten-minute windows")
        fa = report["false_alarm"]
        rate = "n/a" if fa["rate"] is None else f"{fa['rate']:.1%}"
        out(f"False-alarm rate: {rate} ({fa['false']} of {fa['reviewed']} reviewed)")
        out(f"Time in flood: {report['flood']['windows_in_flood']} windows ({report['flood']['share']:.2%})")
        out(f"Standing alerts (>24 h): {report['standing_count']}")
        out("Per operator (enterprise): total / avg per 10 min / peak per 10 min / windows in flood")
        for r in report["per_operator"]:
            out(
                f"  {r['enterprise']}: {r['total']} / {r['avg_per_10min']}"
                f" / {r['peak_10min']} / {r['windows_in_flood']}"
            )
        out("Response times: kind / count / median s / p90 s / within target")
        for r in report["responses"]:
            within = "-" if r["within_target"] is None else f"{r['within_target']:.0%} of {r['target_s']} s"
            out(f"  {r['kind']}: {r['count']} / {r['median_s']} / {r['p90_s']} / {within}")
        out("Top chattering channels: tag / alerts / repeats within 60 s")
        for r in report["chattering"]:
            out(f"  {r['tag']} {r['name']} ({r['enterprise']}): {r['count']} / {r['chatter']}")


def _dumps(report) -> str:
    return json.dumps(report, ensure_ascii=False, indent=2, default=str)
