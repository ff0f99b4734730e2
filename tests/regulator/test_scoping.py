from enterprises.models import Enterprise
from regulator import scoping


def visible(user):
    return set(scoping.scope(Enterprise.objects.all(), user).values_list("name", flat=True))


def test_inspector_sees_own_county_subtree_only(world):
    assert visible(world.inspector) == {world.here.name, world.here_no_park.name}


def test_city_admin_sees_both_counties(world):
    assert visible(world.city_admin) == {world.here.name, world.here_no_park.name, world.there.name}


def test_park_manager_sees_park_only(world):
    assert visible(world.park_manager) == {world.here.name}


def test_enterprise_user_sees_own_enterprise_only(world):
    assert visible(world.enterprise_user) == {world.here.name}


def test_mlps_roles_and_anonymous_see_nothing(world):
    from django.contrib.auth.models import AnonymousUser

    assert visible(world.auditor) == set()
    assert visible(AnonymousUser()) == set()


def test_scope_through_a_relation(world):
    from enterprises.models import Licence

    Licence.objects.create(
        enterprise=world.here, licence_type="other", number="A1", issued_on="2025-01-01", expires_on="2027-01-01"
    )
    Licence.objects.create(
        enterprise=world.there, licence_type="other", number="B1", issued_on="2025-01-01", expires_on="2027-01-01"
    )
    qs = scoping.scope(Licence.objects.all(), world.inspector, prefix="enterprise__")
    assert list(qs.values_list("number", flat=True)) == ["A1"]
