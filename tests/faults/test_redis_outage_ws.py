"""A screen that stays connected through a Redis outage gets every alert raised meanwhile, once.

Real parts: a private redis-server (the channel layer of this test process and of a real Daphne),
the test's PostgreSQL database (up throughout), and a WebSocket client that behaves as the alert
board does (hello with its last id on connect and on ``resync``). Redis is killed, alerts are raised
through alerts.services.alert_raise (their pushes fail), Redis is started again (empty: no
persistence). The client must be told to resync within seconds and then receive each alert of the
outage exactly once; afterwards pushes flow again (the groups were joined again).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.alerts.e2e_support import session_key
from tests.faultkit import PrivateRedis, free_port, port_open, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
PROBE_MS = 300


@pytest.fixture
def redis():
    with PrivateRedis() as server:
        yield server


@pytest.fixture
def daphne(request, redis, tmp_path):
    """A real Daphne on the test database, with the private Redis as its channel layer (probed every
    ``PROBE_MS``, or as the test's indirect parameter says)."""
    probe_ms = getattr(request, "param", PROBE_MS)
    if not settings.USING_POSTGRES:
        pytest.skip("needs PostgreSQL (set DATABASE_URL): Daphne must see the test's database")
    db = connection.settings_dict
    env = dict(os.environ)
    env.pop("PYTEST_XDIST_WORKER", None)
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        REDIS_URL=redis.url,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DATA_DIR=str(tmp_path),
        SECRET_KEY=settings.SECRET_KEY,
        CELERY_TASK_ALWAYS_EAGER="1",
        REALTIME_LAYER_PROBE_MS=str(probe_ms),
        ALERT_WS_HEARTBEAT_SECONDS="2",
        PYTHONUNBUFFERED="1",
    )
    port = free_port()
    log = open(tmp_path / "daphne.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port), "regulator.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until(lambda: port_open(port) or proc.poll() is not None, timeout=60, what="Daphne to listen")
        assert proc.poll() is None, (tmp_path / "daphne.log").read_text(errors="replace")[-3000:]
        yield port
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.close()
        if os.environ.get("ALERTS_E2E_SHOW_LOGS"):
            print((tmp_path / "daphne.log").read_text(errors="replace")[-6000:])


class Screen:
    """The alert board's socket protocol: hello with the last id seen, again on every ``resync``."""

    def __init__(self, port: int, key: str):
        self.port, self.key = port, key
        self.messages: list[dict] = []
        self.alert_ids: list[int] = []  # every alert received, pushed or in a snapshot's "missed"
        self.last_id: int | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.thread.start()

    def kinds(self) -> list[str]:
        return [m["type"] for m in list(self.messages)]

    async def _run(self):
        from websockets.asyncio.client import connect

        async with connect(
            f"ws://127.0.0.1:{self.port}/ws/alerts/",
            additional_headers={"Cookie": f"sessionid={self.key}"},
            origin=f"http://127.0.0.1:{self.port}",
            open_timeout=20,
        ) as ws:
            await ws.send(json.dumps({"type": "hello", "last_id": None}))
            while not self.stopping.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), timeout=0.2)
                except TimeoutError:
                    continue
                msg = json.loads(raw)
                if msg["type"] == "alert" and msg["event"] == "alert.raised":
                    self.alert_ids.append(msg["alert"]["id"])
                    self.last_id = max(self.last_id or 0, msg["alert"]["id"])
                elif msg["type"] == "snapshot":
                    self.alert_ids.extend(a["id"] for a in msg["missed"])
                    self.last_id = max(self.last_id or 0, msg["last_id"])
                elif msg["type"] == "resync":
                    await ws.send(json.dumps({"type": "hello", "last_id": self.last_id}))
                self.messages.append(msg)

    def close(self):
        self.stopping.set()
        self.thread.join(timeout=10)


def _gas_channel(world):
    from devices.models import Channel, Device

    device = Device.objects.create(enterprise=world.here, name="可燃气体报警控制器", host="127.0.0.1", port=free_port())
    channel = Channel.objects.create(
        device=device, tag="GT-101", name="罐区可燃气体", address=1, quantity="combustible_gas", unit="%LEL"
    )
    return device, channel


def _raise(world, device, channel, kind: str) -> int:
    from alerts.services import alert_raise

    return alert_raise(
        enterprise=world.here, device=device, channel=channel, kind=kind, level=2, message=f"GT-101 {kind}", value=30
    ).pk


def test_a_screen_connected_through_a_redis_outage_gets_every_alert_raised_meanwhile_exactly_once(
    world, redis, daphne, settings
):
    # This process pushes (alert_raise -> regulator.realtime) through the same private Redis.
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {"hosts": [redis.url]}}
    }
    device, channel = _gas_channel(world)
    screen = Screen(daphne, session_key(world.inspector))
    try:
        wait_until(lambda: "snapshot" in screen.kinds(), timeout=30, what="the first snapshot")
        before = _raise(world, device, channel, "high")
        wait_until(lambda: before in screen.alert_ids, timeout=10, what="the push with Redis up")

        redis.stop()
        during = [_raise(world, device, channel, kind) for kind in ("high_high", "low", "stale")]
        # Daphne's probe notices the outage (and the screen could poll meanwhile); the pushes of
        # the outage are lost.
        wait_until(lambda: "degraded" in screen.kinds(), timeout=15, what="the screen to be told of the outage")
        assert not set(during) & set(screen.alert_ids)

        restarted = time.monotonic()
        redis.start()  # empty: no persistence, no group memberships
        wait_until(lambda: "resync" in screen.kinds(), timeout=20, what="resync after Redis returned")
        told_after = time.monotonic() - restarted
        wait_until(lambda: set(during) <= set(screen.alert_ids), timeout=10, what="the missed alerts")
        assert told_after < 10
        counts = Counter(screen.alert_ids)
        assert [counts[pk] for pk in [before, *during]] == [1, 1, 1, 1]

        # The socket is in its groups again: the next alert is pushed as usual.
        after = _raise(world, device, channel, "low_low")
        wait_until(lambda: after in screen.alert_ids, timeout=10, what="a push after the outage")
        assert Counter(screen.alert_ids)[after] == 1
    finally:
        screen.close()


@pytest.mark.parametrize("daphne", [5000], indirect=True)
def test_a_redis_restart_shorter_than_the_probe_interval_still_resyncs_the_screen(world, redis, daphne, settings):
    """Killed and started again at once (a quick restart): the probe may never see it fail, but
    Daphne's subscriber connection had to reconnect, so the pushes of that moment may be lost."""
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {"hosts": [redis.url]}}
    }
    device, channel = _gas_channel(world)
    screen = Screen(daphne, session_key(world.inspector))
    try:
        wait_until(lambda: "snapshot" in screen.kinds(), timeout=30, what="the first snapshot")
        # The first heartbeat (2 s): the watch's first probe (at connect) is long done, the next
        # one is 3 s away, and the restart below falls between them.
        wait_until(lambda: "heartbeat" in screen.kinds(), timeout=10, what="the first heartbeat")
        redis.stop()
        lost = _raise(world, device, channel, "high")  # its push fails: nothing listens
        redis.start()
        wait_until(lambda: "resync" in screen.kinds(), timeout=20, what="resync after the quick restart")
        wait_until(lambda: lost in screen.alert_ids, timeout=10, what="the alert of the restart")
        assert Counter(screen.alert_ids)[lost] == 1
    finally:
        screen.close()
