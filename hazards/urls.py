from django.urls import path

from hazards import views

app_name = "hazards"

urlpatterns = [
    path("", views.hazard_list, name="list"),
    path("report/", views.hazard_report_view, name="report"),
    path("<int:pk>/", views.hazard_detail, name="detail"),
    path("<int:pk>/act/<slug:action>/", views.hazard_act, name="act"),
    path("<int:pk>/photos/", views.hazard_upload, name="upload"),
    path("photos/<uuid:uid>/", views.photo_view, name="photo"),
    path("photos/<uuid:uid>/thumb/", views.photo_view, {"thumb": True}, name="photo_thumb"),
    path("checklists/", views.checklists, name="checklists"),
    path("checklists/<int:template_id>/start/<int:enterprise_id>/", views.checklist_start, name="checklist_start"),
    path("runs/<int:pk>/", views.checklist_run, name="run"),
    path("runs/<int:pk>/items/<int:item_id>/", views.checklist_run_answer, name="run_answer"),
    path("runs/<int:pk>/complete/", views.checklist_run_complete, name="run_complete"),
]
