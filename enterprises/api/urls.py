from rest_framework.routers import SimpleRouter

from enterprises.api import views

router = SimpleRouter()
router.register("enterprises", views.EnterpriseViewSet, basename="enterprise")
router.register("industries", views.IndustryViewSet, basename="industry")
router.register("licences", views.LicenceViewSet, basename="licence")
router.register("major-hazards", views.InstallationViewSet, basename="major-hazard")

urlpatterns = router.urls
