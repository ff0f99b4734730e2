"""MLPS level 3 (等保三级) controls around login, sessions and roles.

Modules: ``hashers`` (PBKDF2-HMAC-SM3), ``validators`` and ``policy`` (password rules, expiry,
forced change), ``lockout`` (per existing account), ``ratelimit`` (login, per IP and per
(IP, username)) and ``throttling`` (API), ``cache`` (a database cache with an atomic incr),
``totp`` (second factor), ``duties`` (三权分立), ``net`` (re-exports ``regulator.client_ip``, the
client IP behind trusted proxies), ``classification`` and ``masking`` (data governance),
``middleware`` (enforcement per request).

For WebSocket consumers, ``session_alive(scope)`` says whether the HTTP session behind a socket
is still within its idle limit and its absolute lifetime; see its docstring.
"""

from __future__ import annotations


def session_alive(scope) -> bool:
    """True while the session of a Channels ``scope`` is alive (not expired, not logged out).

    The HTTP side slides the expiry as requests come in (SlidingSessionMiddleware), so a socket
    that only receives pushes would otherwise outlive an idle session. A consumer calls this
    on connect and then periodically (e.g. every 60 s, or before each push) and closes with code
    4401 when it returns False::

        from asgiref.sync import sync_to_async
        from regulator.security import session_alive

        if not await sync_to_async(session_alive)(self.scope):
            await self.close(code=4401)

    It reads the session store directly (no save, so it does not extend the session).
    """
    from django.conf import settings
    from django.contrib.auth import SESSION_KEY

    session = scope.get("session") if hasattr(scope, "get") else None
    key = getattr(session, "session_key", None)
    if not key:
        return False
    from importlib import import_module

    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=key)
    data = store.load()  # an expired or missing session loads as {}
    if not data or SESSION_KEY not in data:
        return False
    from regulator.middleware import session_past_absolute_lifetime

    if session_past_absolute_lifetime(data):  # the absolute lifetime ends a socket as it ends a page
        return False
    user = scope.get("user")
    return not (
        user is not None and getattr(user, "is_authenticated", False) and str(user.pk) != str(data[SESSION_KEY])
    )
