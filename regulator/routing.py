"""WebSocket routes of every app, collected here so asgi.py stays small."""

from alerts.routing import websocket_urlpatterns as alert_routes
from devices.routing import websocket_urlpatterns as device_routes

websocket_urlpatterns = [*alert_routes, *device_routes]
