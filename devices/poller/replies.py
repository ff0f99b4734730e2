"""Whether a Modbus reply answers the request it came for, and a decoder that never trusts one.

pymodbus 3.16 drops frames of another unit or transaction (the read then times out) and takes a
reply with any function code, and its decoders take the byte count on trust: a short byte count
gives fewer registers, a long one or an odd one raises inside the transport (on TCP that closes the
connection). ``CheckedDecoder`` decodes the replies of the requests the poller sends strictly (the
byte count must match the data that came, or there are no values) and turns anything it cannot
decode into a ``GarbageReply`` rather than an error, as ``CheckedSocketFramer`` does a TCP reply of
another unit; ``reply_fault`` then compares what the request asked for: function code, unit id,
transaction id and the number of values. Anything that does not answer the request is bad quality
``garbage``, never a value.
"""

from __future__ import annotations

import struct

from pymodbus.framer import FramerSocket
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU
from pymodbus.pdu.bit_message import ReadCoilsResponse, WriteSingleCoilResponse
from pymodbus.pdu.register_message import ReadHoldingRegistersResponse
from pymodbus.pdu.utils import unpack_bitstring

from devices.choices import BIT_REGISTERS, Quality, RegisterType

GARBAGE = Quality.GARBAGE.value
EXCEPTION = Quality.EXCEPTION.value

FUNCTION_CODES = {
    RegisterType.COIL: 1,
    RegisterType.DISCRETE: 2,
    RegisterType.HOLDING: 3,
    RegisterType.INPUT: 4,
}
WRITE_COIL = 5
COIL_ON, COIL_OFF = 0xFF00, 0x0000

_WORDS = [struct.Struct(f">{n}H") for n in range(128)]  # a byte count is one byte: at most 127 words


