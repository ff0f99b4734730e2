from django.urls import path

from enforcement import views

app_name = "enforcement"

urlpatterns = [
    path("", views.plans, name="plans"),
    path("plans/new/", views.plan_create, name="plan_create"),
    path("plans/<int:pk>/", views.plan_detail, name="plan_detail"),
    path("plans/<int:pk>/draw/", views.plan_draw, name="plan_draw"),
    path("plans/<int:pk>/close/", views.plan_close, name="plan_close"),
    path("draws/<int:pk>/verify/", views.draw_verify, name="draw_verify"),
    path("inspections/", views.inspections, name="inspections"),
    path("inspections/<int:pk>/", views.inspection_detail, name="inspection_detail"),
    path("inspections/<int:pk>/cancel/", views.inspection_cancel, name="inspection_cancel"),
    path("inspections/<int:pk>/photos/", views.inspection_photo, name="inspection_photo"),
    path("inspections/<int:pk>/photos/<int:photo_id>/", views.photo_file, name="photo_file"),
    path("inspections/<int:pk>/documents/", views.document_create, name="document_create"),
    path("documents/<int:pk>/pdf/", views.document_pdf, name="document_pdf"),
    path("inspectors/", views.inspectors, name="inspectors"),
    path("credit/", views.credit, name="credit"),
    path("credit/enterprises/<int:enterprise_id>/", views.credit_enterprise, name="credit_enterprise"),
    path("credit/listings/new/", views.listing_create, name="listing_create"),
    path("credit/listings/<int:listing_id>/repair/", views.repair_apply, name="repair_apply"),
    path("credit/repairs/<int:application_id>/decide/", views.repair_decide, name="repair_decide"),
    path("public/", views.public_index, name="public"),
    path("public/draws/<int:pk>/", views.public_draw, name="public_draw"),
    path("public/draws/<int:pk>/result.json", views.public_draw_result, name="public_draw_result"),
]
