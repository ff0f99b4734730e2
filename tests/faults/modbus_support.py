"""A small Modbus slave of the fault suite's own, that misbehaves on purpose.

One register/coil image per unit, served over TCP (MBAP) on loopback or as RTU on a pseudo-terminal.
``misbehave(request)`` chooses, per request, what to answer: the right reply or a wrong function
code, unit id, transaction id, byte count or register count, a truncated frame, silence, or an
exception; ``illegal`` addresses answer exception 02 to any read that covers them. Every request
is logged (``requests``) so a test can see what the poller asked for. ``LibmodbusRtuSlave``
receives like a libmodbus slave; ``Capture`` records what the poller hands to the reading hook and
to its writer.
"""

from __future__ import annotations

import asyncio
import os
import struct
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass

from pymodbus.framer import FramerRTU

GOOD = "good"


@dataclass(frozen=True)
class Request:
    unit: int
    fc: int
    address: int
    count: int  # (for FC05: the raw value written)
    tid: int = 0
    at: float = 0.0  # time.monotonic() of its arrival


def crc(frame: bytes) -> bytes:
    return FramerRTU.compute_CRC(frame).to_bytes(2, "big")


async def until(condition: Callable[[], object], *, timeout: float, what: str, interval: float = 0.02):
    """Await until ``condition()`` is truthy (returned); fail saying what was awaited."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        await asyncio.sleep(interval)
    return result


class FaultySlave:
    """The Modbus logic (no framing): a reply PDU (with the unit and transaction to put in its
    frame) for a request, or None for silence."""

    def __init__(self, units=(1,), size: int = 200):
        self.registers = {u: [0] * size for u in units}
        self.inputs = {u: [0] * size for u in units}
        self.coils = {u: [False] * 64 for u in units}
        self.illegal: set[int] = set()
        self.misbehave: Callable[[Request], str] = lambda request: GOOD
        self.requests: list[Request] = []
        self.modes: list[str] = []  # what each request was answered with

    def reply(self, request: Request) -> tuple[bytes, int, int] | None:
        self.requests.append(request)
        unit, fc, address, count = request.unit, request.fc, request.address, request.count
        mode = self.misbehave(request) if unit in self.registers else "silence"
        self.modes.append(mode)
        if mode == "silence":
            return None
        if fc == 5:
            return self._write_coil(request, mode)
        if fc not in (1, 3, 4):
            return bytes([fc | 0x80, 1]), unit, request.tid
        span = range(address, address + (1 if fc == 5 else count))
        if mode == "exception" or (fc != 1 and self.illegal.intersection(span)) or span.stop > 200:
            return bytes([fc | 0x80, 2]), unit, request.tid
        if fc == 1:
            bits = self.coils[unit][address : address + count]
            if mode == "wrong_fc":
                fc = 2
            packed = bytes(sum(1 << i for i, b in enumerate(bits[j : j + 8]) if b) for j in range(0, len(bits), 8))
            return bytes([fc, len(packed)]) + packed, unit, request.tid
        table = self.inputs if fc == 4 else self.registers
        words = table[unit][address : address + count]
        if mode == "wrong_fc":  # the other register table's values, with its function code
            fc = 7 - fc
            words = (self.registers if fc == 3 else self.inputs)[unit][address : address + count]
        elif mode == "more":  # a register count that is not the requested one (byte count consistent)
            words = [0xDEAD, *words]
        elif mode == "fewer":
            words = words[:-1]
        body = b"".join(struct.pack(">H", w & 0xFFFF) for w in words)
        byte_count = len(body)
        out_unit, out_tid = unit, request.tid
        if mode == "byte_count":  # claims a register less than it carries
            byte_count -= 2
        elif mode == "truncated":  # claims what was asked, carries half of it
            body = body[: len(body) // 2]
        elif mode == "wrong_unit":
            out_unit = (unit + 7) % 256
        elif mode == "tid0":
            out_tid = 0
        return bytes([fc, byte_count]) + body, out_unit, out_tid

    def _write_coil(self, request: Request, mode: str) -> tuple[bytes, int, int]:
        unit, address, raw = request.unit, request.address, request.count
        if mode == "exception" or address in self.illegal:
            return bytes([0x85, 2]), unit, request.tid
        self.coils[unit][address] = raw == 0xFF00
        if mode == "wrong_address":
            address += 1
        elif mode == "wrong_value":
            raw = 0x0000 if raw == 0xFF00 else 0xFF00
        echo = struct.pack(">BHH", 5, address, raw)
        return (echo[:3] if mode == "truncated" else echo), unit, request.tid


class FaultyTcpServer:
    """``FaultySlave`` over Modbus TCP on 127.0.0.1:``port``."""

    def __init__(self, slave: FaultySlave, port: int):
        self.slave, self.port = slave, port
        self.server: asyncio.Server | None = None
        self.transports: list[asyncio.Transport] = []

    async def start(self) -> FaultyTcpServer:
        self.server = await asyncio.get_running_loop().create_server(lambda: _TcpProtocol(self), "127.0.0.1", self.port)
        return self

    def drop_connections(self) -> None:
        for transport in self.transports:
            transport.abort()
        self.transports.clear()

    async def stop(self) -> None:
        self.drop_connections()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


class _TcpProtocol(asyncio.Protocol):
    def __init__(self, owner: FaultyTcpServer):
        self.owner, self.buf = owner, b""

    def connection_made(self, transport):
        self.transport = transport
        self.owner.transports.append(transport)

    def data_received(self, data):
        self.buf += data
        while len(self.buf) >= 12:
            tid, _pid, length, unit = struct.unpack(">HHHB", self.buf[:7])
            if len(self.buf) < 6 + length:
                return
            pdu, self.buf = self.buf[7 : 6 + length], self.buf[6 + length :]
            fc, address, count = struct.unpack(">BHH", pdu[:5])
            out = self.owner.slave.reply(Request(unit, fc, address, count, tid, time.monotonic()))
            if out is not None:
                body, out_unit, out_tid = out
                self.transport.write(struct.pack(">HHHB", out_tid, 0, len(body) + 1, out_unit) + body)


class PtyRtuSlave:
    """``FaultySlave`` as RTU slaves on one serial line: a pseudo-terminal whose other end is the
    poller's port (``path``, a symlink). Requests are 8-byte frames (FC01-06).

    ``swallow_after`` (a unit): like a libmodbus slave, after a request to that (absent) unit the
    next frame on the line is taken for that unit's reply and ignored. ``late`` (unit -> seconds):
    that unit answers after the delay, byte by byte (``char_s`` apart), so its reply is still on
    the line when the master has given up.
    """

    def __init__(self, slave: FaultySlave, path, *, swallow_after: int | None = None, late=None, char_s=0.002):
        self.slave, self.path = slave, path
        self.swallow_after, self.late, self.char_s = swallow_after, dict(late or {}), char_s
        self.swallowing = False
        self.swallowed: list[Request] = []
        self.buf = b""
        self.fd = self.peer = -1
        self.gaps: list[float] = []  # per request: seconds since the last byte on the line before it
        self.last_byte = 0.0
        self._tasks: set[asyncio.Task] = set()

    def open(self) -> PtyRtuSlave:
        self.fd, self.peer = os.openpty()
        tty.setraw(self.fd)
        tty.setraw(self.peer)
        os.set_blocking(self.fd, False)
        if self.path.is_symlink() or self.path.exists():
            self.path.unlink()
        self.path.symlink_to(os.ttyname(self.peer))
        asyncio.get_running_loop().add_reader(self.fd, self._readable)
        return self

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.fd >= 0:
            asyncio.get_running_loop().remove_reader(self.fd)
            for fd in (self.fd, self.peer):
                os.close(fd)
            self.fd = self.peer = -1
        if self.path.is_symlink():
            self.path.unlink()

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 4096)
        except OSError:
            return
        now = time.monotonic()
        if not self.buf:
            self.gaps.append(now - self.last_byte)
        self.last_byte = now
        self.buf += data
        while len(self.buf) >= 8:
            frame, self.buf = self.buf[:8], self.buf[8:]
            if crc(frame[:6]) != frame[6:]:
                self.buf = b""  # lost sync: drop what is buffered
                return
            unit, fc, address, count = struct.unpack(">BBHH", frame[:6])
            request = Request(unit, fc, address, count, 0, now)
            if self.swallowing:  # "the reply of the absent unit"
                self.swallowing = False
                self.swallowed.append(request)
                continue
            if unit == self.swallow_after:
                self.swallowing = True
            out = self.slave.reply(request)
            if out is None:
                continue
            body, out_unit, _tid = out
            frame_out = bytes([out_unit]) + body
            frame_out += crc(frame_out)
            if unit in self.late:
                task = asyncio.get_running_loop().create_task(self._trickle(frame_out, self.late[unit]))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            else:
                self._write(frame_out)

    def _write(self, data: bytes) -> None:
        self.last_byte = time.monotonic()
        try:
            os.write(self.fd, data)
        except OSError:
            pass

    async def _trickle(self, frame: bytes, delay: float) -> None:
        await asyncio.sleep(delay)
        for i in range(len(frame)):
            self._write(frame[i : i + 1])
            await asyncio.sleep(self.char_s)


def _meta_length(function: int, confirmation: bool) -> int:
    """libmodbus' compute_meta_length_after_function."""
    if not confirmation:
        if function <= 6:
            return 4
        if function in (15, 16):
            return 5
        if function == 22:
            return 6
        if function == 23:
            return 9
        return 0
    if function in (5, 6, 15, 16):
        return 4
    if function == 22:
        return 6
    return 1


