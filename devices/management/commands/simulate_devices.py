"""Serve the demo devices with pymodbus on loopback (and RTU on a pty pair), with scenarios."""

from __future__ import annotations

import asyncio
import logging
import signal

from django.core.management.base import BaseCommand, CommandError

from devices.choices import Protocol
from devices.models import Device
from devices.simulator import SCENARIOS, load_simulated_devices, run_simulation


class Command(BaseCommand):
    help = (
        "Run Modbus servers for the devices in the database (TCP gateways on loopback hosts, "
        "RTU buses on pseudo-terminals) with realistic values and optional scenarios."
    )

    def add_arguments(self, parser):
        parser.add_argument("--scenario", choices=SCENARIOS, default="normal")
        parser.add_argument("--channel", dest="tag", default=None, help="tag number of the channel (e.g. GT-101)")
        parser.add_argument("--device", type=int, default=None, help="device id (for device-offline or to pick a tag)")
        parser.add_argument("--after", type=float, default=10.0, help="seconds before the scenario starts")
        parser.add_argument(
            "--duration", type=float, default=None, help="seconds the scenario lasts (default: until exit)"
        )
        parser.add_argument("--ramp", type=float, default=60.0, help="gas-leak: seconds to reach 90%% of range")
        parser.add_argument("--level", type=float, default=None, help="chatter: the value to hover around")
        parser.add_argument("--enterprise", type=int, default=None, help="only devices of this enterprise id")
        parser.add_argument("--include-disabled", action="store_true", help="also serve disabled devices")
        parser.add_argument("--no-rtu", action="store_true", help="skip RTU buses")
        parser.add_argument("--seed", type=int, default=1)

    def handle(self, *args, **opts):
        logging.getLogger("devices").setLevel(logging.INFO)
        logging.getLogger("pymodbus").setLevel(logging.ERROR)
        qs = Device.objects.exclude(protocol=Protocol.HTTP)
        if not opts["include_disabled"]:
            qs = qs.filter(enabled=True)
        if opts["enterprise"]:
            qs = qs.filter(enterprise_id=opts["enterprise"])
        if opts["no_rtu"]:
            qs = qs.exclude(protocol=Protocol.RTU)
        qs = qs.exclude(protocol=Protocol.TCP, host__in=["", "0.0.0.0"])  # noqa: S104 - excluded, never bound
        import random

        devices = load_simulated_devices(qs.order_by("id"), random.Random(opts["seed"]))
        if not devices:
            raise CommandError("no devices to simulate: run seed_demo first, or check --enterprise")
        for dev in devices:
            if dev.protocol == Protocol.TCP and dev.host not in ("127.0.0.1", "localhost", "::1"):
                raise CommandError(f"device {dev.name} is on {dev.host}: the simulator only serves loopback")
        self.stdout.write(f"simulating {len(devices)} devices; Ctrl-C or SIGTERM stops")

        async def main():
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await run_simulation(
                devices,
                stop=stop,
                scenario=opts["scenario"],
                tag=opts["tag"],
                device_id=opts["device"],
                after=opts["after"],
                ramp=opts["ramp"],
                duration=opts["duration"],
                level=opts["level"],
                seed=opts["seed"],
            )

        try:
            asyncio.run(main())
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
