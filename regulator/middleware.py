"""Security headers that Django does not set itself (a strict CSP with no inline scripts), the
per-request security policy, and the sliding session expiry behind the idle timeout."""

import time

from django.conf import settings
from django.contrib.sessions.middleware import SessionMiddleware

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self'{ws}; media-src 'self' blob:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI ships inline bootstrap code; its page gets a policy that allows exactly that.
CSP_API_DOCS = CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'").replace(
    "style-src 'self'", "style-src 'self' 'unsafe-inline'"
)


def _websocket_sources(request) -> str:
    """WebSockets to this host only (not ``ws:``/``wss:``, which would let a script talk to any host)."""
    from django.core.exceptions import DisallowedHost

    try:
        host = request.get_host()
    except DisallowedHost:
        return ""
    # Plain ws:// only where the server accepts it (DEBUG: regulator.consumers.origin_allowed).
    insecure = f" ws://{host}" if getattr(settings, "WS_ALLOW_INSECURE", False) else ""
    return f"{insecure} wss://{host}"


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            docs = request.path.startswith("/api/docs")
            policy = CSP_API_DOCS if docs else CSP
            response["Content-Security-Policy"] = policy.replace("{ws}", _websocket_sources(request))
        response.setdefault("Permissions-Policy", "geolocation=(self), camera=(self), microphone=()")
        if _personal(request, response):
            _no_store(response)
        return response


# Responses the same for every user, revalidated on each use (a cheap 304), never personal data.
SHARED_CACHEABLE_URL_NAMES = frozenset({"javascript-catalog"})


def _personal(request, response) -> bool:
    """A page for a logged-in user (or the API, or the login pages): no browser or proxy may keep it."""
    match = getattr(request, "resolver_match", None)
    if match is not None and match.view_name in SHARED_CACHEABLE_URL_NAMES:
        return False
    user = getattr(request, "user", None)  # DRF sets it on the request too, after token authentication
    return bool(
        (user is not None and user.is_authenticated)
        or request.path.startswith(("/api/", "/accounts/"))
        or response.cookies.get(settings.SESSION_COOKIE_NAME) is not None
    )


def _no_store(response) -> None:
    """``no-store`` whatever the view said about caching (a stricter ``private, no-store`` is kept)."""
    from django.utils.cache import add_never_cache_headers, patch_cache_control

    current = response.get("Cache-Control", "")
    if "no-store" in current:
        return
    if "Cache-Control" in response:
        del response["Cache-Control"]
    add_never_cache_headers(response)
    patch_cache_control(response, private=True)


# Pages a user may reach while a password change is due or as an auditor who changes nothing.
_ALWAYS_ALLOWED = (
    "login",
    "logout",
    "password_change",
    "password_change_done",
    "mfa_verify",
    "mfa_enrol",
    "set_language",
    "healthz",
)


def _url_name(request) -> str | None:
    from django.urls import Resolver404, resolve

    try:
        return resolve(request.path_info).url_name
    except Resolver404:
        return None


def _token_user(request):
    """The user behind an API token, for the policy check only (DRF authenticates later)."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "token" or not key.strip():
        return None
    from rest_framework.authtoken.models import Token

    token = Token.objects.select_related("user").filter(key=key.strip()).first()
    return token.user if token is not None and token.user.is_active else None


class SecurityPolicyMiddleware:
    """Per request: a due password change blocks everything else (403 with a reason on the API,
    a redirect in the browser), and the auditor role can only read (三权分立)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.contrib.auth import REDIRECT_FIELD_NAME
        from django.http import JsonResponse
        from django.shortcuts import redirect
        from django.urls import reverse
        from django.utils.http import urlencode

        from regulator.choices import Role
        from regulator.security.policy import password_change_reason

        if request.path.startswith("/static/"):
            return self.get_response(request)
        is_api = request.path.startswith("/api/")
        user = getattr(request, "user", None)
        if (user is None or not user.is_authenticated) and is_api:
            user = _token_user(request)
            if user is not None:
                from regulator.security.policy import requires_mfa

                if requires_mfa(user):
                    # A long-lived token would be a way around the second factor for admin roles.
                    return JsonResponse(
                        {"detail": "管理类账户须通过双因素登录使用系统，不能使用API令牌", "code": "token_not_allowed"},
                        status=403,
                    )
        if user is None or not user.is_authenticated:
            return self.get_response(request)
        name = _url_name(request)
        if name in _ALWAYS_ALLOWED:
            return self.get_response(request)
        session = getattr(request, "session", None)
        if session is not None and session.get("security.mfa_verified") is False:
            from regulator.security.policy import requires_mfa

            if requires_mfa(user):
                # Logged in with the password only, and since then made staff or given an admin role:
                # the session ends and the next login asks for the second factor.
                from django.contrib.auth import logout

                logout(request)
                if is_api:
                    body = {"detail": "该账户须通过双因素登录，请重新登录", "code": "mfa_required"}
                    return JsonResponse(body, status=401)
                return redirect(f"{reverse('login')}?{urlencode({REDIRECT_FIELD_NAME: request.get_full_path()})}")
        reason = password_change_reason(user)
        if reason:
            message = "首次登录须修改初始密码" if reason == "initial" else "密码已超过有效期，请修改密码"
            if is_api:
                return JsonResponse(
                    {"detail": message, "code": "password_change_required", "reason": reason}, status=403
                )
            return redirect(f"{reverse('password_change')}?{urlencode({REDIRECT_FIELD_NAME: request.get_full_path()})}")
        if user.role == Role.AUDITOR and request.method not in ("GET", "HEAD", "OPTIONS"):
            body = {"detail": "安全审计员只能查看，不能修改任何数据", "code": "auditor_read_only"}
            if is_api:
                return JsonResponse(body, status=403)
            from django.http import HttpResponseForbidden

            return HttpResponseForbidden(body["detail"])
        return self.get_response(request)


