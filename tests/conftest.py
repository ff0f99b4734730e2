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


@pytest.fixture
def tamperable(transactional_db):
    """A tamper test plays the attacker who holds the owner's credentials: on PostgreSQL the test
    runs on an owner connection (DATABASE_OWNER_URL when the suite runs as the runtime role) with the
    append-only trigger lifted. Transactional, since that connection is a session of its own."""
    from django.db import connection

    if connection.vendor != "postgresql":
        yield
        return
    from regulator.dbroles import as_owner

    with as_owner() as owner:
        with owner.cursor() as cursor:
            cursor.execute("ALTER TABLE regulator_auditentry DISABLE TRIGGER regulator_auditentry_append_only")
        try:
            yield
        finally:
            with owner.cursor() as cursor:
                cursor.execute("ALTER TABLE regulator_auditentry ENABLE TRIGGER regulator_auditentry_append_only")


@pytest.fixture(autouse=True)
def audit_anchor_dir(settings, tmp_path):
    """Signed audit checkpoints go to the test's own directory, never the checkout's var/."""
    settings.AUDIT_ANCHOR_DIR = tmp_path / "audit-anchors"


def _use_database_role(credentials):
    from django.db import connections

    connections["default"].close()
    connections["default"].settings_dict.update(credentials)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings):
    """With DATABASE_OWNER_URL set (CI), the owner creates and migrates the test database ..."""
    from django.conf import settings

    if settings.DATABASE_OWNER:
        _use_database_role(settings.DATABASE_OWNER)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """... and the suite runs as the runtime role of DATABASE_URL, which owns nothing and may only
    append to the audit log (the owner is back for the flushes and the final DROP DATABASE)."""
    from django.conf import settings

    owner = settings.DATABASE_OWNER
    if not owner:
        yield
        return
    import dj_database_url

    from regulator.dbroles import grant_runtime_role

    runtime = {key: dj_database_url.parse(settings.DATABASE_URL)[key] for key in owner}
    with django_db_blocker.unblock():
        grant_runtime_role(runtime["USER"])
        _use_database_role(runtime)
    yield
    with django_db_blocker.unblock():
        _use_database_role(owner)
