"""SM4-GCM and SM3 primitives (OpenSSL through `cryptography`) and the field-key ring.

Values are sealed as ``<key id>$<base64(nonce | ciphertext | tag)>``; the key id lets
``manage.py rotate_keys`` re-encrypt under a new key while old values stay readable.
Keys come from ``FIELD_KEYS`` (or ``FIELD_KEYS_FILE``), never from the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

NONCE_BYTES = 12
TAG_BYTES = 16
KEY_BYTES = 16
SEPARATOR = "$"


class CryptoError(Exception):
    """A sealed value could not be opened: wrong key, tampered, swapped or malformed."""


def sm3(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


def sm3_hex(data: bytes) -> str:
    return sm3(data).hex()


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    from cryptography.hazmat.primitives import hmac as crypto_hmac

    mac = crypto_hmac.HMAC(key, hashes.SM3())
    mac.update(data)
    return mac.finalize()


def sm4_gcm_encrypt(key: bytes, plaintext: bytes, aad: bytes, nonce: bytes | None = None) -> bytes:
    nonce = nonce or secrets.token_bytes(NONCE_BYTES)
    encryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(aad)
    ciphertext = encryptor.update(plaintext) + encryptor.finalize()
    return nonce + ciphertext + encryptor.tag


def sm4_gcm_decrypt(key: bytes, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise CryptoError("sealed value is too short")
    nonce, ciphertext, tag = blob[:NONCE_BYTES], blob[NONCE_BYTES:-TAG_BYTES], blob[-TAG_BYTES:]
    decryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
    decryptor.authenticate_additional_data(aad)
    try:
        return decryptor.update(ciphertext) + decryptor.finalize()
    except InvalidTag as exc:
        raise CryptoError("authentication failed: wrong key, tampered or swapped value") from exc


@dataclass(frozen=True)
class KeyRing:
    current_id: str
    keys: dict[str, bytes]

    def seal(self, plaintext: str, aad: bytes) -> str:
        blob = sm4_gcm_encrypt(self.keys[self.current_id], plaintext.encode("utf-8"), aad)
        return f"{self.current_id}{SEPARATOR}{base64.b64encode(blob).decode('ascii')}"

    def open(self, token: str, aad: bytes) -> str:
        key_id, sep, payload = token.partition(SEPARATOR)
        if not sep:
            raise CryptoError("sealed value has no key id")
        key = self.keys.get(key_id)
        if key is None:
            raise CryptoError(f"unknown key id {key_id!r}")
        try:
            blob = base64.b64decode(payload, validate=True)
        except ValueError as exc:
            raise CryptoError("sealed value is not valid base64") from exc
        return sm4_gcm_decrypt(key, blob, aad).decode("utf-8")

    @staticmethod
    def key_id_of(token: str) -> str:
        return token.partition(SEPARATOR)[0]


def parse_keys(spec: str, *, name: str = "FIELD_KEYS", key_bytes: int = KEY_BYTES) -> KeyRing:
    """Parse ``id1:hex,id2:hex``; the first entry is the key that encrypts (or signs)."""
    keys: dict[str, bytes] = {}
    order: list[str] = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        key_id, sep, hexkey = item.partition(":")
        if not sep or not key_id.isalnum():
            raise ImproperlyConfigured(f"{name} entries must look like 'k1:<{2 * key_bytes} hex digits>'")
        try:
            raw = bytes.fromhex(hexkey)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name} key {key_id!r} is not hex") from exc
        if len(raw) != key_bytes:
            raise ImproperlyConfigured(f"{name} key {key_id!r} must be {key_bytes} bytes ({2 * key_bytes} hex digits)")
        keys[key_id] = raw
        order.append(key_id)
    if not keys:
        raise ImproperlyConfigured(f"{name} holds no key")
    return KeyRing(current_id=order[0], keys=keys)


def _demo_key_spec() -> str:
    """Demo and tests: a key derived from SECRET_KEY, so a fresh checkout works without setup."""
    derived = hmac.new(settings.SECRET_KEY.encode(), b"field-key-demo", hashlib.sha256).digest()[:KEY_BYTES]
    return f"demo:{derived.hex()}"


@lru_cache(maxsize=1)
def _keyring_for(spec: str) -> KeyRing:
    return parse_keys(spec)


def keyring() -> KeyRing:
    return _keyring_for(settings.FIELD_KEYS or os.environ.get("FIELD_KEYS", "") or _demo_key_spec())


# --- The audit chain's HMAC-SM3 keys ---------------------------------------------------------
# Same shape and rotation as the field keys (``AUDIT_CHAIN_KEYS``: the first signs new entries,
# all verify), 32-byte keys, kept outside the database so whoever can write the audit table
# cannot recompute the chain.
CHAIN_KEY_BYTES = 32


def _demo_chain_key_spec() -> str:
    # The id names the key, so after a SECRET_KEY change verify_audit says "unknown key", not "edited".
    derived = hmac.new(settings.SECRET_KEY.encode(), b"audit-chain-key-demo", hashlib.sha256).digest()
    return f"sk{sm3(derived).hex()[:8]}:{derived.hex()}"


@lru_cache(maxsize=2)
def _chain_keyring_for(spec: str) -> KeyRing:
    return parse_keys(spec, name="AUDIT_CHAIN_KEYS", key_bytes=CHAIN_KEY_BYTES)


def chain_keyring() -> KeyRing:
    return _chain_keyring_for(getattr(settings, "AUDIT_CHAIN_KEYS", "") or _demo_chain_key_spec())
