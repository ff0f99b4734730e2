import pytest

from devices.models import Channel, Device


@pytest.fixture
def devices(world):
    """A gateway at each of: the park enterprise (here), the other county (there)."""
    here = Device.objects.create(enterprise=world.here, name="罐区网关", host="127.0.0.1", port=15901)
    there = Device.objects.create(enterprise=world.there, name="外县网关", host="127.0.0.1", port=15902)
    gas_here = Channel.objects.create(
        device=here,
        tag="GT-101",
        name="可燃气体",
        address=0,
        quantity="combustible_gas",
        unit="%LEL",
        range_low=0,
        range_high=100,
    )
    gas_there = Channel.objects.create(device=there, tag="GT-101", name="可燃气体", address=0)
    return {"here": here, "there": there, "gas_here": gas_here, "gas_there": gas_there}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The personas are created and logged in for every test; PBKDF2 would dominate the run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _isolated_hooks(monkeypatch):
    # Other apps (alerts) register sinks at start-up; these tests check the devices side alone.
    from devices import hooks

    monkeypatch.setattr(hooks, "_reading_sinks", [])
    monkeypatch.setattr(hooks, "_status_sinks", [])
    monkeypatch.setattr(hooks, "_poller_sinks", [])
