import itertools
import uuid

import pytest

_ip_counter = itertools.count(10)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Keep the SM3 hasher (it is what we test) but cheap; tests that measure it set their own."""
    settings.PASSWORD_SM3_ITERATIONS = 1000


@pytest.fixture
def fresh_ip():
    """A source address no other test (or xdist worker sharing Redis) has used."""

    def make():
        n = next(_ip_counter)
        tag = uuid.uuid4().int
        return f"10.{tag % 250}.{(tag >> 8) % 250}.{n % 250 + 1}"

    return make


def login(client, username, password, ip="127.0.0.1", **extra):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip, **extra)


@pytest.fixture(autouse=True)
def fresh_classification_cache():
    from regulator.security.classification import invalidate_cache

    invalidate_cache()
    yield
    invalidate_cache()
