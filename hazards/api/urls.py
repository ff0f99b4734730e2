from rest_framework.routers import SimpleRouter

from hazards.api import views

router = SimpleRouter()
router.register("hazards", views.HazardViewSet, basename="hazard")
router.register("checklist-templates", views.ChecklistTemplateViewSet, basename="checklist-template")
router.register("checklist-runs", views.ChecklistRunViewSet, basename="checklist-run")

urlpatterns = router.urls
