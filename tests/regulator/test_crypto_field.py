import pytest

from enterprises.models import Enterprise
from regulator.crypto import CryptoError, sm3_hex, sm4_gcm_decrypt, sm4_gcm_encrypt
from regulator.fields import SealedValueError


def test_sm3_standard_vector():
    # GB/T 32905-2016 example 1
    assert sm3_hex(b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"


def test_sm4_gcm_roundtrip_and_tamper():
    key = bytes(range(16))
    blob = sm4_gcm_encrypt(key, b"secret", b"aad")
    assert sm4_gcm_decrypt(key, blob, b"aad") == b"secret"
    with pytest.raises(CryptoError):
        sm4_gcm_decrypt(key, blob, b"other")
    with pytest.raises(CryptoError):
        sm4_gcm_decrypt(key, blob[:-1] + bytes([blob[-1] ^ 1]), b"aad")


def test_encrypted_field_roundtrip_and_swap_detected(world):
    a, b = world.here, world.there
    a.principal_phone = "13800000001"
    a.save()
    b.principal_phone = "13900000002"
    b.save()
    raw_a = Enterprise.objects.filter(pk=a.pk).values_list("principal_phone", flat=True).get()
    assert "13800000001" not in raw_a
    assert Enterprise.objects.get(pk=a.pk).principal_phone == "13800000001"
    Enterprise.objects.filter(pk=b.pk).update(principal_phone=raw_a)  # copy ciphertext to another row
    with pytest.raises(SealedValueError):
        Enterprise.objects.get(pk=b.pk).principal_phone
