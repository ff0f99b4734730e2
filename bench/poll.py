"""Polling benchmark: the devices poller vs a bare pymodbus client loop, in the same run.

    .venv/bin/python bench/poll.py [--devices 1000] [--channels 10] [--hz 10] [--seconds 10] [--rounds 3] [--pin]

Lightweight asyncio Modbus TCP responders run in separate processes (the pymodbus server is too
CPU-heavy for 10,000 requests/s). Then, in alternating rounds (bare first, then the poller first,
...: the speed of a shared machine drifts), in a fresh process each:

- bare: one pymodbus AsyncModbusTcpClient per device, each paced at --hz with absolute deadlines,
  reading the device's registers in one request;
- poller: devices.poller.daemon workers for the same devices: the good responses of a few
  milliseconds (PollerConfig.batch_window) are decoded, range-checked and folded (the writer's
  deadband + 1-minute aggregation) together, by compiled loops over the batch, and handed to the
  reading hook as one batch; the writer thread's database store is a no-op here, see
  bench/ingest.py for storage.

Both modes run on the same event loop (--loop, default uvloop as the daemon) and GC threshold (the
daemon's). --alerts hands the poller's readings to the real alert engine (a rule on every channel)
instead of a no-op sink. Prints achieved reads/s, p50/p99/max cycle lateness (jitter), CPU per read
and the GC's collections and pauses for both.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# --- responder (no Django, no pymodbus) ---------------------------------------------------------


class Responder(asyncio.Protocol):
    registers = b"".join(struct.pack(">H", 100 + i) for i in range(125))

    def connection_made(self, transport):
        self.transport = transport
        self.buf = b""

    def data_received(self, data):
        buf = self.buf + data
        out = []
        while len(buf) >= 8:
            length = int.from_bytes(buf[4:6], "big")
            if len(buf) < 6 + length:
                break
            frame, buf = buf[: 6 + length], buf[6 + length :]
            unit, fc = frame[6], frame[7]
            if fc in (3, 4) and len(frame) >= 12:
                count = int.from_bytes(frame[10:12], "big")
                pdu = bytes([fc, count * 2]) + self.registers[: count * 2]
            else:
                pdu = bytes([fc | 0x80, 1])
            out.append(frame[0:2] + b"\x00\x00" + (len(pdu) + 1).to_bytes(2, "big") + bytes([unit]) + pdu)
        self.buf = buf
        if out:
            self.transport.write(b"".join(out))


async def responder_main(count: int) -> None:
    loop = asyncio.get_running_loop()
    servers, ports = [], []
    for _ in range(count):
        server = await loop.create_server(Responder, "127.0.0.1", 0, backlog=64)
        servers.append(server)
        ports.append(server.sockets[0].getsockname()[1])
    print(json.dumps(ports), flush=True)
    await asyncio.Event().wait()


# --- pollers -------------------------------------------------------------------------------------


def percentile(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class GcPauses:
    """Cyclic-GC pauses while measuring: count, total and longest (they show up as cycle jitter)."""

    def __init__(self):
        self.count, self.total, self.longest, self._t0, self.on = 0, 0.0, 0.0, 0.0, False
        gc.callbacks.append(self._cb)

    def _cb(self, phase, info):
        if phase == "start":
            self._t0 = time.perf_counter()
        elif self.on:
            d = time.perf_counter() - self._t0
            self.count, self.total, self.longest = self.count + 1, self.total + d, max(self.longest, d)

    def as_dict(self):
        return {"gc_count": self.count, "gc_total": self.total, "gc_max": self.longest}


async def bare_main(ports, channels, hz, seconds, warmup):
    import logging

    from pymodbus.client import AsyncModbusTcpClient

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    period = 1.0 / hz
    lateness, reads = [], [0]
    measuring = [False]
    stop = [False]

    async def device(port, offset):
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1, retries=0, reconnect_delay=0)
        await client.connect()
        loop = asyncio.get_running_loop()
        next_t = loop.time() + offset
        await asyncio.sleep(offset)
        while not stop[0]:
            start = loop.time()
            if measuring[0]:
                lateness.append(start - next_t)
            rr = await client.read_holding_registers(0, count=channels, device_id=1)
            if not rr.isError() and measuring[0]:
                reads[0] += 1
            next_t += period
            now = loop.time()
            if now > next_t:
                next_t = now
                await asyncio.sleep(0)
            else:
                await asyncio.sleep(next_t - now)
        client.close()

    tasks = [asyncio.create_task(device(p, i * period / len(ports))) for i, p in enumerate(ports)]
    pauses = GcPauses()
    await asyncio.sleep(warmup)
    measuring[0] = pauses.on = True
    cpu0, t0 = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    measuring[0] = pauses.on = False
    stop[0] = True
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"reads": reads[0], "wall": wall, "cpu": cpu, "lateness": lateness, **pauses.as_dict()}


async def poller_main(ports, channels, hz, seconds, warmup, tmp, with_alerts=False):
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "regulator.settings")
    django.setup()
    import logging

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    logging.getLogger("devices").setLevel(logging.ERROR)
    from datetime import datetime

    from devices.poller.daemon import DeviceSpec, DeviceWorker, Poller, PollerConfig, settle_gc
    from devices.poller.decode import ChannelSpec
    from devices.poller.storage import ReadingWriter

    stored = [0]

    def store(rows, aggs):
        stored[0] += len(rows)
        return len(rows)

    writer = ReadingWriter(poller="bench", spool_dir=Path(tmp) / "spool", spool_max_bytes=10**8, store=store)
    config = PollerConfig(name="bench", live_push_interval=0, record_lateness=False)
    poller = Poller(config, writer, store_status=False)
    if with_alerts:
        # The real hand-off: devices.hooks -> the alerts runtime's engine, a rule on every channel
        # (H/HH/L/LL, deadband, rate of change). The values stay normal, so nothing is written.
        from django.conf import settings

        from alerts import engine as eng
        from alerts.runtime import ChannelInfo, runtime

        settings.ALERT_RUNTIME_BACKGROUND = False  # no writer thread (it would load rules from the DB)
        runtime.signature = ("bench",)
        rule = eng.RuleConfig(limits=eng.Limits(high_high=95, high=90, low=1, low_low=0.5), deadband=1, rate_limit=500)
        for c in range(1, len(ports) * channels + 1):
            runtime.engine.configure(c, rule)
            runtime.channels[c] = ChannelInfo(0, 0, 0, f"T{c}", "", "", {})
    else:
        poller.reading_hook = lambda events: None  # the alerts sink is measured in bench/alert_latency.py
    period = 1.0 / hz
    cid = 0
    for i, port in enumerate(ports):
        chans = []
        for a in range(channels):
            cid += 1
            chans.append(
                ChannelSpec(
                    id=cid,
                    device_id=i + 1,
                    tag=f"T{cid}",
                    unit_id=1,
                    register_type="holding",
                    address=a,
                    scale=0.1,
                    range_low=0,
                    range_high=100,
                    deadband=0.5,
                    heartbeat_s=60,
                )
            )
            writer.configure(cid, 0.5, 60)
        spec = DeviceSpec(
            id=i + 1,
            name=f"d{i}",
            enterprise_id=1,
            protocol="tcp",
            host="127.0.0.1",
            port=port,
            serial_port="",
            baudrate=9600,
            parity="N",
            stopbits=1,
            bytesize=8,
            period_s=period,
            timeout_s=1.0,
            retries=0,
            enabled=True,
            maintenance=False,
            status="online",
            channels=tuple(chans),
            signature=(datetime.now(),),
        )
        poller.specs[spec.id] = spec
    settle_gc()  # as the daemon does after its first reload
    writer.start()
    for spec in poller.specs.values():
        w = DeviceWorker(spec, poller)
        poller.workers[spec.id] = w
        w.start()
        await asyncio.sleep(period / len(ports))  # stagger like the bare loop
    pauses = GcPauses()
    await asyncio.sleep(warmup)
    gc.freeze()  # as the daemon does once its workers have connected
    reads0 = sum(w.stats.reads for w in poller.workers.values())
    batches0 = list(poller.batch_stats)
    poller.lateness.clear()
    config.record_lateness = pauses.on = True
    cpu0, t0 = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    config.record_lateness = pauses.on = False
    reads = sum(w.stats.reads for w in poller.workers.values()) - reads0
    batches = poller.batch_stats[0] - batches0[0], poller.batch_stats[1] - batches0[1]
    lateness = list(poller.lateness)
    for w in poller.workers.values():
        w.stopping = True
    await asyncio.gather(*(w.stop() for w in poller.workers.values()))
    writer.stop()
    return {
        "reads": reads,
        "wall": wall,
        "cpu": cpu,
        "lateness": lateness,
        "received": writer.stats["received"],
        "stored_rows": stored[0],
        "reads_per_batch": batches[1] / max(batches[0], 1),
        **pauses.as_dict(),
    }


def run_loop(kind, coro):
    if kind == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)
    return asyncio.run(coro)


def run_mode(mode, ports, args):
    cmd = [sys.executable, __file__, "--mode", mode, "--ports", ",".join(map(str, ports))]
    cmd += ["--channels", str(args.channels), "--hz", str(args.hz), "--seconds", str(args.seconds)]
    cmd += ["--warmup", str(args.warmup), "--loop", args.loop, "--gc-threshold", args.gc_threshold]
    cmd += ["--alerts"] if args.alerts else []
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True, cwd=ROOT, preexec_fn=_pin(args, 0)).stdout
    return json.loads(out.strip().splitlines()[-1])


def _pin(args, which: int):
    """With --pin: the measured client on the first CPU, the responders on the others, so the
    scheduler does not move them around (or put them on one CPU) differently from run to run."""
    cpus = sorted(os.sched_getaffinity(0))
    if not args.pin or len(cpus) < 2:
        return None
    chosen = {cpus[0]} if which == 0 else set(cpus[1:])
    return lambda: os.sched_setaffinity(0, chosen)


def summarise(name, r, devices, hz):
    lat = [x * 1000 for x in r["lateness"]]
    rate = r["reads"] / r["wall"]
    return {
        "name": name,
        "reads/s": rate,
        "target": devices * hz,
        "cpu %": 100 * r["cpu"] / r["wall"],
        "cpu us/read": 1e6 * r["cpu"] / max(r["reads"], 1),
        "p50 ms": percentile(lat, 0.5),
        "p99 ms": percentile(lat, 0.99),
        "max ms": max(lat) if lat else float("nan"),
        "mean ms": statistics.fmean(lat) if lat else float("nan"),
        "gc": r["gc_count"],
        "gc ms": 1000 * r["gc_total"],
        "gc max ms": 1000 * r["gc_max"],
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--channels", type=int, default=10)
    parser.add_argument("--hz", type=float, default=10)
    parser.add_argument("--seconds", type=float, default=10, help="measured per mode and round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of both modes")
    parser.add_argument("--pin", action="store_true", help="pin the client and the responders to separate CPUs")
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--responders", type=int, default=1, help="responder processes")
    parser.add_argument("--mode", choices=["bare", "poller", "responder"], default=None)
    parser.add_argument("--ports", default="")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop", help="event loop of both modes")
    parser.add_argument("--alerts", action="store_true", help="poller hands readings to the real alert engine")
    parser.add_argument("--gc-threshold", default="", help="e.g. 700,10,10 (default: the daemon's, for both modes)")
    args = parser.parse_args()

    if args.mode == "responder":
        asyncio.run(responder_main(args.count))
        return
    if args.mode in ("bare", "poller"):
        from devices.poller.daemon import GC_THRESHOLD

        gc.set_threshold(*(map(int, args.gc_threshold.split(",")) if args.gc_threshold else GC_THRESHOLD))
        ports = [int(p) for p in args.ports.split(",") if p]
        if args.mode == "bare":
            result = run_loop(args.loop, bare_main(ports, args.channels, args.hz, args.seconds, args.warmup))
        else:
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                main = poller_main(ports, args.channels, args.hz, args.seconds, args.warmup, tmp, args.alerts)
                result = run_loop(args.loop, main)
        print(json.dumps(result))
        return

    procs, ports = [], []
    per = -(-args.devices // args.responders)
    for i in range(args.responders):
        n = min(per, args.devices - i * per)
        p = subprocess.Popen(
            [sys.executable, __file__, "--mode", "responder", "--count", str(n)],
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=_pin(args, 1),
        )
        procs.append(p)
        ports += json.loads(p.stdout.readline())
    try:
        print(
            f"{args.devices} devices x {args.channels} channels at {args.hz:g} Hz, "
            f"{args.rounds} rounds of {args.seconds:g} s measured per mode after {args.warmup:g} s warm-up, "
            f"{os.cpu_count()} CPUs, "
            f"{args.responders} responder process(es)"
        )
        from _common import python_speed

        print(f"machine: {python_speed()}")
        # Alternating rounds (bare first, then poller first, ...): on a shared machine the speed
        # drifts over a minute, and one run of each, one after the other, mostly measures the drift.
        rounds = []
        for k in range(args.rounds):
            order = ["bare", "poller"] if k % 2 == 0 else ["poller", "bare"]
            done = {mode: run_mode(mode, ports, args) for mode in order}
            rounds.append(
                (
                    summarise(f"bare pymodbus loop #{k + 1}", done["bare"], args.devices, args.hz),
                    summarise(f"devices poller #{k + 1}", done["poller"], args.devices, args.hz),
                    done["poller"]["reads_per_batch"],
                )
            )
    finally:
        for p in procs:
            p.terminate()
            p.wait()
    cols = ["reads/s", "target", "cpu %", "cpu us/read", "p50 ms", "p99 ms", "max ms", "gc", "gc ms", "gc max ms"]
    print(f"{'':24}" + "".join(f"{c:>13}" for c in cols))
    for bare, poller, _batch in rounds:
        for r in (bare, poller):
            print(f"{r['name']:24}" + "".join(f"{r[c]:>13.1f}" for c in cols))
    ratios = [poller["cpu us/read"] / bare["cpu us/read"] for bare, poller, _batch in rounds]
    batch = statistics.fmean(b for _bare, _poller, b in rounds)
    print(
        f"CPU per read, poller / bare, per round: {', '.join(f'{r:.2f}x' for r in ratios)}; "
        f"median {statistics.median(ratios):.2f}x (the poller's batches: {batch:.0f} reads each)"
    )
    worst = max(poller["p99 ms"] for _bare, poller, _batch in rounds)
    slowest = min(poller["reads/s"] / poller["target"] for _bare, poller, _batch in rounds)
    print(f"poller: worst p99 cycle jitter {worst:.1f} ms; lowest rate {100 * slowest:.1f}% of the target")


if __name__ == "__main__":
    main()
