"""The reply check: a Modbus reply is a value only when it answers the request it came for.

Frames are decoded by pymodbus' own TCP and RTU framers with the poller's decoder, as on the wire.
"""

from __future__ import annotations

import struct

import pytest
from pymodbus.framer import FramerRTU, FramerSocket

from devices.choices import Quality
from devices.poller.decode import Block, split_block
from devices.poller.replies import (
    CheckedDecoder,
    CheckedSocketFramer,
    GarbageReply,
    echo_fault,
    expected_size,
    reply_fault,
)
from tests.devices.helpers import ch


def mbap(pdu: bytes, unit: int = 1, tid: int = 7) -> bytes:
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


def rtu(pdu: bytes, unit: int = 1) -> bytes:
    frame = bytes([unit]) + pdu
    return frame + FramerRTU.compute_CRC(frame).to_bytes(2, "big")


def registers(*words: int, fc: int = 3, byte_count: int | None = None) -> bytes:
    body = b"".join(struct.pack(">H", w) for w in words)
    return bytes([fc, len(body) if byte_count is None else byte_count]) + body


def tcp_reply(frame: bytes, unit: int = 1, tid: int = 7):
    framer = FramerSocket(CheckedDecoder())
    used, pdu = framer.handleFrame(frame, unit, tid)
    assert used == len(frame)
    return pdu


def fault(reply, fc=3, unit=1, size=2, tid=7):
    data = reply.bits if fc in (1, 2) else reply.registers
    return reply_fault(reply, data, fc, unit, size, tid)


def test_a_matching_reply_is_good():
    reply = tcp_reply(mbap(registers(11, 22)))
    assert reply.registers == [11, 22]
    assert fault(reply) is None


def test_fc04_to_an_fc03_request_is_garbage():
    reply = tcp_reply(mbap(registers(11, 22, fc=4)))
    assert reply.registers == [11, 22]  # well formed: only the function code gives it away
    assert fault(reply, fc=3) == Quality.GARBAGE


def test_a_tcp_reply_of_another_unit_is_handed_on_as_garbage_and_of_another_transaction_dropped():
    framer = CheckedSocketFramer(CheckedDecoder())
    _, reply = framer.handleFrame(mbap(registers(1, 2), unit=5), 1, 7)
    assert isinstance(reply, GarbageReply) and fault(reply) == Quality.GARBAGE
    _, reply = framer.handleFrame(mbap(registers(1, 2), tid=6), 1, 7)
    assert reply is None  # a late reply to the request before: the right one may still come


def test_another_unit_or_transaction_is_garbage():
    # pymodbus drops these when it checks (unit and transaction non-zero): here they got through.
    assert fault(tcp_reply(mbap(registers(1, 2), unit=5), unit=0)) == Quality.GARBAGE
    assert fault(tcp_reply(mbap(registers(1, 2), tid=0))) == Quality.GARBAGE
    assert fault(tcp_reply(mbap(registers(1, 2))), tid=8) == Quality.GARBAGE


@pytest.mark.parametrize(
    "pdu",
    [
        registers(1, 2, byte_count=2),  # says one register, carries two
        registers(1, 2, byte_count=6),  # says three, carries two (pymodbus raises in the transport)
        registers(1, 2, byte_count=3),  # odd: half a register
        registers(1),  # one register where two were asked
        registers(1, 2, 3),  # three
        bytes([3]),  # no byte count at all
    ],
    ids=["short-count", "long-count", "odd-count", "fewer", "more", "empty"],
)
def test_wrong_byte_or_register_count_is_garbage(pdu):
    assert fault(tcp_reply(mbap(pdu))) == Quality.GARBAGE


def test_exception_to_this_request_is_an_exception_and_to_another_garbage():
    assert fault(tcp_reply(mbap(bytes([0x83, 2])))) == Quality.EXCEPTION
    assert fault(tcp_reply(mbap(bytes([0x84, 2])))) == Quality.GARBAGE  # an exception to FC04
    assert fault(tcp_reply(mbap(bytes([0x83])))) == Quality.GARBAGE  # no exception code
    assert fault(tcp_reply(mbap(bytes([0x83, 2]), unit=0), unit=0), unit=0) == Quality.EXCEPTION