def _data_length(msg: bytes, confirmation: bool) -> int:
    """libmodbus' compute_data_length_after_meta (plus the CRC)."""
    function = msg[1]
    if not confirmation:
        length = msg[6] if function in (15, 16) else msg[10] if function == 23 else 0
    else:
        length = msg[2] if function <= 4 or function in (17, 23) else 0
    return length + 2


class LibmodbusRtuSlave:
    """An RTU slave (``unit``) that receives the way libmodbus 3.1 does (``modbus_receive`` on an
    RTU server), on a pseudo-terminal whose other end is the poller's port (``path``).

    libmodbus does not frame by line silence: it reads the slave and function code, then as many
    bytes as that function's message should have, with ``byte_timeout`` between bytes. A message
    for another slave is dropped before its CRC is checked, and then the next message is read as
    that slave's reply (a "confirmation", with ``response_timeout`` for its first byte) and
    ignored, whatever it is. Errors (bad CRC, timeouts) are dropped and reading goes on.
    """

    def __init__(self, slave: FaultySlave, path, *, unit: int = 1, response_timeout=0.1, byte_timeout=0.1):
        self.slave, self.path, self.unit = slave, path, unit
        self.response_timeout, self.byte_timeout = response_timeout, byte_timeout
        self.buf = b""
        self.fd = self.peer = -1
        self.event = asyncio.Event()
        self.ignored: list[bytes] = []  # what it read as another slave's reply
        self.errors = 0
        self.gaps: list[float] = []  # per burst of bytes from the master: seconds of silence before it
        self.last_byte = 0.0
        self.task: asyncio.Task | None = None

    def open(self) -> LibmodbusRtuSlave:
        self.fd, self.peer = os.openpty()
        tty.setraw(self.fd)
        tty.setraw(self.peer)
        os.set_blocking(self.fd, False)
        if self.path.is_symlink() or self.path.exists():
            self.path.unlink()
        self.path.symlink_to(os.ttyname(self.peer))
        loop = asyncio.get_running_loop()
        loop.add_reader(self.fd, self._readable)
        self.task = loop.create_task(self._serve())
        return self

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.fd >= 0:
            asyncio.get_running_loop().remove_reader(self.fd)
            for fd in (self.fd, self.peer):
                os.close(fd)
            self.fd = self.peer = -1
        if self.path.is_symlink():
            self.path.unlink()

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 4096)
        except OSError:
            return
        now = time.monotonic()
        self.gaps.append(now - self.last_byte)
        self.last_byte = now
        self.buf += data
        self.event.set()

    async def _recv(self, n: int, timeout: float | None) -> bytes | None:
        if not self.buf:
            self.event.clear()
            try:
                await asyncio.wait_for(self.event.wait(), timeout)
            except TimeoutError:
                return None
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    async def _receive(self, confirmation: bool) -> tuple[int, bytes]:
        timeout = self.response_timeout if confirmation else None
        msg, to_read, step = b"", 2, "function"
        while to_read:
            data = await self._recv(to_read, timeout)
            if data is None:
                return -1, msg  # ETIMEDOUT: what was read is dropped
            msg += data
            to_read -= len(data)
            if to_read == 0 and step == "function":
                to_read = _meta_length(msg[1], confirmation)
                step = "meta"
                if to_read == 0:
                    to_read, step = _data_length(msg, confirmation), "data"
            elif to_read == 0 and step == "meta":
                to_read, step = _data_length(msg, confirmation), "data"
            if len(msg) + to_read > 256:
                return -1, msg
            timeout = self.byte_timeout
        if msg[0] != self.unit and msg[0] != 0:
            return 0, msg  # "Request for slave N ignored"
        if crc(msg[:-2]) != msg[-2:]:
            return -1, msg  # EMBBADCRC
        return len(msg), msg

    async def _serve(self) -> None:
        confirmation_to_ignore = False
        while True:
            if confirmation_to_ignore:
                _rc, msg = await self._receive(True)
                confirmation_to_ignore = False
                self.ignored.append(msg)
                continue
            rc, msg = await self._receive(False)
            if rc == 0:
                confirmation_to_ignore = True
                continue
            if rc < 0 or len(msg) != 8:
                self.errors += 1
                continue
            unit, fc, address, count = struct.unpack(">BBHH", msg[:6])
            out = self.slave.reply(Request(unit, fc, address, count, 0, time.monotonic()))
            if out is not None:
                body, out_unit, _tid = out
                frame = bytes([out_unit]) + body
                self.last_byte = time.monotonic()
                os.write(self.fd, frame + crc(frame))