def expected_size(register_type: str, count: int) -> int:
    """How many values a good reply to a read of ``count`` carries: ``count`` registers, or the
    bits of ceil(count / 8) bytes (a bit reply's byte count cannot say more)."""
    return 8 * ((count + 7) // 8) if register_type in BIT_REGISTERS else count


def reply_fault(reply, data, function_code: int, unit_id: int, size: int, tid: int) -> str | None:
    """None when ``reply`` (its values ``data``) answers a read with ``function_code`` to
    ``unit_id`` in transaction ``tid`` with ``size`` values; else ``"exception"`` for an exception
    response to that very request, ``"garbage"`` for anything else.

    The poll loop calls it on every reply (10,000 a second): a few attribute compares.
    """
    if reply.transaction_id == tid and reply.dev_id == unit_id:
        fc = reply.function_code
        if fc == function_code:
            if len(data) == size:
                return None
        elif fc == function_code | 0x80:
            return EXCEPTION
    return GARBAGE


def echo_fault(reply, address: int, value: bool, unit_id: int, tid: int) -> str | None:
    """The same for a single coil write (FC05), whose good reply echoes address and value."""
    if reply.transaction_id == tid and reply.dev_id == unit_id:
        fc = reply.function_code
        if fc == WRITE_COIL:
            if reply.address == address and getattr(reply, "raw_value", None) == (COIL_ON if value else COIL_OFF):
                return None
        elif fc == WRITE_COIL | 0x80:
            return EXCEPTION
    return GARBAGE


def describe(reply, function_code: int, unit_id: int, size: int, tid: int) -> str:
    """What was wrong with a reply, for the log (cold path)."""
    got = getattr(reply, "bits", None) if function_code in (1, 2) else getattr(reply, "registers", None)
    return (
        f"asked fc {function_code} unit {unit_id} tid {tid} for {size} values; got fc "
        f"{getattr(reply, 'function_code', '?')} unit {getattr(reply, 'dev_id', '?')} tid "
        f"{getattr(reply, 'transaction_id', '?')} with {len(got) if got is not None else '?'} values"
        + (f" ({reply.detail})" if isinstance(reply, GarbageReply) else "")
    )


class GarbageReply(ModbusPDU):
    """A frame that did not decode: answers no request (function code 0 is no function)."""

    function_code = 0

    def __init__(self, frame: bytes = b"", detail: str = ""):
        super().__init__()
        self.frame = bytes(frame[:32])
        self.detail = detail


class _Registers(ReadHoldingRegistersResponse):
    def decode(self, data: bytes) -> None:
        # The byte count, then exactly that many bytes of whole registers: else no registers.
        n = len(data) - 1
        if n < 0 or data[0] != n or n & 1:
            self.registers = []
            return
        self.registers = list(_WORDS[n >> 1].unpack_from(data, 1))


class HoldingRegistersReply(_Registers):
    function_code = 3


class InputRegistersReply(_Registers):
    function_code = 4


class _Bits(ReadCoilsResponse):
    def decode(self, data: bytes) -> None:
        n = len(data) - 1
        if n < 0 or data[0] != n:
            self.bits = []
            return
        self.bits = unpack_bitstring(data[1:])


class CoilsReply(_Bits):
    function_code = 1


class DiscreteInputsReply(_Bits):
    function_code = 2


class CoilEchoReply(WriteSingleCoilResponse):
    """FC05's echo, keeping the raw value (0xFF00 / 0x0000; anything else is not an echo)."""

    def decode(self, data: bytes) -> None:
        if len(data) != 4:
            self.address, self.raw_value, self.bits = -1, -1, []
            return
        self.address, self.raw_value = struct.unpack(">HH", data)
        self.bits = [self.raw_value == COIL_ON]


_CHECKED = {
    cls.function_code: cls
    for cls in (CoilsReply, DiscreteInputsReply, HoldingRegistersReply, InputRegistersReply, CoilEchoReply)
}


class CheckedDecoder(DecodePDU):
    """The client's decoder: strict for the replies the poller asks for, never raising (pymodbus
    raises inside the transport for a frame it cannot decode) and without pymodbus' per-frame
    debug string."""

    def __init__(self):
        super().__init__(is_server=False)

    def decode(self, frame: bytes) -> ModbusPDU:
        try:
            fc = frame[0]
            cls = _CHECKED.get(fc)
            if cls is not None:
                pdu = cls()
                pdu.decode(frame[1:])
                return pdu
            if fc & 0x80:
                if len(frame) != 2:
                    return GarbageReply(frame, "exception response of wrong length")
                return ExceptionResponse(fc & 0x7F, frame[1])
        except Exception as exc:  # never an error inside the transport: a garbage reply instead
            return GarbageReply(frame, f"{type(exc).__name__}: {exc}")
        # A function code the poller never asks for: garbage, without decoding (and logging) it.
        return GarbageReply(frame, f"function code {fc}")


class CheckedSocketFramer(FramerSocket):
    """Modbus TCP framing that hands on a reply of another unit (as a ``GarbageReply``) instead of
    dropping it: its transaction id says it answers our request, so waiting for another reply
    would only turn a wrong answer into a timeout. A reply of another transaction (a late reply to
    an earlier request) is still dropped. (On a serial bus a frame of another unit may be another
    slave's late reply: the RTU framer drops it.)"""

    def handleFrame(self, data: bytes, exp_devid: int, exp_tid: int) -> tuple[int, ModbusPDU | None]:
        used, pdu = super().handleFrame(data, 0, exp_tid)
        if pdu is not None and exp_devid and pdu.dev_id != exp_devid:
            garbage = GarbageReply(b"", f"a reply of unit {pdu.dev_id}")
            # (with the unit asked for: pymodbus would raise on another one)
            garbage.dev_id, garbage.transaction_id = exp_devid, pdu.transaction_id
            return used, garbage
        return used, pdu


def install(client) -> None:
    """Give a pymodbus client (before it connects) the checked decoder (and, on TCP, framing)."""
    ctx = client.ctx
    if type(ctx.framer) is FramerSocket:
        ctx.framer = CheckedSocketFramer(CheckedDecoder())
    else:
        ctx.framer.decoder = CheckedDecoder()
