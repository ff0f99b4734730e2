"""ASGI entry point for Daphne: HTTP through Django behind the body cap, WebSockets with session auth and
an Origin check."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "regulator.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from regulator.bodylimit import BodyLimitASGIMiddleware, install_daphne_guard  # noqa: E402
from regulator.consumers import OriginValidator  # noqa: E402
from regulator.routing import websocket_urlpatterns  # noqa: E402

install_daphne_guard()  # Daphne takes in a whole body before any ASGI middleware runs
application = ProtocolTypeRouter(
    {
        "http": BodyLimitASGIMiddleware(django_asgi_app),
        "websocket": OriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

from regulator.startup import warm_up_and_freeze  # noqa: E402

warm_up_and_freeze()