class Capture:
    """What the poller hands to the reading hook and to its writer, per channel, in order."""

    def __init__(self, p):
        self.hook: dict[int, list[tuple]] = {}
        self.written: dict[int, list[tuple]] = {}
        p.reading_hook = self._readings
        if p.writer is not None:
            submit, fold = p.writer.submit, p.writer.fold_reads

            def submit_spy(events):
                for ev in events:
                    self.written.setdefault(ev.channel_id, []).append((ev.value, ev.quality))
                return submit(events)

            def fold_spy(reads):
                readings = fold(reads)
                for cid, value, quality in zip(readings.channel_ids, readings.values, readings.qualities, strict=True):
                    self.written.setdefault(cid, []).append((value, quality))
                return readings

            p.writer.submit, p.writer.fold_reads = submit_spy, fold_spy

    def _readings(self, readings) -> None:
        if hasattr(readings, "channel_ids"):  # a batch of good block reads
            rows = zip(readings.channel_ids, readings.values, readings.qualities, strict=True)
        else:
            rows = ((ev.channel_id, ev.value, ev.quality) for ev in readings)
        for cid, value, quality in rows:
            self.hook.setdefault(cid, []).append((value, quality))


async def start(p, specs):
    from devices.poller.daemon import DeviceWorker

    workers = []
    for spec in specs:
        worker = DeviceWorker(spec, p)
        p.workers[spec.id] = worker
        worker.start()
        workers.append(worker)
    return workers
