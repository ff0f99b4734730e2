from django.urls import path
from rest_framework.routers import SimpleRouter

from regulator.api import views

router = SimpleRouter()
router.register("regions", views.RegionViewSet, basename="region")
router.register("parks", views.ParkViewSet, basename="park")

urlpatterns = [path("me/", views.me, name="api-me"), *router.urls]