def test_undecodable_frames_become_garbage_replies_not_errors():
    for pdu in (bytes([0x41, 1, 2]), bytes([0x80, 1]), bytes([0x2B, 0xFF])):
        reply = tcp_reply(mbap(pdu))
        assert isinstance(reply, GarbageReply) or reply.function_code != 3
        assert fault(reply) == Quality.GARBAGE


def test_bits_byte_count_must_match_the_requested_bits():
    size = expected_size("coil", 10)  # 10 coils: 2 bytes, 16 bits
    assert size == 16
    good = tcp_reply(mbap(bytes([1, 2, 0b101, 0])))
    assert fault(good, fc=1, size=size) is None and good.bits[:3] == [True, False, True]
    assert fault(tcp_reply(mbap(bytes([1, 1, 0b101]))), fc=1, size=size) == Quality.GARBAGE
    assert fault(tcp_reply(mbap(bytes([1, 3, 0b101, 0]))), fc=1, size=size) == Quality.GARBAGE
    assert fault(tcp_reply(mbap(bytes([2, 2, 0b101, 0]))), fc=1, size=size) == Quality.GARBAGE


def test_rtu_frames_are_checked_the_same():
    framer = FramerRTU(CheckedDecoder())
    _, reply = framer.handleFrame(rtu(registers(5, 6, fc=4)), 1, 0)
    assert fault(reply, fc=3, tid=0) == Quality.GARBAGE
    _, reply = framer.handleFrame(rtu(registers(5, 6)), 1, 0)
    assert fault(reply, tid=0) is None
    _, reply = framer.handleFrame(rtu(registers(5, 6, byte_count=3)[:-1]), 1, 0)
    assert fault(reply, tid=0) == Quality.GARBAGE


def test_coil_write_echo_must_echo_address_and_value():
    def echo(address, raw, fc=5):
        return tcp_reply(mbap(struct.pack(">BHH", fc, address, raw)))

    assert echo_fault(echo(4, 0xFF00), 4, True, 1, 7) is None
    assert echo_fault(echo(4, 0x0000), 4, False, 1, 7) is None
    assert echo_fault(echo(5, 0xFF00), 4, True, 1, 7) == Quality.GARBAGE  # another coil
    assert echo_fault(echo(4, 0x0000), 4, True, 1, 7) == Quality.GARBAGE  # the other value
    assert echo_fault(echo(4, 0x0001), 4, False, 1, 7) == Quality.GARBAGE  # not a coil value
    assert echo_fault(echo(4, 0xFF00, fc=6), 4, True, 1, 7) == Quality.GARBAGE  # a register write
    assert echo_fault(tcp_reply(mbap(bytes([5, 0, 4]))), 4, True, 1, 7) == Quality.GARBAGE  # truncated
    assert echo_fault(tcp_reply(mbap(bytes([0x85, 2]))), 4, True, 1, 7) == Quality.EXCEPTION


def test_a_refused_block_splits_into_its_runs_then_its_channels():
    a, b, c, d = ch(1, 10), ch(1, 11, data_type="float32"), ch(1, 16), ch(1, 17)
    block = Block(1, "holding", 10, 8, [a, b, c, d])
    runs = split_block(block)
    assert [(p.start, p.count, [x.id for x in p.channels]) for p in runs] == [
        (10, 3, [a.id, b.id]),
        (16, 2, [c.id, d.id]),
    ]
    singles = split_block(runs[0])
    assert [(p.start, p.count) for p in singles] == [(10, 1), (11, 2)]
    assert split_block(singles[0]) == []
    same = Block(1, "holding", 5, 1, [ch(1, 5), ch(1, 5, scale=2.0)])
    assert split_block(same) == []  # two channels of one register: nothing to split


def test_random_bytes_never_raise_and_are_never_taken_for_a_register_reply():
    import random

    rng = random.Random(15)
    decoder = CheckedDecoder()
    for _ in range(5000):
        body = bytes(rng.randrange(256) for _ in range(rng.choice([5, rng.randint(0, 30)])))
        pdu = bytes([rng.choice([1, 2, 3, 4, 5, 0x83, 0x85, rng.randrange(256)])]) + body
        reply = tcp_reply(mbap(pdu))
        assert reply is not None
        if fault(reply, size=2) is None:  # only what really is a reply of two registers to FC03
            assert pdu[0] == 3 and pdu[1] == 4 and len(body) == 5
        FramerRTU(decoder).handleFrame(bytes([1]) + pdu + bytes(2), 1, 0)  # no exception either
