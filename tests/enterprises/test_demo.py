import random
from datetime import datetime
from io import StringIO

from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.utils import timezone

from enterprises import demo, uscc
from enterprises.models import Enterprise, Licence, MajorHazardInstallation
from regulator.management.commands.seed_demo import DemoContext
from regulator.models import User


def _run(seed=7, n=40):
    ctx = DemoContext(
        rng=random.Random(seed),
        seed=seed,
        enterprises=n,
        now=datetime(2026, 11, 29, 8, 0, tzinfo=timezone.get_current_timezone()),
        stdout=StringIO(),
        style=None,
    )
    demo.seed(ctx)
    return ctx


def _snapshot():
    return list(Enterprise.objects.order_by("uscc").values_list("uscc", "name", "region__code", "industry__code"))


def test_seed_is_realistic_and_deterministic(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    sid = transaction.savepoint()
    ctx = _run()
    first = _snapshot()
    logins = list(ctx.logins)
    assert len(first) == 40
    assert all(uscc.validate(code) == code for code, *_ in first)
    assert all(code.startswith(("91320581", "91320582", "91320585")) for code, *_ in first)
    assert Licence.objects.exists() and MajorHazardInstallation.objects.exists()
    sample = Enterprise.objects.exclude(principal_phone="").first()
    assert len(sample.principal_phone) == 11
    assert ctx.shared["county"].code == "320581" and len(ctx.shared["enterprises"]) == 40
    assert {u.username for u in ctx.shared["inspectors"]} >= {"cs_inspector1", "zjg_inspector1"}
    for username, password, _desc in logins:
        user = User.objects.get(username=username)
        assert user.check_password(password)
        assert username.lower() not in password.lower() and len(password) >= 8
        validate_password(password)  # length, common, numeric (history validators need no user)
    roles = set(User.objects.values_list("role", flat=True))
    assert roles >= {"inspector", "section_head", "regulator_admin", "park_manager", "enterprise_user"}
    assert roles >= {"system_admin", "security_admin", "auditor"}
    officer = User.objects.get(username="ent1_officer")
    granted = Enterprise.objects.get(pk=_granted(officer))
    assert officer.has_perm("enterprises.view_enterprise", granted)
    assert granted.major_hazards.exists() and granted.park_id
    transaction.savepoint_rollback(sid)
    assert not Enterprise.objects.exists()
    second_ctx = _run()
    assert _snapshot() == first
    assert second_ctx.logins == logins


def _granted(user):
    from guardian.shortcuts import get_objects_for_user

    return get_objects_for_user(user, "enterprises.view_enterprise", klass=Enterprise).get().pk
