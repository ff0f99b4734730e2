"""SM2 signatures (GM/T 0003, SM2-with-SM3) over what the public must be able to verify.

``sign_payload(data)`` returns ``{"alg": "SM2-SM3", "key_id", "public_key", "signature"}``;
``verify_payload(data, signature)`` checks it against the platform's trusted keys (the current
one plus ``SM2_TRUSTED_PUBLIC_KEYS`` kept after a rotation), or against an explicit public key.

Why gmssl, and how it is used: ``cryptography`` does not expose SM2, and gmssl is the maintained
pure-Python SM2 on PyPI. Its weak spots are avoided here: the per-signature random ``k`` comes from
``secrets`` (gmssl's own default uses ``random``), the digest ``e = SM3(Z_A || M)`` is computed
with OpenSSL's SM3 (gmssl's SM3 is slow), the public key is set directly (its constructor's
``lstrip("04")`` corrupts keys whose x coordinate starts with 0 or 4), and ``r``/``s`` ranges and
the public point are validated before gmssl's verification arithmetic runs.

The private key comes from ``SM2_PRIVATE_KEY`` (or ``SM2_PRIVATE_KEY_FILE``), 64 hex digits; in a
demo without one, a key is generated once into ``DATA_DIR/sm2-demo-private-key`` (mode 0600).
It is never stored in the database.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from gmssl.sm2 import CryptSM2

from regulator.crypto import sm3

ALG = "SM2-SM3"
DEFAULT_USER_ID = b"1234567812345678"  # GM/T 0009 default signer identity

CURVE = {
    "p": "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF",
    "a": "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC",
    "b": "28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93",
    "n": "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123",
    "g": "32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7"
    "BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0",
}


class SigningError(Exception):
    pass


def _ints(curve: dict) -> tuple[int, int, int, int]:
    return (int(curve["p"], 16), int(curve["a"], 16), int(curve["b"], 16), int(curve["n"], 16))


def _engine(curve: dict, private_hex: str = "", public_xy: str = "") -> CryptSM2:
    table = {k: v.lower() for k, v in curve.items()}
    engine = CryptSM2(private_key=private_hex, public_key="", ecc_table=table)
    engine.public_key = public_xy.lower()  # bypass gmssl's lstrip("04") bug
    return engine


def _on_curve(xy: str, curve: dict) -> bool:
    p, a, b, _n = _ints(curve)
    if len(xy) != 128:
        return False
    try:
        x, y = int(xy[:64], 16), int(xy[64:], 16)
    except ValueError:
        return False
    if not (0 <= x < p and 0 <= y < p):
        return False
    return (y * y - (x * x * x + a * x + b)) % p == 0


def public_key_of(private_hex: str, curve: dict = CURVE) -> str:
    """Uncompressed public key ``04 || x || y`` (hex) for a private key."""
    d = int(private_hex, 16)
    _p, _a, _b, n = _ints(curve)
    if not 1 <= d < n - 1:
        raise SigningError("SM2 private key out of range")
    xy = _engine(curve)._kg(d, curve["g"].lower())
    return "04" + xy


def za(public_xy: str, user_id: bytes = DEFAULT_USER_ID, curve: dict = CURVE) -> bytes:
    """Z_A = SM3(ENTL || ID || a || b || xG || yG || xA || yA)."""
    entl = (len(user_id) * 8).to_bytes(2, "big")
    body = bytes.fromhex(curve["a"] + curve["b"] + curve["g"] + public_xy)
    return sm3(entl + user_id + body)


def digest(data: bytes, public_xy: str, user_id: bytes = DEFAULT_USER_ID, curve: dict = CURVE) -> bytes:
    return sm3(za(public_xy, user_id, curve) + data)


def raw_sign(
    data: bytes,
    private_hex: str,
    *,
    user_id: bytes = DEFAULT_USER_ID,
    curve: dict = CURVE,
    k_hex: str | None = None,
) -> str:
    """Return ``r || s`` as 128 hex digits. ``k_hex`` exists only for the standard's test vector."""
    public_xy = public_key_of(private_hex, curve)[2:]
    e = digest(data, public_xy, user_id, curve)
    engine = _engine(curve, private_hex.lower(), public_xy)
    _p, _a, _b, n = _ints(curve)
    for _ in range(64):
        k = int(k_hex, 16) if k_hex else secrets.randbelow(n - 1) + 1
        signature = engine.sign(e, f"{k:064x}")
        if signature:
            return signature
        if k_hex:
            raise SigningError("the given k yields no signature")
    raise SigningError("could not produce a signature")  # pragma: no cover - probability ~2^-256


