"""EncryptedTextField edge cases: deferred loading, plaintext refused in queries and bulk writes."""

import pytest
from django.db import transaction

from enterprises.models import Enterprise
from regulator.models import AuditEntry


def test_deferred_encrypted_field_loads_and_decrypts(world):
    world.here.principal_phone = "13800000001"
    world.here.save()
    obj = Enterprise.objects.only("name", "uid").get(pk=world.here.pk)
    assert obj.principal_phone == "13800000001"


def test_plaintext_cannot_be_written_with_update_or_bulk_update(world):
    # update() and bulk_update() mark the surrounding transaction for rollback when they fail:
    # each gets its own savepoint so teardown can still use the database.
    with pytest.raises(ValueError, match="encrypted"), transaction.atomic():
        Enterprise.objects.filter(pk=world.here.pk).update(principal_phone="13800000001")
    world.here.principal_phone = "13800000002"
    with pytest.raises(ValueError, match="encrypted"), transaction.atomic():
        Enterprise.objects.bulk_update([world.here], ["principal_phone"])
    with pytest.raises(ValueError, match="encrypted"), transaction.atomic():
        list(Enterprise.objects.filter(principal_phone="13800000002"))


def test_empty_lookups_still_work(world):
    assert Enterprise.objects.filter(principal_phone="").count() == 3


def test_bulk_create_encrypts(world):
    from tests import factories as f

    e = Enterprise(
        uscc=f.make_uscc(), name="批量", region=world.regions["county"], industry=f.industry(), principal_phone="137000"
    )
    Enterprise.objects.bulk_create([e])
    stored = Enterprise.objects.filter(name="批量").values_list("principal_phone", flat=True).get()
    assert "137000" not in stored
    assert Enterprise.objects.get(name="批量").principal_phone == "137000"


def test_decrypt_failure_is_audited(world):
    from regulator.fields import Sealed, SealedValueError

    world.here.principal_phone = "13800000001"
    world.here.save()
    token = Enterprise.objects.filter(pk=world.here.pk).values_list("principal_phone", flat=True).get()
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    Enterprise.objects.filter(pk=world.here.pk).update(principal_phone=Sealed(tampered))
    with pytest.raises(SealedValueError):
        Enterprise.objects.get(pk=world.here.pk).principal_phone
    assert AuditEntry.objects.filter(event="crypto.decrypt_failed", object_id=str(world.here.pk)).exists()
