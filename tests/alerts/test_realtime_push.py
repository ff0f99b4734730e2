"""regulator.realtime from synchronous code (the poller's alert writer, Celery) with a network
channel layer: one long-lived push loop per process (one Redis connection, not one per alert),
the frame serialised once with sent_at, a new loop after a fork, a hung layer times out."""

from __future__ import annotations

import asyncio
import json

import pytest

from regulator import realtime


class RecordingLayer:
    """Stands in for the Redis layers: records the loop each group_send runs on."""

    def __init__(self, hang=False):
        self.sent, self.loops, self.hang = [], set(), hang

    async def group_send(self, group, message):
        self.loops.add(id(asyncio.get_running_loop()))
        if self.hang:
            await asyncio.sleep(60)
        self.sent.append((group, message))


@pytest.fixture
def layer(monkeypatch):
    fake = RecordingLayer()
    monkeypatch.setattr(realtime, "get_channel_layer", lambda: fake)
    monkeypatch.setattr(realtime, "_push_loop", realtime._PushLoop())
    return fake


def test_pushes_share_one_loop_and_carry_the_prepared_frame(layer):
    for i in range(3):
        realtime._send(
            ["region.1", "enterprise.2"], {"type": "alert_raised", "event": "alert.raised", "payload": {"id": i}}
        )
    assert len(layer.sent) == 6 and len(layer.loops) == 1
    group, message = layer.sent[-1]
    assert group == "enterprise.2" and set(message) == {"type", "event", "text"}
    frame = json.loads(message["text"])
    assert frame["type"] == "alert" and frame["alert"] == {"id": 2} and frame["sent_at"]


def test_events_without_a_frame_keep_their_payload(layer):
    realtime._send(["region.1"], {"type": "hazard_updated", "event": "hazard.updated", "payload": {"x": 1}})
    assert layer.sent == [("region.1", {"type": "hazard_updated", "event": "hazard.updated", "payload": {"x": 1}})]


def test_a_forked_child_starts_its_own_loop(layer, monkeypatch):
    realtime._send(["g"], {"type": "alert_raised", "event": "alert.raised", "payload": {}})
    monkeypatch.setattr(realtime.os, "getpid", lambda: -1)
    realtime._send(["g"], {"type": "alert_raised", "event": "alert.raised", "payload": {}})
    assert len(layer.sent) == 2 and len(layer.loops) == 2


def test_a_hung_layer_times_out_and_is_logged(layer, monkeypatch, caplog):
    layer.hang = True
    monkeypatch.setattr(realtime, "PUSH_TIMEOUT_SECONDS", 0.2)
    realtime._send(["g"], {"type": "alert_raised", "event": "alert.raised", "payload": {}})
    assert layer.sent == [] and "push to ['g'] failed" in caplog.text
