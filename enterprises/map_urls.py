from django.urls import path

from enterprises import map_views

app_name = "riskmap"

urlpatterns = [
    path("", map_views.risk_map, name="index"),
    path("points.json", map_views.risk_map_points, name="points"),
    path("boundaries.json", map_views.risk_map_boundaries, name="boundaries"),
]
