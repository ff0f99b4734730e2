from django.urls import path
from rest_framework.routers import SimpleRouter

from devices.api import views

router = SimpleRouter()
router.register("devices", views.DeviceViewSet, basename="device")
router.register("channels", views.ChannelViewSet, basename="channel")

urlpatterns = [path("readings/", views.ReadingIngestView.as_view(), name="readings-ingest"), *router.urls]
