"""Alert fixtures: a gas detector on the enterprise 'here' with a default combustible-gas rule."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from alerts import runtime as runtime_module
from alerts.models import AlertRule
from devices.hooks import ReadingEvent
from devices.models import Channel, Device
from tests.alerts.e2e_support import processes  # noqa: F401 - the real-process fixture of the e2e tests


@pytest.fixture(autouse=True)
def _alert_settings(settings):
    settings.ALERT_RUNTIME_BACKGROUND = False
    settings.ALERT_RULE_REFRESH_SECONDS = 0
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # The world fixture creates six users; the production hasher (PBKDF2-SM3) costs ~0.5 s each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def rt(db):
    """A fresh runtime per test (the module-level one is what the sinks call)."""
    fresh = runtime_module.AlertRuntime()
    old = runtime_module.runtime
    runtime_module.runtime = fresh
    yield fresh
    fresh.stop()
    runtime_module.runtime = old


@pytest.fixture
def gas(world):
    device = Device.objects.create(enterprise=world.here, name="可燃气体报警控制器", host="127.0.0.1", port=15020)
    channel = Channel.objects.create(
        device=device, tag="GT-101", name="罐区可燃气体", address=1, quantity="combustible_gas", unit="%LEL"
    )
    rule = AlertRule.objects.create(
        name="可燃气体默认",
        quantity="combustible_gas",
        high=20,
        high_high=50,
        deadband=2,
        level_high=2,
        level_high_high=1,
        stale_after_s=30,
    )
    return type("Gas", (), {"device": device, "channel": channel, "rule": rule})


@pytest.fixture
def other_gas(world):
    device = Device.objects.create(enterprise=world.there, name="张家港气体控制器", host="127.0.0.1", port=15021)
    channel = Channel.objects.create(
        device=device, tag="GT-201", name="装置区可燃气体", address=1, quantity="combustible_gas", unit="%LEL"
    )
    return type("Gas", (), {"device": device, "channel": channel})


def reading(channel, value, at: datetime | None = None, good=True, quality="good"):
    return ReadingEvent(
        channel_id=channel.pk,
        device_id=channel.device_id,
        value=value,
        good=good,
        quality=quality,
        received_at=at or datetime.now(UTC),
    )
