"""DRF throttles: per authenticated user (so one user's script never slows another) and per IP
for anonymous requests. DRF answers 429 with Retry-After."""

from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


class PerUserRateThrottle(UserRateThrottle):
    scope = "user"


class PerIPAnonRateThrottle(AnonRateThrottle):
    scope = "anon"

    def get_ident(self, request):
        from regulator.client_ip import client_ip

        return client_ip(request) or super().get_ident(request)
