"""PBKDF2-HMAC-SM3 password hasher (OpenSSL's SM3 through ``cryptography``)."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from django.conf import settings
from django.contrib.auth.hashers import BasePasswordHasher, mask_hash, must_update_salt
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext_noop as _


def pbkdf2_sm3(password: str, salt: str, iterations: int, length: int = 32) -> bytes:
    kdf = PBKDF2HMAC(algorithm=hashes.SM3(), length=length, salt=salt.encode(), iterations=iterations)
    return kdf.derive(password.encode())


class PBKDF2SM3PasswordHasher(BasePasswordHasher):
    """``pbkdf2_sm3$<iterations>$<salt>$<base64 hash>``; the iteration count comes from settings."""

    algorithm = "pbkdf2_sm3"

    @property
    def iterations(self) -> int:
        return getattr(settings, "PASSWORD_SM3_ITERATIONS", 300_000)

    def encode(self, password, salt, iterations=None):
        self._check_encode_args(password, salt)
        iterations = iterations or self.iterations
        digest = base64.b64encode(pbkdf2_sm3(password, salt, iterations)).decode("ascii").strip()
        return f"{self.algorithm}${iterations}${salt}${digest}"

    def decode(self, encoded):
        algorithm, iterations, salt, digest = encoded.split("$", 3)
        if algorithm != self.algorithm:
            raise ValueError("not a pbkdf2_sm3 hash")
        return {"algorithm": algorithm, "hash": digest, "iterations": int(iterations), "salt": salt}

    def verify(self, password, encoded):
        decoded = self.decode(encoded)
        return constant_time_compare(encoded, self.encode(password, decoded["salt"], decoded["iterations"]))

    def safe_summary(self, encoded):
        decoded = self.decode(encoded)
        return {
            _("algorithm"): decoded["algorithm"],
            _("iterations"): decoded["iterations"],
            _("salt"): mask_hash(decoded["salt"]),
            _("hash"): mask_hash(decoded["hash"]),
        }

    def must_update(self, encoded):
        decoded = self.decode(encoded)
        return decoded["iterations"] != self.iterations or must_update_salt(decoded["salt"], self.salt_entropy)

    def harden_runtime(self, password, encoded):
        decoded = self.decode(encoded)
        extra = self.iterations - decoded["iterations"]
        if extra > 0:
            self.encode(password, decoded["salt"], extra)


__all__ = ["PBKDF2SM3PasswordHasher", "pbkdf2_sm3"]