def raw_verify(
    data: bytes, signature_hex: str, public_key_hex: str, *, user_id: bytes = DEFAULT_USER_ID, curve: dict = CURVE
) -> bool:
    public_xy = public_key_hex.lower()
    if public_xy.startswith("04") and len(public_xy) == 130:
        public_xy = public_xy[2:]
    if not _on_curve(public_xy, curve):
        return False
    if len(signature_hex) != 128:
        return False
    try:
        r, s = int(signature_hex[:64], 16), int(signature_hex[64:], 16)
    except ValueError:
        return False
    _p, _a, _b, n = _ints(curve)
    if not (1 <= r < n and 1 <= s < n) or (r + s) % n == 0:
        return False
    e = digest(data, public_xy, user_id, curve)
    try:
        return bool(_engine(curve, "", public_xy).verify(signature_hex.lower(), e))
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class SigningKey:
    private_hex: str
    public_hex: str

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_hex)


def key_id_of(public_hex: str) -> str:
    return "sm2-" + sm3(bytes.fromhex(public_hex)).hex()[:16]


def _demo_key_file() -> Path:
    return Path(settings.DATA_DIR) / "sm2-demo-private-key"


def _load_private_hex() -> str:
    configured = (getattr(settings, "SM2_PRIVATE_KEY", "") or "").strip()
    if configured:
        return configured
    if getattr(settings, "PRODUCTION", False):
        raise ImproperlyConfigured("SM2_PRIVATE_KEY (or SM2_PRIVATE_KEY_FILE) is required when PRODUCTION=1")
    path = _demo_key_file()
    if not path.exists():
        _p, _a, _b, n = _ints(CURVE)
        # Written to a private temporary file then linked into place, so two processes starting
        # at once agree on one key and nobody reads a half-written file.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{secrets.randbelow(n - 2) + 1:064x}")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


@lru_cache(maxsize=4)
def _key_for(private_hex: str) -> SigningKey:
    if len(private_hex) != 64:
        raise ImproperlyConfigured("SM2_PRIVATE_KEY must be 64 hex digits")
    try:
        return SigningKey(private_hex=private_hex.lower(), public_hex=public_key_of(private_hex))
    except (ValueError, SigningError) as exc:
        raise ImproperlyConfigured(f"SM2_PRIVATE_KEY is not a valid SM2 private key: {exc}") from exc


def signing_key() -> SigningKey:
    return _key_for(_load_private_hex())


def trusted_public_keys() -> dict[str, str]:
    """key id -> public key hex: the current key and any retired ones still trusted."""
    keys = {}
    extra = getattr(settings, "SM2_TRUSTED_PUBLIC_KEYS", []) or []
    for public_hex in extra:
        keys[key_id_of(public_hex.lower())] = public_hex.lower()
    current = signing_key()
    keys[current.key_id] = current.public_hex
    return keys


def sign_payload(data: bytes) -> dict:
    """Sign bytes with the platform key; store the returned dict next to the published document."""
    if not isinstance(data, bytes | bytearray):
        raise TypeError("sign_payload takes bytes")
    key = signing_key()
    return {
        "alg": ALG,
        "key_id": key.key_id,
        "public_key": key.public_hex,
        "signature": raw_sign(bytes(data), key.private_hex),
    }


def verify_payload(data: bytes, signature: dict, *, public_key: str | None = None) -> bool:
    """True only if ``signature`` is a valid SM2-SM3 signature of ``data`` by a trusted key.

    Without ``public_key`` the key named in the signature must be one of the platform's trusted
    keys (a signature that brings its own key proves nothing); with it, that key is used.
    """
    if not isinstance(signature, dict) or signature.get("alg") != ALG:
        return False
    sig_hex = str(signature.get("signature", ""))
    if public_key is None:
        claimed = str(signature.get("public_key", "")).lower()
        trusted = trusted_public_keys()
        public_key = trusted.get(str(signature.get("key_id", "")))
        if public_key is None or (claimed and claimed != public_key):
            return False
    return raw_verify(bytes(data), sig_hex, public_key)
