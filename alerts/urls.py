from django.urls import path

from alerts import views

app_name = "alerts"

urlpatterns = [
    path("", views.board, name="board"),
    path("all/", views.alert_list, name="list"),
    path("analytics/", views.analytics_page, name="analytics"),
    path("mode/<int:enterprise_id>/", views.set_mode, name="set_mode"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/to-hazard/", views.to_hazard, name="to_hazard"),
    path("<int:pk>/<str:action>/", views.act, name="act"),
]
