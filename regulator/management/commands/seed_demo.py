"""Create a realistic demo county. Each app contributes through ``<app>/demo.py``'s ``seed(ctx)``.

The run is deterministic for a given ``--seed``: every app draws from the same seeded RNG in a
fixed order, and no app reads the wall clock except through ``ctx.now``.
"""

from __future__ import annotations

import importlib
import random
from dataclasses import dataclass, field
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

# Order matters: later apps build on earlier ones' data. enterprises.risk trains and grades on it all.
DEMO_APPS = ["enterprises", "enforcement", "hazards", "devices", "alerts", "enterprises.risk"]


@dataclass
class DemoContext:
    rng: random.Random
    seed: int
    enterprises: int
    now: datetime
    stdout: object
    style: object
    logins: list[tuple[str, str, str]] = field(default_factory=list)  # (username, password, description)
    shared: dict = field(default_factory=dict)  # what one app's seeder hands to the next

    def log(self, message: str) -> None:
        self.stdout.write(message)


class Command(BaseCommand):
    help = "Fill an empty database with a deterministic demo county (regions, parks, enterprises, users, ...)."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument("--enterprises", type=int, default=500)
        parser.add_argument("--if-empty", action="store_true", help="do nothing when enterprises already exist")

    def handle(self, *args, seed, enterprises, if_empty, **options):
        from enterprises.models import Enterprise

        if enterprises < 1:
            raise CommandError("--enterprises must be at least 1")
        if Enterprise.objects.exists():
            if if_empty:
                self.stdout.write("demo data already present; nothing to do")
                return
            raise CommandError("the database already holds enterprises; seed_demo only fills an empty database")
        ctx = DemoContext(
            rng=random.Random(seed),
            seed=seed,
            enterprises=enterprises,
            now=timezone.now().replace(microsecond=0),
            stdout=self.stdout,
            style=self.style,
        )
        for app in DEMO_APPS:
            try:
                module = importlib.import_module(f"{app}.demo")
            except ModuleNotFoundError as exc:
                if exc.name != f"{app}.demo":
                    raise
                continue
            with transaction.atomic():
                module.seed(ctx)
        self.stdout.write(self.style.SUCCESS("demo data created. Logins:"))
        for username, password, description in ctx.logins:
            self.stdout.write(f"  {username:<22} {password:<18} {description}")
