from rest_framework.routers import SimpleRouter

from enforcement.api import views

router = SimpleRouter()
router.register("enforcement/inspectors", views.InspectorViewSet, basename="enforcement-inspector")
router.register("enforcement/plans", views.PlanViewSet, basename="enforcement-plan")
router.register("enforcement/draws", views.DrawViewSet, basename="enforcement-draw")
router.register("enforcement/inspections", views.InspectionViewSet, basename="enforcement-inspection")
router.register("enforcement/documents", views.DocumentViewSet, basename="enforcement-document")
router.register("enforcement/credit-scores", views.CreditScoreViewSet, basename="enforcement-credit-score")
router.register("enforcement/credit-events", views.CreditEventViewSet, basename="enforcement-credit-event")
router.register("enforcement/dishonesty-listings", views.ListingViewSet, basename="enforcement-listing")

urlpatterns = router.urls
