"""The alert writer keeps its database connection between bursts; a stale one (PostgreSQL restarted
meanwhile) is replaced and the alert written on a second try, never lost."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from alerts.models import Alert
from tests.alerts.conftest import reading

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_stale_connection_is_replaced_and_the_alert_written(rt, gas, monkeypatch):
    calls = []
    real = rt._apply_one

    def flaky(change, **kw):
        calls.append(change)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(change, **kw)

    monkeypatch.setattr(rt, "_apply_one", flaky)
    rt.on_readings([reading(gas.channel, 30)])
    assert len(calls) == 2
    alert = Alert.objects.get(channel=gas.channel, kind="high")
    assert alert.state == "active_unack" and alert.value == 30


def test_other_errors_are_logged_not_retried(rt, gas, monkeypatch, caplog):
    calls = []

    def broken(change, **kw):
        calls.append(change)
        raise ValueError("bad change")

    monkeypatch.setattr(rt, "_apply_one", broken)
    rt.on_readings([reading(gas.channel, 30)])
    assert len(calls) == 1
    assert not Alert.objects.exists()
    assert "could not record" in caplog.text


def test_a_batch_of_the_poller_raises_the_same_alert_as_single_events(rt, gas):
    """The poller hands good block reads over as ``Readings`` (columns): the runtime reads them as
    rows, and the alert is the one a list of events raises."""
    from devices.hooks import Readings

    ev = reading(gas.channel, 30)
    batch = Readings(
        [(ev.device_id, ev.received_at.timestamp(), 1, object())], [ev.channel_id], [30.0], ["good"], [True]
    )
    assert list(batch) == [ev._replace(value=30.0)]
    rt.on_readings(batch)
    alert = Alert.objects.get(channel=gas.channel, kind="high")
    assert alert.state == "active_unack" and alert.value == 30
