from django.urls import path
from rest_framework.routers import SimpleRouter

from alerts.api.views import AlertRuleViewSet, AlertViewSet, operating_mode

router = SimpleRouter()
router.register("alerts", AlertViewSet, basename="alert")
router.register("alert-rules", AlertRuleViewSet, basename="alert-rule")

urlpatterns = [
    path("operating-modes/<int:enterprise_id>/", operating_mode, name="operating-mode"),
    *router.urls,
]
