"""TOTP second factor (RFC 6238, 30 s steps, ±1 step of clock drift), replay-proof.

A code is accepted only for a time step later than the last one used, and the step is claimed
with a compare-and-set UPDATE, so two requests racing with the same code cannot both pass.
"""

from __future__ import annotations

import io
import time

import pyotp
from django.conf import settings
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from regulator.audit import record_event

STEP = 30
DRIFT_STEPS = 1


def issuer() -> str:
    return getattr(settings, "TOTP_ISSUER", "安全生产监管平台")


def get_device(user, *, confirmed: bool | None = None):
    from regulator.models import TOTPDevice

    qs = TOTPDevice.objects.filter(user=user)
    if confirmed is True:
        qs = qs.filter(confirmed_at__isnull=False)
    elif confirmed is False:
        qs = qs.filter(confirmed_at__isnull=True)
    return qs.first()


def start_enrolment(user):
    """A fresh unconfirmed device with a new secret (replacing an unconfirmed one)."""
    from regulator.models import TOTPDevice

    TOTPDevice.objects.filter(user=user, confirmed_at__isnull=True).delete()
    if TOTPDevice.objects.filter(user=user).exists():
        raise ValueError("user already has a confirmed TOTP device; reset it first")
    return TOTPDevice.objects.create(user=user, secret=pyotp.random_base32(32))


def provisioning_uri(device) -> str:
    return pyotp.TOTP(device.secret, interval=STEP).provisioning_uri(name=device.user.username, issuer_name=issuer())


def qr_svg(uri: str) -> str:
    """An inline SVG QR code generated locally (no external QR service sees the secret)."""
    import segno

    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=4, xmldecl=False, svgns=True, border=2)
    return out.getvalue().decode()


def _matching_step(secret: str, code: str, now: float) -> int | None:
    code = (code or "").strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret, interval=STEP)
    current = int(now // STEP)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if constant_time_compare(totp.at(step * STEP), code):
            return step
    return None


def verify(device, code: str, *, now: float | None = None) -> bool:
    """True once per valid code; a replayed or older code is refused."""
    from regulator.models import TOTPDevice

    step = _matching_step(device.secret, code, time.time() if now is None else now)
    if step is None or step <= device.last_used_step:
        return False
    claimed = TOTPDevice.objects.filter(pk=device.pk, last_used_step__lt=step).update(last_used_step=step)
    if claimed:
        device.last_used_step = step
    return bool(claimed)


def confirm_enrolment(device, code: str, *, request=None) -> bool:
    if not verify(device, code):
        return False
    device.confirmed_at = timezone.now()
    device.save(update_fields=["confirmed_at"])
    record_event(event="mfa.enrolled", user=device.user, obj=device.user, request=request)
    return True


def reset_device(user, *, by, request=None) -> bool:
    """The security admin removes a user's device (lost phone); the user enrols at next login."""
    from regulator.models import TOTPDevice

    deleted, _ = TOTPDevice.objects.filter(user=user).delete()
    record_event(event="mfa.reset", user=by, obj=user, request=request, detail={"removed": bool(deleted)})
    return bool(deleted)
