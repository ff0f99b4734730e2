from django.urls import path

from devices.consumers import ChannelLiveConsumer

websocket_urlpatterns: list = [
    path("ws/devices/channels/<int:channel_id>/", ChannelLiveConsumer.as_asgi()),
]
