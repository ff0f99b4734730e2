"""SMS for alert escalation: a small backend interface (setting ALERT_SMS_BACKEND) and a logging backend.

A real gateway (operator SMS platform) implements ``send(phone, text)``; failures are logged and
never break the escalation, because the in-app and e-mail copies already exist.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class BaseSmsBackend:
    def send(self, phone: str, text: str) -> None:
        raise NotImplementedError


class LoggingSmsBackend(BaseSmsBackend):
    """Writes each message to the log (the demo and tests); keeps the last ones in ``outbox``."""

    outbox: list[tuple[str, str]] = []

    def send(self, phone: str, text: str) -> None:
        masked = phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****"
        logger.info("SMS to %s: %s", masked, text)
        type(self).outbox.append((phone, text))
        del type(self).outbox[:-200]


def get_backend() -> BaseSmsBackend:
    return import_string(settings.ALERT_SMS_BACKEND)()


def send_sms(users: Iterable, text: str) -> int:
    backend = get_backend()
    sent = 0
    for user in users:
        phone = (getattr(user, "phone", "") or "").strip()
        if not phone:
            continue
        try:
            backend.send(phone, text[:300])
            sent += 1
        except Exception:
            logger.exception("SMS to user %s failed", user.pk)
    return sent
