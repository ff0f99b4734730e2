"""The rig of the safety-path fault tests that run the real poller: a private PostgreSQL cluster
migrated once per module, and per test a copy of its database, a Modbus server, a private Redis and
the ``poll_devices`` process to start (see tests/faults/linkage_support.py)."""

from __future__ import annotations

import pytest

from tests.faultkit import PrivateRedis
from tests.faults.linkage_support import ModbusServer, PollerProcess, clone, make_world, migrated_postgres


@pytest.fixture(scope="module")
def pg():
    cluster = migrated_postgres()
    yield cluster
    cluster.close()


@pytest.fixture
def rig(pg, tmp_path, request):
    """(cluster, database name, Modbus server, the world's ids, Redis, poller); the poller is not
    started. What a test stopped is started again before the next one."""
    dbname = f"fault_{request.node.name[:40].lower()}"
    dsn = clone(pg, dbname)
    modbus = ModbusServer().start()
    world = make_world(dsn, modbus_port=modbus.port, period_ms=getattr(request.module, "PERIOD_MS", 100))
    redis = PrivateRedis()
    redis.start()
    poller = PollerProcess(dsn=dsn, redis_url=redis.url, data_dir=tmp_path)
    yield pg, dbname, modbus, world, redis, poller
    poller.stop()
    if not pg.running():
        pg.start()
    redis.stop()
    modbus.stop()
