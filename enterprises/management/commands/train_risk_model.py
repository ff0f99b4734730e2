"""Train the risk model on monthly snapshots, print held-out metrics against the rules, store and activate it."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime


def parse_moment(value: str):
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"--as-of: not a date or datetime: {value!r} (use YYYY-MM-DD or an ISO datetime)")
        from datetime import datetime

        moment = datetime.combine(day, datetime.min.time())
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


class Command(BaseCommand):
    help = "Train the risk model on held-out time; refuses to replace a better active model unless --force."

    def add_arguments(self, parser):
        parser.add_argument("--as-of", help="train as if today were this date (default: now)")
        parser.add_argument(
            "--force", action="store_true", help="activate even if worse than the active model or the rules"
        )
        parser.add_argument("--dry-run", action="store_true", help="train and evaluate, store nothing")

    def handle(self, *args, as_of=None, force=False, dry_run=False, **options):
        from enterprises.risk.training import TOP_K_SHARE, train_risk_model

        moment = parse_moment(as_of) if as_of else None
        outcome = train_risk_model(as_of=moment, force=force, dry_run=dry_run)
        m = outcome.metrics
        if "auc" in m:
            k = f"precision@{int(TOP_K_SHARE * 100)}%"
            self.stdout.write(
                f"snapshots: {len(m['train_snapshots'])} train ({m['train_snapshots'][0][:10]} .. "
                f"{m['train_snapshots'][-1][:10]}), {len(m['test_snapshots'])} test ({m['test_snapshots'][0][:10]} .. "
                f"{m['test_snapshots'][-1][:10]})"
            )
            self.stdout.write(
                f"rows: {m['n_train']} train ({m['train_positives']} positive), {m['n_test']} test "
                f"({m['test_positives']} positive, base rate {m['base_rate_test']:.3f})"
            )
            self.stdout.write(f"{'':<14}{'AUC':>8}{k:>18}{'Brier':>9}")
            self.stdout.write(f"{'model':<14}{_f(m['auc']):>8}{_f(m['precision_at_k']):>18}{_f(m['brier']):>9}")
            self.stdout.write(f"{'rules':<14}{_f(m['rules']['auc']):>8}{_f(m['rules']['precision_at_k']):>18}{'':>9}")
            active = m.get("active_on_this_test")
            if active and "auc" in active:
                self.stdout.write(
                    f"{'active v' + str(active['version']):<14}{_f(active['auc']):>8}"
                    f"{_f(active['precision_at_k']):>18}{_f(active['brier']):>9}"
                )
            if "timings" in m:
                self.stdout.write("timings: " + ", ".join(f"{k} {v:.2f}" for k, v in m["timings"].items()))
        style = {
            "activated": self.style.SUCCESS,
            "stored": self.style.WARNING,
            "dry_run": self.style.NOTICE,
            "not_enough_history": self.style.WARNING,
        }[outcome.status]
        self.stdout.write(style(outcome.message))


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
