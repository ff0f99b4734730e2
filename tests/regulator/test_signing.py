"""SM2 signatures: the GB/T 32918.2 (GM/T 0003.2) worked example, round trips, tampering."""

import pytest

from regulator import signing

# GB/T 32918.2-2016 Annex A.2: the 256-bit test curve (not the recommended one), ID ALICE123@YAHOO.COM.
TEST_CURVE = {
    "p": "8542D69E4C044F18E8B92435BF6FF7DE457283915C45517D722EDB8B08F1DFC3",
    "a": "787968B4FA32C3FD2417842E73BBFEFF2F3C848B6831D7E0EC65228B3937E498",
    "b": "63E4C6D3B23B0C849CF84241484BFE48F61D59A5B16BA06E6E12D1DA27C5249A",
    "n": "8542D69E4C044F18E8B92435BF6FF7DD297720630485628D5AE74EE7C32E79B7",
    "g": "421DEBD61B62EAB6746434EBC3CC315E32220B3BADD50BDC4C4E6C147FEDD43D"
    "0680512BCBB42C07D47349D2153B70C4E5D7FDFCBFA36EA1A85841B9E46E09A2",
}
D_A = "128B2FA8BD433C6C068C8D803DFF79792A519A55171B1B650C23661D15897263"
PUB_A = "0AE4C7798AA0F119471BEE11825BE46202BB79E2A5844495E97C04FF4DF2548A" + (
    "7C0240F88F1CD4E16352A73C17B7F16F07353E53A176D684A9FE0C6BB798E857"
)
ID_A = b"ALICE123@YAHOO.COM"
K = "6CB28D99385C175C94F94E934817663FC176D925DD72B727260DBAAE1FB2F96F"
R = "40F1EC59F793D9F49E09DCEF49130D4194F79FB1EED2CAA55BACDB49C4E755D1"
S = "6FC6DAC32C5D5CF10C77DFB20F7C2EB667A457872FB09EC56327A67EC7DEEBE7"
MSG = b"message digest"


def test_standard_vector_public_key_za_and_signature():
    assert signing.public_key_of(D_A, TEST_CURVE).upper() == "04" + PUB_A
    assert signing.za(PUB_A, ID_A, TEST_CURVE).hex().upper() == (
        "F4A38489E32B45B6F876E3AC2168CA392362DC8F23459C1D1146FC3DBFB7BC9A"
    )
    sig = signing.raw_sign(MSG, D_A, user_id=ID_A, curve=TEST_CURVE, k_hex=K)
    assert sig.upper() == R + S
    assert signing.raw_verify(MSG, R + S, "04" + PUB_A, user_id=ID_A, curve=TEST_CURVE)
    assert not signing.raw_verify(b"message digesT", R + S, "04" + PUB_A, user_id=ID_A, curve=TEST_CURVE)


def test_sign_payload_roundtrip_and_tamper(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.SM2_PRIVATE_KEY = ""
    signature = signing.sign_payload(b"draw 2026-11 results")
    assert signature["alg"] == "SM2-SM3"
    assert len(signature["signature"]) == 128 and signature["public_key"].startswith("04")
    assert (tmp_path / "sm2-demo-private-key").stat().st_mode & 0o077 == 0
    assert signing.verify_payload(b"draw 2026-11 results", signature)
    assert not signing.verify_payload(b"draw 2026-11 resultz", signature)
    flipped = dict(
        signature, signature=signature["signature"][:-1] + ("0" if signature["signature"][-1] != "0" else "1")
    )
    assert not signing.verify_payload(b"draw 2026-11 results", flipped)


def test_signatures_are_randomised():
    a = signing.sign_payload(b"x")
    b = signing.sign_payload(b"x")
    assert a["signature"] != b["signature"]
    assert signing.verify_payload(b"x", a) and signing.verify_payload(b"x", b)


def test_signature_with_its_own_untrusted_key_is_refused():
    rogue_private = f"{123456789:064x}"
    rogue = {
        "alg": "SM2-SM3",
        "key_id": signing.key_id_of(signing.public_key_of(rogue_private)),
        "public_key": signing.public_key_of(rogue_private),
        "signature": signing.raw_sign(b"fake", rogue_private),
    }
    assert signing.raw_verify(b"fake", rogue["signature"], rogue["public_key"])
    assert not signing.verify_payload(b"fake", rogue)
    assert signing.verify_payload(b"fake", rogue, public_key=rogue["public_key"])


@pytest.mark.parametrize("bad", ["", "00" * 64, "zz" * 64, "ff" * 64])
def test_malformed_signatures_fail_cleanly(bad):
    signature = dict(signing.sign_payload(b"x"), signature=bad)
    assert signing.verify_payload(b"x", signature) is False


def test_verify_signature_command(tmp_path):
    import json

    from django.core.management import CommandError, call_command

    doc = tmp_path / "doc.pdf"
    doc.write_bytes(b"%PDF-1.4 order 2026-001")
    sig = tmp_path / "doc.sig.json"
    sig.write_text(json.dumps(signing.sign_payload(doc.read_bytes())))
    call_command("verify_signature", str(doc), str(sig))
    doc.write_bytes(b"%PDF-1.4 order 2026-002")
    with pytest.raises(CommandError, match="INVALID"):
        call_command("verify_signature", str(doc), str(sig))
