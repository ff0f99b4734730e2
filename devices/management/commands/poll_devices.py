"""The Modbus polling daemon: ``manage.py poll_devices [--shard K/N] [--name NAME]``."""

from __future__ import annotations

import logging
import os
import re
import socket

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from devices.poller.daemon import PollerConfig, run_forever
from devices.poller.storage import ReadingWriter


def parse_shard(value: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)/(\d+)", value or "")
    if not match:
        raise CommandError("--shard must look like K/N, e.g. 0/2")
    k, n = int(match.group(1)), int(match.group(2))
    if n < 1 or not 0 <= k < n:
        raise CommandError("--shard K/N needs N >= 1 and 0 <= K < N")
    return k, n


class Command(BaseCommand):
    help = "Poll the Modbus devices of this shard until SIGTERM; store readings and hand them to the alerts."

    def add_arguments(self, parser):
        parser.add_argument("--shard", default="0/1", help="K/N: poll devices whose id mod N == K (default 0/1)")
        parser.add_argument("--name", default="", help="poller name in logs and readings (default host-shard)")
        parser.add_argument("--no-store", action="store_true", help="evaluate only, do not store readings")

    def handle(self, *args, shard, name, no_store, **options):
        k, n = parse_shard(shard)
        name = name or f"{socket.gethostname()}-{k}of{n}"
        logging.getLogger("devices").setLevel(logging.INFO)
        config = PollerConfig.from_settings(name=name, shard=(k, n))
        writer = None
        if not no_store:
            writer = ReadingWriter(
                poller=name,
                spool_dir=settings.DATA_DIR / "spool" / re.sub(r"[^A-Za-z0-9_.-]", "_", name),
                spool_max_bytes=settings.DEVICES_SPOOL_MAX_MB * 1024 * 1024,
                flush_interval=settings.DEVICES_FLUSH_MS / 1000,
            )
        self.stdout.write(f"poller {name} (pid {os.getpid()}) shard {k}/{n}; SIGTERM stops it cleanly")
        run_forever(config, writer)
        self.stdout.write(f"poller {name} stopped")
