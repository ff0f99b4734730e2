"""Thin, lazy bridge to ``regulator.signing`` (SM2): sign and verify, tolerating its absence."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def sign(data: bytes) -> dict | None:
    try:
        from regulator.signing import sign_payload
    except ImportError:
        logger.warning("regulator.signing is not available: the record stays unsigned")
        return None
    return sign_payload(data)


def verify(data: bytes, signature: dict | None) -> bool | None:
    """True/False, or None when there is no signature or no signing module to check it with."""
    if not signature:
        return None
    try:
        from regulator.signing import verify_payload
    except ImportError:
        return None
    try:
        return bool(verify_payload(data, signature))
    except Exception:  # a malformed signature is simply not valid
        logger.exception("signature check failed")
        return False
