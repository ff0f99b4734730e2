"""Login flow (password -> TOTP when required -> forced password change), the auditor's audit
log, and the security admin's lock list."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME, authenticate, get_user_model
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from regulator.audit import record_event
from regulator.choices import Role
from regulator.client_ip import client_ip
from regulator.security import lockout, ratelimit, totp
from regulator.security.policy import password_change_reason, requires_mfa

PENDING = "security.pending_login"
PENDING_SECONDS = 300


def _safe_next(request, candidate: str | None) -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _complete_login(request, user, *, backend: str, next_url: str, mfa: bool):
    auth_login(request, user, backend=backend)  # cycles the session key (no fixation)
    request.session["security.mfa_verified"] = mfa
    if user.password_changed_at is None:
        type(user).objects.filter(pk=user.pk).update(password_changed_at=timezone.now())
        user.password_changed_at = timezone.now()
    record_event(event="auth.login", user=user, obj=user, request=request, detail={"mfa": mfa})
    reason = password_change_reason(user)
    if reason:
        return redirect(f"{reverse('password_change')}?{REDIRECT_FIELD_NAME}={next_url}")
    return redirect(next_url)


def _login_page(request, *, error: str = "", status: int = 200, username: str = "", next_url: str = ""):
    return render(
        request,
        "registration/login.html",
        {"error": error, "username": username, "next": next_url},
        status=status,
    )


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
def login_view(request):
    next_url = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME) or ""
    if request.method != "POST":
        if request.user.is_authenticated:
            return redirect(_safe_next(request, next_url))
        return _login_page(request, next_url=next_url)

    username = (request.POST.get("username") or "").strip()
    password = request.POST.get("password") or ""
    ip = client_ip(request)
    verdict = ratelimit.check_login(ip, username)
    if not verdict.allowed:
        record_event(
            event="auth.rate_limited",
            outcome="failure",
            request=request,
            detail={"username": username, "scope": verdict.scope, "retry_after": verdict.retry_after},
        )
        response = _login_page(
            request,
            error=_("登录尝试过于频繁，已暂停从您的网络登录，请%(s)d秒后再试（其他用户不受影响）")
            % {"s": verdict.retry_after},
            status=429,
            username=username,
            next_url=next_url,
        )
        response["Retry-After"] = str(verdict.retry_after)
        return response

    lock = lockout.active_lock(username, ip)
    if lock is not None:
        record_event(
            event="auth.login_refused",
            outcome="failure",
            request=request,
            detail={"username": username, "scope": lock.scope, "locked_until": lock.locked_until.isoformat()},
        )
        until = timezone.localtime(lock.locked_until).strftime("%H:%M")
        return _login_page(
            request,
            error=_("该账户因多次登录失败已被锁定，请于%(t)s后再试或联系安全管理员解锁") % {"t": until},
            status=403,
            username=username,
            next_url=next_url,
        )

    user = authenticate(request, username=username, password=password) if username and password else None
    if user is None:
        record_event(event="auth.login_failed", outcome="failure", request=request, detail={"username": username})
        caused = lockout.register_failure(username, ip, request=request)
        error = _("用户名或密码错误")
        if caused:
            error += _("；失败次数过多，已锁定%(m)d分钟") % {"m": lockout.lock_duration().seconds // 60}
        return _login_page(request, error=error, status=200, username=username, next_url=next_url)

    lockout.clear_account(username)
    destination = _safe_next(request, next_url)
    if requires_mfa(user):
        request.session.cycle_key()
        request.session[PENDING] = {
            "uid": user.pk,
            "backend": user.backend,
            "at": time.time(),
            "next": destination,
        }
        record_event(event="auth.password_ok", user=user, obj=user, request=request, detail={"mfa": "required"})
        has_device = totp.get_device(user, confirmed=True) is not None
        return redirect("mfa_verify" if has_device else "mfa_enrol")
    return _complete_login(request, user, backend=user.backend, next_url=destination, mfa=False)


def _pending_user(request):
    pending = request.session.get(PENDING)
    if not pending or time.time() - pending.get("at", 0) > PENDING_SECONDS:
        request.session.pop(PENDING, None)
        return None, None
    user = get_user_model().objects.filter(pk=pending["uid"], is_active=True).first()
    return user, pending


def _finish_mfa(request, user, pending):
    request.session.pop(PENDING, None)
    return _complete_login(request, user, backend=pending["backend"], next_url=pending["next"], mfa=True)


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
def mfa_verify(request):
    user, pending = _pending_user(request)
    if user is None:
        messages.error(request, _("登录已超时，请重新输入用户名和密码"))
        return redirect("login")
    device = totp.get_device(user, confirmed=True)
    if device is None:
        return redirect("mfa_enrol")
    error = ""
    if request.method == "POST":
        ip = client_ip(request)
        verdict = ratelimit.check_login(ip, user.username)
        if not verdict.allowed:
            record_event(event="auth.rate_limited", outcome="failure", user=user, obj=user, request=request)
            response = render(
                request,
                "registration/mfa_verify.html",
                {
                    "error": _("动态口令尝试过于频繁，请%(s)d秒后再试") % {"s": verdict.retry_after},
                    "user_name": user.username,
                },
                status=429,
            )
            response["Retry-After"] = str(verdict.retry_after)
            return response
        if lockout.active_lock(user.username, ip):
            request.session.pop(PENDING, None)
            messages.error(request, _("该账户已被锁定，请联系安全管理员"))
            return redirect("login")
        if totp.verify(device, request.POST.get("code", "")):
            record_event(event="mfa.verified", user=user, obj=user, request=request)
            return _finish_mfa(request, user, pending)
        record_event(event="mfa.failed", user=user, obj=user, outcome="failure", request=request)
        if lockout.register_failure(user.username, ip, request=request, reason="totp"):
            request.session.pop(PENDING, None)
            messages.error(request, _("动态口令错误次数过多，账户已锁定"))
            return redirect("login")
        error = _("动态口令错误或已使用过，请输入验证器上的新口令")
    return render(request, "registration/mfa_verify.html", {"error": error, "user_name": user.username})


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
def mfa_enrol(request):
    user, pending = _pending_user(request)
    if user is None:
        messages.error(request, _("登录已超时，请重新输入用户名和密码"))
        return redirect("login")
    if totp.get_device(user, confirmed=True) is not None:
        return redirect("mfa_verify")
    device = totp.get_device(user, confirmed=False)
    if device is None or (timezone.now() - device.created_at).total_seconds() > 600:
        device = totp.start_enrolment(user)
    error = ""
    if request.method == "POST":
        if totp.confirm_enrolment(device, request.POST.get("code", ""), request=request):
            return _finish_mfa(request, user, pending)
        record_event(event="mfa.enrol_failed", user=user, obj=user, outcome="failure", request=request)
        if lockout.register_failure(user.username, client_ip(request), request=request, reason="totp"):
            request.session.pop(PENDING, None)
            return redirect("login")
        error = _("动态口令不正确，请核对手机时间后重试")
    uri = totp.provisioning_uri(device)
    secret = device.secret
    return render(
        request,
        "registration/mfa_enrol.html",
        {
            "error": error,
            "secret_grouped": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            "uri": uri,
            "qr_svg": totp.qr_svg(uri),
        },
    )


class PasswordChangeView(auth_views.PasswordChangeView):
    """The change itself is audited and clears the forced-change flag in the history validator."""

    template_name = "registration/password_change.html"
    success_url = reverse_lazy("password_change_done")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["reason"] = password_change_reason(self.request.user)
        context["next"] = self.request.GET.get(REDIRECT_FIELD_NAME, "")
        return context

    def form_valid(self, form):
        response = super().form_valid(form)
        next_url = self.request.POST.get(REDIRECT_FIELD_NAME)
        if next_url and url_has_allowed_host_and_scheme(next_url, allowed_hosts={self.request.get_host()}):
            messages.success(self.request, _("密码已修改"))
            return redirect(next_url)
        return response

    def form_invalid(self, form):
        record_event(
            event="password.change_refused",
            outcome="failure",
            detail={"errors": [str(e) for errors in form.errors.values() for e in errors][:5]},
        )
        return super().form_invalid(form)


# --- Auditor: the audit log, read only ------------------------------------------------------


def _require_auditor(request):
    if not request.user.is_authenticated or request.user.role != Role.AUDITOR:
        raise Http404  # the log's existence is not advertised to anyone else


AUDIT_FILTERS = ("username", "event", "outcome", "ip", "since", "until", "object")


def _filtered_audit(params):
    from regulator.models import AuditEntry

    qs = AuditEntry.objects.order_by("-id")
    if params.get("username"):
        qs = qs.filter(username__icontains=params["username"].strip())
    if params.get("event"):
        qs = qs.filter(event__startswith=params["event"].strip())
    if params.get("outcome") in ("success", "failure"):
        qs = qs.filter(outcome=params["outcome"])
    if params.get("ip"):
        qs = qs.filter(source_ip=params["ip"].strip())
    if params.get("object"):
        qs = qs.filter(object_repr__icontains=params["object"].strip())
    for name, lookup in (("since", "created_at__date__gte"), ("until", "created_at__date__lte")):
        value = params.get(name)
        if value:
            try:
                from datetime import date

                qs = qs.filter(**{lookup: date.fromisoformat(value)})
            except ValueError:
                pass
    return qs


@login_required
def audit_log(request):
    _require_auditor(request)
    from regulator.models import AuditEntry

    params = {k: request.GET.get(k, "") for k in AUDIT_FILTERS}
    qs = _filtered_audit(params)
    chain = None
    if request.GET.get("verify") == "1":
        from regulator.audit_anchors import verify_log

        problems, _anchors = verify_log()  # the keyed chain and the signed checkpoints outside the database
        chain = {"ok": not problems, "problems": problems[:50], "count": len(problems)}
        record_event(event="audit.verified", detail={"ok": not problems, "problems": len(problems)})
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    events = AuditEntry.objects.order_by().values_list("event", flat=True).distinct()[:200]
    query = "&".join(f"{k}={v}" for k, v in params.items() if v)
    return render(
        request,
        "security/audit_log.html",
        {"page": page, "params": params, "chain": chain, "events": sorted(set(events)), "query": query},
    )


@login_required
def audit_export(request):
    """CSV of the filtered log for the auditor; the export itself is audited.

    Usernames, object names and details are attacker-chosen text: the export helper neutralises
    every cell (a username ``=HYPERLINK(...)`` must not run in the auditor's spreadsheet)."""
    from django.http import StreamingHttpResponse

    from regulator import exports, uploads

    _require_auditor(request)
    params = {k: request.GET.get(k, "") for k in AUDIT_FILTERS}
    qs = _filtered_audit(params)
    record_event(event="data.exported", detail={"what": "audit_log", "filters": {k: v for k, v in params.items() if v}})
    header = ["id", "time_utc", "user", "ip", "event", "object", "outcome", "detail", "hash"]

    def rows():
        for e in qs.iterator(chunk_size=2000):
            yield [
                e.id,
                e.created_at.isoformat(),
                e.username,
                e.source_ip or "",
                e.event,
                e.object_repr,
                e.outcome,
                e.detail,
                e.entry_hash,
            ]

    response = StreamingHttpResponse(exports.csv_stream(header, rows()), content_type="text/csv; charset=utf-8")
    return uploads.harden_download(response, filename="audit-log.csv")


# --- Security admin: locks and second-factor resets -----------------------------------------


def _require_security_admin(request):
    user = request.user
    if not user.is_authenticated or not (
        user.role == Role.SECURITY_ADMIN
        or (user.role not in (Role.AUDITOR, Role.SYSTEM_ADMIN) and user.has_perm("regulator.unlock_account"))
    ):
        raise PermissionDenied


@login_required
def lock_list(request):
    _require_security_admin(request)
    from regulator.models import LoginLock

    now = timezone.now()
    locks = LoginLock.objects.filter(locked_until__gt=now).order_by("locked_until")
    recent = LoginLock.objects.filter(failures__gt=0).exclude(pk__in=locks.values("pk"))[:50]
    return render(request, "security/locks.html", {"locks": locks, "recent": recent})


@login_required
@require_POST
def lock_unlock(request, pk: int):
    _require_security_admin(request)
    from django.shortcuts import get_object_or_404

    from regulator.models import LoginLock

    lock = get_object_or_404(LoginLock, pk=pk)
    lockout.unlock(lock, by=request.user, request=request)
    messages.success(request, _("已解除锁定：%(k)s") % {"k": lock.key})
    return redirect("security:locks")


# --- Reveal of a masked value (audited) ---------------------------------------------------------


@login_required
@require_POST
def reveal(request, app_label: str, model: str, pk: str, field: str):
    """POST only (each reveal is an audited act); answers JSON ``{"value": ...}``."""
    from django.http import JsonResponse

    from regulator.security.masking import reveal_field, revealable

    entry = revealable(f"{app_label}.{model}")
    if entry is None or field not in entry["fields"]:
        raise Http404
    obj = entry["queryset"](request.user).filter(pk=pk).first()
    if obj is None:
        raise Http404  # out of scope and missing look the same
    value = reveal_field(request, obj, field)
    response = JsonResponse({"value": value})
    response["Cache-Control"] = "no-store"
    return response


@login_required
def classification_page(request):
    """Every model field with its data category and level (system and security admins)."""
    user = request.user
    if not (user.is_superuser or user.role in (Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN)):
        raise PermissionDenied
    from regulator.security.classification import Category, Level, registry, unencrypted_core_fields

    rows = registry()
    app = request.GET.get("app", "")
    level = request.GET.get("level", "")
    category = request.GET.get("category", "")
    apps_seen = sorted({r["model"]._meta.app_label for r in rows})
    if app:
        rows = [r for r in rows if r["model"]._meta.app_label == app]
    if level:
        rows = [r for r in rows if r["classification"].level == level]
    if category:
        rows = [r for r in rows if r["classification"].category == category]
    return render(
        request,
        "security/classification.html",
        {
            "rows": rows,
            "apps": apps_seen,
            "levels": Level.choices,
            "categories": Category.choices,
            "params": {"app": app, "level": level, "category": category},
            "unencrypted_core": unencrypted_core_fields(),
        },
    )
