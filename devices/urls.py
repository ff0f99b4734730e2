from django.urls import path

from devices import views

app_name = "devices"

urlpatterns = [
    path("", views.device_list, name="list"),
    path("<int:pk>/", views.device_detail, name="detail"),
    path("<int:pk>/maintenance/", views.device_maintenance, name="maintenance"),
    path("channels/<int:pk>/", views.channel_detail, name="channel"),
    path("channels/<int:pk>/coil-write/", views.channel_coil_write, name="coil_write"),
]
