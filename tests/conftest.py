from types import SimpleNamespace

import pytest

from regulator.choices import Role
from tests import factories as f


@pytest.fixture(autouse=True, scope="session")
def compiled_poller_loops():
    """Compile (or load from numba's cache) the poller's batch loops once per test process, as the
    daemon does when it starts: compiled inside a test (~2 s on a clean checkout), they would stall
    that test's event loop and shift the timing of its simulated devices."""
    from devices.poller.folding import warm_up

    warm_up()


@pytest.fixture(autouse=True)
def clean_cache(request):
    """Throttle counters and cached figures must not leak from one test into the next."""
    names = request.fixturenames
    uses_db = request.node.get_closest_marker("django_db") or {"db", "transactional_db"} & set(names)
    if not uses_db:  # the demo cache lives in the database; a test without one has no cache state
        yield
        return
    request.getfixturevalue("transactional_db" if "transactional_db" in names else "db")
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Production uses 300k PBKDF2-SM3 iterations; tests only need the same code path."""
    settings.PASSWORD_SM3_ITERATIONS = 1000


@pytest.fixture(autouse=True)
def celery_eager():
    """Tasks run in the test process; the end-to-end tests switch this off for their worker."""
    from regulator.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def alerts_inline(settings, tmp_path):
    """Readings published from a test's event loop are evaluated inline, not on a writer thread; each
    test has its own alert outbox (a change one test leaves queued must not be written into the next)."""
    settings.ALERT_RUNTIME_BACKGROUND = False
    settings.ALERT_OUTBOX_DIR = tmp_path / "alert-outbox"
    settings.CONFIG_SNAPSHOT_DIR = tmp_path / "config-snapshot"  # (and its own configuration snapshots)
    from devices.hooks import set_process_name

    set_process_name("")  # (a poller run by an earlier test named this process)


@pytest.fixture(autouse=True)
def default_language():
    """A test that switches to English (a page in en, a report in en) must not leak it to the next."""
    yield
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture
def world(db):
    """Two counties, a park, enterprises on each side, and every persona."""
    regions = f.region_tree()
    park = f.park(regions["county"])
    here = f.enterprise(regions["township"], park=park, name="常熟甲化工有限公司")
    here_no_park = f.enterprise(regions["county"], name="常熟乙机械有限公司")
    there = f.enterprise(regions["other_county"], name="张家港丙化工有限公司")
    return SimpleNamespace(
        regions=regions,
        park=park,
        here=here,
        here_no_park=here_no_park,
        there=there,
        inspector=f.user("inspector", Role.INSPECTOR, jurisdiction=regions["county"]),
        other_inspector=f.user("inspector2", Role.INSPECTOR, jurisdiction=regions["other_county"]),
        city_admin=f.user("cityadmin", Role.REGULATOR_ADMIN, jurisdiction=regions["city"]),
        park_manager=f.user("parkmgr", Role.PARK_MANAGER, park=park),
        enterprise_user=f.enterprise_user("entuser", here),
        auditor=f.user("auditor", Role.AUDITOR),
    )
