"""Real parts for the alert-outbox and linkage fault tests (and bench/linkage_latency.py): a private
PostgreSQL migrated once into a template, a pymodbus server in a thread whose coil writes are
timestamped, a gas detector world written through a ``manage.py shell`` of the private database, and
the real ``poll_devices`` process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.faultkit import PrivatePostgres, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = "regulator_fault_template"


def migrated_postgres() -> PrivatePostgres:
    """A private cluster with a migrated template database (clone it per test: seconds, not a migrate)."""
    pg = PrivatePostgres()
    pg.setup()
    pg.start()
    pg.create_database(TEMPLATE)
    env = {**os.environ, "DATABASE_URL": pg.dsn(TEMPLATE)}
    env.pop("PYTEST_XDIST_WORKER", None)
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode:
        pg.close()
        raise RuntimeError(f"migrate failed: {done.stderr[-2000:]}")
    return pg


def clone(pg: PrivatePostgres, name: str) -> str:
    return pg.create_database(name, template=TEMPLATE)


def psql(pg: PrivatePostgres, dbname: str, statement: str) -> str:
    return pg.sql(statement, dbname=dbname)


class ModbusServer:
    """A minimal Modbus TCP slave (unit 1: 64 holding/input registers, 64 coils/discrete inputs) on its
    own thread and event loop: a test sets registers and reads coils directly, and ``coil_writes`` lists
    (epoch seconds, address, value) of every coil write received, so it sees when the valve closed.
    (pymodbus 3.16's server datastore cannot be read or written from outside its event loop.)"""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.registers = [0] * 64
        self.coils = [False] * 64
        self.coil_writes: list[tuple[float, int, bool]] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="modbus-server", daemon=True)
        self.server = None

    def start(self) -> ModbusServer:
        self.thread.start()

        async def serve():
            self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port)

        asyncio.run_coroutine_threadsafe(serve(), self.loop).result(timeout=10)
        return self

    async def _client(self, reader, writer) -> None:
        try:
            while True:
                header = await reader.readexactly(7)
                tid, _proto, length, unit = struct.unpack(">HHHB", header)
                pdu = await reader.readexactly(length - 1)
                reply = self._answer(pdu)
                writer.write(struct.pack(">HHHB", tid, 0, len(reply) + 1, unit) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _answer(self, pdu: bytes) -> bytes:
        fc = pdu[0]
        if fc in (1, 2):
            address, count = struct.unpack(">HH", pdu[1:5])
            bits = self.coils[address : address + count]
            packed = bytearray((count + 7) // 8)
            for i, bit in enumerate(bits):
                if bit:
                    packed[i // 8] |= 1 << (i % 8)
            return bytes([fc, len(packed)]) + bytes(packed)
        if fc in (3, 4):
            address, count = struct.unpack(">HH", pdu[1:5])
            words = self.registers[address : address + count]
            return bytes([fc, 2 * len(words)]) + struct.pack(f">{len(words)}H", *words)
        if fc == 5:
            address, raw = struct.unpack(">HH", pdu[1:5])
            self.coils[address] = raw == 0xFF00
            self.coil_writes.append((time.time(), address, raw == 0xFF00))
            return pdu[:5]
        if fc == 6:
            address, value = struct.unpack(">HH", pdu[1:5])
            self.registers[address] = value
            return pdu[:5]
        return bytes([fc | 0x80, 1])  # illegal function

    def set_register(self, address: int, value: int) -> float:
        """Change a holding register now (as the sensor would); returns the epoch time of the change."""
        at = time.time()
        self.registers[address] = value
        return at

    def coil(self, address: int) -> bool:
        return self.coils[address]

    def reset_coil(self, address: int) -> None:
        self.coils[address] = False

    def stop(self) -> None:
        if self.server is not None:
            self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


SETUP = """
import json
from alerts.models import AlertRule
from devices.models import Channel, Device
from tests import factories as f
regions = f.region_tree()
ent = f.enterprise(regions["township"], name="常熟甲化工有限公司")
f.user("inspector", "inspector", jurisdiction=regions["county"])
device = Device.objects.create(enterprise=ent, name="罐区采集网关", host="127.0.0.1", port={port},
    poll_period_ms={period_ms}, timeout_ms=300)
gas = Channel.objects.create(device=device, tag="GT-F", name="罐区可燃气体", address=0, data_type="uint16",
    scale=0.1, quantity="combustible_gas", unit="%LEL", range_low=0, range_high=100)
Channel.objects.create(device=device, tag="XV-F", name="紧急切断阀", register_type="coil", address=0,
    data_type="bool", quantity="state", writable=True)
AlertRule.objects.create(name="可燃气体", quantity="combustible_gas", high=20, high_high=50, deadband=2,
    level_high=2, level_high_high=1, linkage_device=device, linkage_unit_id=1, linkage_address=0,
    linkage_value=True)
print("WORLD" + json.dumps({{"enterprise": ent.pk, "device": device.pk, "gas": gas.pk}}))
"""


def make_world(dsn: str, *, modbus_port: int, period_ms: int = 100) -> dict:
    env = {**os.environ, "DATABASE_URL": dsn}
    env.pop("PYTEST_XDIST_WORKER", None)
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SETUP.format(port=modbus_port, period_ms=period_ms)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = [x for x in done.stdout.splitlines() if x.startswith("WORLD")]
    if done.returncode or not line:
        raise RuntimeError(f"setting up the world failed: {done.stderr[-3000:]}")
    return json.loads(line[0][5:])


class PollerProcess:
    """``manage.py poll_devices --name NAME`` against the given database and Redis; its log in ``logdir``."""

    def __init__(self, *, dsn: str, redis_url: str, data_dir: Path, name: str = "fault", extra_env=None):
        self.env = {
            **os.environ,
            "DATABASE_URL": dsn,
            "REDIS_URL": redis_url,
            "DATA_DIR": str(data_dir),
            "PYTHONUNBUFFERED": "1",
            "ALERT_RULE_REFRESH_SECONDS": "2",
            "DEVICES_RELOAD_SECONDS": "2",
            **(extra_env or {}),
        }
        self.env.pop("PYTEST_XDIST_WORKER", None)
        self.name = name
        self.data_dir = data_dir
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def log(self) -> Path:
        return self.data_dir / f"poller-{self.name}.log"

    def start(self) -> None:
        self.starts += 1
        out = open(self.log, "ab")  # noqa: SIM115 - kept open for the process
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "poll_devices", "--name", self.name],
            cwd=ROOT,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)

    def tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def outbox_rows(self) -> int:
        """Changes waiting in this poller's alert outbox file (read as another process would)."""
        import sqlite3

        path = self.data_dir / "outbox" / f"{self.name}.sqlite3"
        if not path.exists():
            return 0
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute("SELECT COUNT(*) FROM changes").fetchone()[0]
        finally:
            db.close()


def wait_online(pg: PrivatePostgres, dbname: str, device_id: int, timeout: float = 40) -> None:
    wait_until(
        lambda: psql(pg, dbname, f"SELECT status FROM devices_device WHERE id = {device_id}") == "online",
        timeout=timeout,
        what="the device online",
        interval=0.2,
    )
