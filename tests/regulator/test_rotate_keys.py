"""rotate_keys: every encrypted field of every model moves to the first FIELD_KEYS key."""

import pytest
from django.core.management import CommandError, call_command

from enterprises.models import Enterprise
from regulator.crypto import keyring
from regulator.models import AuditEntry, User

OLD = "k1:" + "11" * 16
NEW = "k2:" + "22" * 16


def raw(model, pk, column):
    return model.objects.filter(pk=pk).values_list(column, flat=True).get()


@pytest.fixture
def old_values(world, settings):
    settings.FIELD_KEYS = OLD
    world.here.principal_phone = "13800000001"
    world.here.save()
    world.there.safety_officer_phone = "13900000002"
    world.there.save()
    world.inspector.id_number = "320581199001011234"
    world.inspector.save()
    assert raw(Enterprise, world.here.pk, "principal_phone").startswith("k1$")
    return world


def test_rotation_reencrypts_everything_and_is_idempotent(old_values, settings, capsys):
    world = old_values
    settings.FIELD_KEYS = f"{NEW},{OLD}"
    assert keyring().current_id == "k2"
    call_command("rotate_keys", "--batch-size", "1")
    assert raw(Enterprise, world.here.pk, "principal_phone").startswith("k2$")
    assert raw(Enterprise, world.there.pk, "safety_officer_phone").startswith("k2$")
    assert raw(User, world.inspector.pk, "id_number").startswith("k2$")
    settings.FIELD_KEYS = NEW  # the old key can now be retired
    assert Enterprise.objects.get(pk=world.here.pk).principal_phone == "13800000001"
    assert User.objects.get(pk=world.inspector.pk).id_number == "320581199001011234"
    before = raw(Enterprise, world.here.pk, "principal_phone")
    call_command("rotate_keys")
    assert raw(Enterprise, world.here.pk, "principal_phone") == before  # nothing to do twice
    assert AuditEntry.objects.filter(event="crypto.keys_rotated").count() == 2


def test_dry_run_changes_nothing(old_values, settings):
    settings.FIELD_KEYS = f"{NEW},{OLD}"
    call_command("rotate_keys", "--dry-run")
    assert raw(Enterprise, old_values.here.pk, "principal_phone").startswith("k1$")


def test_tampered_value_is_reported_not_skipped(old_values, settings, capsys):
    world = old_values
    token = raw(Enterprise, world.here.pk, "principal_phone")
    Enterprise.objects.filter(pk=world.there.pk).update(
        principal_phone=__import__("regulator.fields", fromlist=["Sealed"]).Sealed(token)
    )  # a ciphertext swapped onto another row
    settings.FIELD_KEYS = f"{NEW},{OLD}"
    with pytest.raises(CommandError) as exc:
        call_command("rotate_keys")
    assert exc.value.returncode == 1
    err = capsys.readouterr().err
    assert f"enterprises.Enterprise pk={world.there.pk} field=principal_phone" in err
    # the good rows were still rotated
    assert raw(Enterprise, world.here.pk, "principal_phone").startswith("k2$")
    assert AuditEntry.objects.filter(event="crypto.decrypt_failed", object_id=str(world.there.pk)).exists()
