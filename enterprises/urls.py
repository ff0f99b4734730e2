from django.urls import path, re_path

from enterprises import views

app_name = "enterprises"

urlpatterns = [
    path("", views.enterprise_list, name="list"),
    path("new/", views.enterprise_create, name="create"),
    re_path(r"^export\.(?P<fmt>csv|xlsx)$", views.enterprise_export, name="export"),
    path("<int:pk>/", views.enterprise_detail, name="detail"),
    path("<int:pk>/edit/", views.enterprise_edit, name="edit"),
    path("<int:pk>/licences/new/", views.licence_form, name="licence-create"),
    path("<int:pk>/licences/<int:licence_id>/", views.licence_form, name="licence-edit"),
    path("<int:pk>/licences/<int:licence_id>/delete/", views.licence_delete, name="licence-delete"),
    path("<int:pk>/major-hazards/new/", views.installation_form, name="installation-create"),
    path("<int:pk>/major-hazards/<int:installation_id>/", views.installation_form, name="installation-edit"),
    path(
        "<int:pk>/major-hazards/<int:installation_id>/delete/",
        views.installation_delete,
        name="installation-delete",
    ),
]
