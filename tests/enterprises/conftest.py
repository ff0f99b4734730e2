from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from rest_framework.test import APIClient

from enterprises import services
from enterprises.models import Industry, Licence
from regulator.choices import Role
from tests import factories as f


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The personas are created with real passwords; PBKDF2 at full strength costs ~0.4 s per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def api():
    def client_for(user=None):
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return client_for


@pytest.fixture
def browser(client):
    def login(user=None):
        client.logout()
        if user is not None:
            client.force_login(user)
        return client

    return login


@pytest.fixture
def industry_2614(db):
    return Industry.objects.get(code="2614")


@pytest.fixture
def staff_inspector(world):
    """An inspector of this county who may open the admin (is_staff + model permissions)."""
    user = f.user("staff_inspector", Role.INSPECTOR, jurisdiction=world.regions["county"], is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="enterprises"))
    return user


@pytest.fixture
def staff_other_inspector(world):
    user = f.user("staff_inspector2", Role.INSPECTOR, jurisdiction=world.regions["other_county"], is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="enterprises"))
    return user


def add_licence(enterprise, number, days_left, licence_type="safety_production"):
    today = timezone.localdate()
    return Licence.objects.create(
        enterprise=enterprise,
        licence_type=licence_type,
        number=number,
        issued_on=today - timedelta(days=1000),
        expires_on=today + timedelta(days=days_left),
    )


def add_installation(enterprise, user=None, *, name="液氯储罐区", people=10, substances=None):
    return services.installation_create(
        enterprise=enterprise,
        user=user,
        data={"name": name, "people_within_500m": people, "custodian_main": "张三"},
        substances=substances
        if substances is not None
        else [{"name": "氯", "substance_class": "specific", "actual_quantity": Decimal("10"), "critical_quantity": 5}],
    )


@pytest.fixture
def snapshotted(world):
    """The dashboard test data with monthly snapshots (and one live sample) for the last 13 months."""
    from enterprises.indicator_snapshots import build_snapshots, recent_months
    from tests.enterprises import dashboard_data as data

    data.build(world)
    build_snapshots(recent_months(13, today=data.TODAY), sample=True, today=data.TODAY)
    return world