# When the session row was last written (epoch seconds), kept in the session itself.
SESSION_TOUCHED_KEY = "_touched"
# When the user logged in (epoch seconds): the absolute lifetime counts from here.
SESSION_STARTED_KEY = "_started"


def session_past_absolute_lifetime(session, now: float | None = None) -> bool:
    """True once a logged-in session is older than SESSION_ABSOLUTE_SECONDS, however active it was."""
    started = session.get(SESSION_STARTED_KEY)
    if not isinstance(started, int | float):
        return False
    now = time.time() if now is None else now
    return now - started >= getattr(settings, "SESSION_ABSOLUTE_SECONDS", 12 * 3600)


class SlidingSessionMiddleware(SessionMiddleware):
    """Django's SessionMiddleware with an idle timeout that does not cost a write per request.

    The idle timeout (SESSION_COOKIE_AGE, 30 minutes) needs every request to push the session's
    expiry forward. SESSION_SAVE_EVERY_REQUEST does that by writing the session row on every
    request, although the expiry of two requests a second apart differs by a second. Here the row
    is written only when the expiry would move by at least SESSION_REFRESH_SECONDS (60 s by
    default), or when the session data changed anyway. The stored expiry therefore lags the last
    request by less than that: an idle session ends between 29 and 30 minutes after the last
    request, never later.
    """

    def process_request(self, request):
        super().process_request(request)
        if settings.SESSION_COOKIE_NAME not in request.COOKIES:
            return
        session = request.session
        if session_past_absolute_lifetime(session):
            from django.contrib.auth import SESSION_KEY

            from regulator.audit import record_event

            user_id = session.get(SESSION_KEY)
            session.flush()  # deletes the row and the cookie: the next middleware sees an anonymous user
            record_event(
                event="auth.session_expired",
                request=request,  # before AuthenticationMiddleware: no user yet, the id is in the detail
                detail={"user_id": user_id, "why": "absolute"},
            )

    def process_response(self, request, response):
        session = getattr(request, "session", None)
        if session is not None and not session.is_empty():
            now = int(time.time())
            from django.contrib.auth import SESSION_KEY

            if SESSION_KEY in session and SESSION_STARTED_KEY not in session:
                # A login (or a session from before the absolute lifetime existed) starts the clock.
                session[SESSION_STARTED_KEY] = now
            if session.modified:
                if session.keys() - {SESSION_TOUCHED_KEY}:  # not flushed: it is saved anyway, note when
                    session[SESSION_TOUCHED_KEY] = now
            else:
                refresh = getattr(settings, "SESSION_REFRESH_SECONDS", 60)
                # Loads the session if nothing in the request did (any request with a cookie slides it).
                touched = session.get(SESSION_TOUCHED_KEY)
                stale = not isinstance(touched, int) or not (0 <= now - touched < refresh)
                if stale and session.keys() - {SESSION_TOUCHED_KEY}:  # an expired session loads as {}
                    session[SESSION_TOUCHED_KEY] = now  # marks it modified: the parent saves it
        return super().process_response(request, response)
