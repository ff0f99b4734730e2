"""The simulator serves realistic values and scenarios that the poller sees as such."""

from __future__ import annotations

import asyncio
import random

from devices.choices import Quality
from devices.simulator import SimulatedDevice, run_simulation, sim_channel
from tests.devices.helpers import ch, device, free_port, poller, run_workers, stop_workers


def sim(port, channels, quantities):
    rng = random.Random(3)
    return SimulatedDevice(
        device_id=1,
        name="sim",
        protocol="tcp",
        host="127.0.0.1",
        port=port,
        serial_port="",
        baudrate=9600,
        channels=[sim_channel(c, q, rng) for c, q in zip(channels, quantities, strict=True)],
    )


async def run_scenario(scenario, tag=None, seconds=1.5, after=0.2, **kw):
    port = free_port()
    gas = ch(1, 0, tag="GT-101", scale=0.1, range_low=0, range_high=100, sentinels=frozenset({65535}))
    temp = ch(1, 2, tag="TT-101", data_type="float32", range_low=-20, range_high=150)
    dev = sim(port, [gas, temp], ["combustible_gas", "temperature"])
    stop = asyncio.Event()
    simulation = run_simulation([dev], stop=stop, scenario=scenario, tag=tag, after=after, tick=0.05, **kw)
    task = asyncio.create_task(simulation)
    await asyncio.sleep(0.2)
    p, readings, statuses = poller(backoff_base=0.05, backoff_cap=0.1)
    workers = await run_workers(p, [device(1, port, [gas, temp], period=0.05)], seconds)
    await stop_workers(workers)
    stop.set()
    await task
    return gas, temp, readings, statuses


async def test_normal_values_are_plausible_and_noisy():
    gas, temp, readings, _ = await run_scenario("normal")
    gas_values = [r.value for r in readings if r.channel_id == gas.id and r.good]
    temps = [r.value for r in readings if r.channel_id == temp.id and r.good]
    assert gas_values and all(0 <= v < 10 for v in gas_values)
    assert len(set(gas_values)) > 1  # noise, not a constant
    assert temps and all(-20 <= v <= 150 for v in temps)


async def test_gas_leak_ramps_past_the_alarm_limits():
    gas, _temp, readings, _ = await run_scenario("gas-leak", ramp=0.5)
    values = [r.value for r in readings if r.channel_id == gas.id and r.good]
    assert values[0] < 10 and max(values) > 50  # well past the usual 25 %LEL / 50 %LEL limits


async def test_sensor_fault_serves_the_sentinel():
    gas, _temp, readings, _ = await run_scenario("sensor-fault", tag="GT-101")
    assert [r.quality for r in readings if r.channel_id == gas.id][-1] == Quality.SENTINEL


async def test_device_offline_takes_the_server_away():
    # The server goes away while the poller is polling it (not while it connects: a connection
    # accepted during the server's shutdown may outlive it).
    _gas, _temp, readings, statuses = await run_scenario("device-offline", seconds=1.3, after=0.5)
    assert any(s[1] == "offline" for s in statuses)
    assert any(r.quality == Quality.DISCONNECTED for r in readings)


async def test_chatter_hovers_around_the_limit():
    gas, _temp, readings, _ = await run_scenario("chatter", level=25.0)
    late = [r.value for r in readings if r.channel_id == gas.id and r.good][-10:]
    assert min(late) < 25.5 and max(late) > 24.5 and all(20 < v < 30 for v in late)


def test_normal_signals_do_not_trip_rate_of_change_alerts():
    """A quiet plant must look quiet: two minutes of 10 Hz temperature and gas raise no rate alert."""
    import random

    from alerts.engine import Engine, RuleConfig
    from devices.choices import Quantity
    from devices.poller.decode import ChannelSpec
    from devices.simulator import sim_channel

    rng = random.Random(3)
    engine = Engine()
    channels = []
    for i, (quantity, high) in enumerate([(Quantity.TEMPERATURE, 500.0), (Quantity.COMBUSTIBLE_GAS, 100.0)]):
        spec = ChannelSpec(
            id=i,
            device_id=1,
            tag=f"T{i}",
            unit_id=1,
            register_type="holding",
            address=i,
            range_low=0.0,
            range_high=high,
        )
        channels.append(sim_channel(spec, quantity, rng))
        engine.configure(i, RuleConfig(rate_limit=10.0))
    changes = []
    t0 = 1_780_000_000.0
    for step in range(1200):
        now = t0 + step / 10
        for i, channel in enumerate(channels):
            changes += engine.evaluate(i, channel.step(0.1, rng, now), True, now)
    assert changes == []
