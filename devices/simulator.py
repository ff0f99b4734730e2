"""Modbus simulator for the demo, the tests and the benchmarks.

``SimulatedDevice`` serves one Device row with a pymodbus server (TCP on loopback, or RTU on a
pseudo-terminal pair bridged like socat does). Values follow a mean-reverting random walk with
noise per quantity; scenarios change one channel or device: ``gas-leak`` ramps a combustible-gas
channel past its limits, ``sensor-fault`` serves the sentinel (or NaN), ``device-offline`` stops
the server, ``chatter`` hovers around a limit. Coil writes are accepted and kept.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import tty
from dataclasses import dataclass, field
from pathlib import Path

from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

from devices.choices import BIT_REGISTERS, Protocol, Quantity, RegisterType
from devices.poller.decode import ChannelSpec, engineering_to_raw, raw_to_words

logger = logging.getLogger("devices.simulator")

SCENARIOS = ("normal", "gas-leak", "sensor-fault", "device-offline", "chatter")

# quantity -> (typical value, noise sigma, mean-reversion per second)
_PROFILES = {
    Quantity.COMBUSTIBLE_GAS: (2.0, 0.25, 0.2),
    Quantity.TOXIC_GAS: (1.5, 0.15, 0.2),
    Quantity.PRESSURE: (0.8, 0.01, 0.05),
    Quantity.TEMPERATURE: (35.0, 0.15, 0.01),
    Quantity.LEVEL: (3.0, 0.01, 0.005),
    Quantity.FLOW: (20.0, 0.5, 0.1),
}
DRIFT_FRACTION = 0.1  # process drift per sqrt(second), relative to the measurement noise
_FC_WRITE = {RegisterType.HOLDING: 16, RegisterType.INPUT: 4, RegisterType.COIL: 5, RegisterType.DISCRETE: 2}


@dataclass
class SimChannel:
    spec: ChannelSpec
    quantity: str
    mean: float
    sigma: float
    theta: float
    value: float = 0.0
    scenario: str = "normal"
    scenario_started: float = 0.0
    ramp_seconds: float = 60.0
    level: float | None = None
    process: float | None = None  # the true (slowly drifting) process value behind the noise

    def step(self, dt: float, rng: random.Random, now: float) -> float | None:
        """Advance one tick; None means "serve the fault value"."""
        if self.scenario == "sensor-fault":
            return None
        target = self.mean
        if self.scenario == "gas-leak":
            high = self.spec.range_high if self.spec.range_high is not None else 100.0
            peak = 0.9 * high
            frac = min(1.0, (now - self.scenario_started) / max(self.ramp_seconds, 0.1))
            target = self.mean + (peak - self.mean) * frac
            self.value = target + rng.gauss(0, self.sigma)
        elif self.scenario == "chatter":
            level = self.level if self.level is not None else self._default_limit()
            self.value = level + 0.6 * self.sigma * math.sin(now * 2.1) + rng.gauss(0, 0.3 * self.sigma)
        else:
            # A slowly drifting process value (mean-reverting random walk) seen through white
            # measurement noise: integrating the noise itself made temperatures wander degrees per
            # second and raised rate-of-change alerts on every channel.
            if self.process is None:
                self.process = self.value
            drift = DRIFT_FRACTION * self.sigma
            self.process += self.theta * (target - self.process) * dt + drift * math.sqrt(dt) * rng.gauss(0, 1)
            self.value = self.process + rng.gauss(0, self.sigma)
        low = self.spec.range_low if self.spec.range_low is not None else -math.inf
        high = self.spec.range_high if self.spec.range_high is not None else math.inf
        self.value = min(max(self.value, max(low, 0.0) if self.quantity in _NON_NEGATIVE else low), high)
        return self.value

    def _default_limit(self) -> float:
        if self.quantity == Quantity.COMBUSTIBLE_GAS:
            return 25.0  # the usual 高报 for combustible gas (%LEL)
        high = self.spec.range_high if self.spec.range_high is not None else self.mean * 2
        return 0.8 * high


_NON_NEGATIVE = {Quantity.COMBUSTIBLE_GAS, Quantity.TOXIC_GAS, Quantity.LEVEL, Quantity.FLOW}


def fault_words(spec: ChannelSpec) -> list[int]:
    if spec.sentinels:
        raw = sorted(spec.sentinels)[0]
        if spec.data_type in ("float32", "float64"):
            raw = float(raw)
        return raw_to_words(raw, spec.data_type, spec.byte_order, spec.word_order)
    if spec.data_type in ("float32", "float64"):
        return raw_to_words(float("nan"), spec.data_type, spec.byte_order, spec.word_order)
    return [0xFFFF] * spec.words


@dataclass
class SimulatedDevice:
    """Serves one Device: one pymodbus server, a context per unit id."""

    device_id: int
    name: str
    protocol: str
    host: str
    port: int
    serial_port: str
    baudrate: int
    channels: list[SimChannel]
    server: object | None = None
    offline: bool = False
    bridge: PtyBridge | None = None
    context: ModbusServerContext | None = field(default=None, repr=False)

    def build_context(self) -> ModbusServerContext:
        sizes: dict[int, dict[str, int]] = {}
        for ch in self.channels:
            s = sizes.setdefault(ch.spec.unit_id, {})
            end = ch.spec.address + ch.spec.words
            s[ch.spec.register_type] = max(s.get(ch.spec.register_type, 0), end)
        devices = {}
        for unit, s in sizes.items():
            devices[unit] = ModbusDeviceContext(
                hr=ModbusSequentialDataBlock(1, [0] * max(s.get("holding", 0), 1)),
                ir=ModbusSequentialDataBlock(1, [0] * max(s.get("input", 0), 1)),
                co=ModbusSequentialDataBlock(1, [False] * max(s.get("coil", 0), 16)),
                di=ModbusSequentialDataBlock(1, [False] * max(s.get("discrete", 0), 16)),
            )
        return ModbusServerContext(devices=devices, single=False)

    async def start(self) -> None:
        self.context = self.build_context()
        if self.protocol == Protocol.RTU:
            self.bridge = PtyBridge(Path(self.serial_port))
            server_side = self.bridge.open()
            self.server = ModbusSerialServer(
                self.context, framer=FramerType.RTU, port=server_side, baudrate=self.baudrate, timeout=1
            )
        else:
            self.server = ModbusTcpServer(self.context, address=(self.host, self.port))
        await self.server.serve_forever(background=True)
        self.offline = False

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.shutdown()
            self.server = None
        if self.bridge is not None:
            self.bridge.close()
            self.bridge = None
        self.offline = True

    async def write_values(self, dt: float, rng: random.Random, now: float) -> None:
        if self.server is None:
            return
        core = self.server.context
        for ch in self.channels:
            spec = ch.spec
            if spec.register_type == RegisterType.COIL:
                continue  # coils belong to whoever writes them (linkage)
            value = ch.step(dt, rng, now)
            if spec.register_type in BIT_REGISTERS:
                await core.async_setValues(spec.unit_id, 2, spec.address, [bool(value and value > 0.5)])
                continue
            words = (
                fault_words(spec)
                if value is None
                else raw_to_words(engineering_to_raw(spec, value), spec.data_type, spec.byte_order, spec.word_order)
            )
            await core.async_setValues(spec.unit_id, _FC_WRITE[spec.register_type], spec.address, words)


class PtyBridge:
    """Two pseudo-terminals joined back to back (what ``socat pty,link=A pty,link=B`` does).

    The client side is published as a symlink at ``link`` (the Device's serial_port); the server
    side name is returned by ``open()``.
    """

    def __init__(self, link: Path):
        self.link = Path(link)
        self.fds: list[int] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def open(self) -> str:
        m1, s1 = os.openpty()
        m2, s2 = os.openpty()
        for fd in (s1, s2):
            tty.setraw(fd)
        self.fds = [m1, s1, m2, s2]
        for fd in (m1, m2):
            os.set_blocking(fd, False)
        self.link.parent.mkdir(parents=True, exist_ok=True)
        if self.link.is_symlink() or self.link.exists():
            self.link.unlink()
        self.link.symlink_to(os.ttyname(s2))
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(m1, self._pump, m1, m2)
        self._loop.add_reader(m2, self._pump, m2, m1)
        return os.ttyname(s1)

    @staticmethod
    def _pump(src: int, dst: int) -> None:
        try:
            data = os.read(src, 4096)
        except (BlockingIOError, OSError):
            return
        if data:
            try:
                os.write(dst, data)
            except OSError:
                pass

    def close(self) -> None:
        if self._loop is not None and self.fds:
            for fd in (self.fds[0], self.fds[2]):
                try:
                    self._loop.remove_reader(fd)
                except Exception:
                    logger.debug("remove_reader failed", exc_info=True)
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []
        if self.link.is_symlink():
            self.link.unlink()


def sim_channel(spec: ChannelSpec, quantity: str, rng: random.Random) -> SimChannel:
    mean, sigma, theta = _PROFILES.get(quantity, (1.0, 0.01, 0.1))
    if quantity in (Quantity.PRESSURE, Quantity.TEMPERATURE, Quantity.LEVEL) and spec.range_high:
        mean = (spec.range_low or 0.0) + (spec.range_high - (spec.range_low or 0.0)) * rng.uniform(0.3, 0.6)
        sigma = max(sigma, 0.003 * (spec.range_high - (spec.range_low or 0.0)))
    if quantity == Quantity.STATE:
        mean, sigma, theta = 0.0, 0.0, 1.0
    mean *= rng.uniform(0.8, 1.2)
    return SimChannel(spec=spec, quantity=quantity, mean=mean, sigma=sigma, theta=theta, value=mean)


def load_simulated_devices(queryset, rng: random.Random) -> list[SimulatedDevice]:
    from devices.poller.daemon import channel_spec

    out = []
    for d in queryset.prefetch_related("channels"):
        chans = [sim_channel(channel_spec(c), c.quantity, rng) for c in d.channels.all()]
        if not chans:
            continue
        out.append(
            SimulatedDevice(
                device_id=d.pk,
                name=d.name,
                protocol=d.protocol,
                host=d.host,
                port=d.port,
                serial_port=d.serial_port,
                baudrate=d.baudrate,
                channels=chans,
            )
        )
    return out


async def run_simulation(
    devices: list[SimulatedDevice],
    *,
    stop: asyncio.Event,
    scenario: str = "normal",
    tag: str | None = None,
    device_id: int | None = None,
    after: float = 0.0,
    ramp: float = 60.0,
    duration: float | None = None,
    level: float | None = None,
    tick: float = 0.1,
    seed: int = 1,
) -> None:
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    for dev in devices:
        try:
            await dev.start()
            logger.info(
                "serving %s on %s",
                dev.name,
                dev.serial_port if dev.protocol == Protocol.RTU else f"{dev.host}:{dev.port}",
            )
        except OSError as exc:
            logger.error("cannot serve %s: %s", dev.name, exc)
    target_dev, target_ch = _pick_target(devices, scenario, tag, device_id)
    if scenario != "normal":
        logger.info(
            "scenario %s on %s %s in %.0f s",
            scenario,
            target_dev.name if target_dev else "-",
            target_ch.spec.tag if target_ch else "",
            after,
        )
    t0 = loop.time()
    applied = False
    ended = False
    last = t0
    while not stop.is_set():
        now = loop.time()
        if scenario != "normal" and not applied and now - t0 >= after:
            applied = True
            await _apply(scenario, target_dev, target_ch, now, ramp, level)
        if applied and not ended and duration is not None and now - t0 >= after + duration:
            ended = True
            await _revert(scenario, target_dev, target_ch)
        for dev in devices:
            await dev.write_values(now - last, rng, now)
        last = now
        try:
            await asyncio.wait_for(stop.wait(), timeout=tick)
        except TimeoutError:
            pass
    for dev in devices:
        await dev.stop()


def _pick_target(devices, scenario, tag, device_id):
    if scenario == "normal":
        return None, None
    for dev in devices:
        if device_id is not None and dev.device_id != device_id:
            continue
        for ch in dev.channels:
            if tag and ch.spec.tag != tag:
                continue
            if not tag and scenario in ("gas-leak", "chatter") and ch.quantity != Quantity.COMBUSTIBLE_GAS:
                continue
            return dev, ch
        if scenario == "device-offline" and not tag:
            return dev, None
    raise ValueError(f"no channel/device matches scenario {scenario} (tag={tag!r}, device={device_id!r})")


async def _apply(scenario, dev, ch, now, ramp, level):
    logger.warning("scenario %s starts", scenario)
    if scenario == "device-offline":
        await dev.stop()
        return
    ch.scenario = scenario
    ch.scenario_started = now
    ch.ramp_seconds = ramp
    ch.level = level


async def _revert(scenario, dev, ch):
    logger.warning("scenario %s ends", scenario)
    if scenario == "device-offline":
        await dev.start()
        return
    ch.scenario = "normal"
