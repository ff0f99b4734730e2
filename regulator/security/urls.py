from django.urls import path

from regulator.security import views

urlpatterns = [
    path("audit/", views.audit_log, name="audit"),
    path("audit/export.csv", views.audit_export, name="audit_export"),
    path("locks/", views.lock_list, name="locks"),
    path("locks/<int:pk>/unlock/", views.lock_unlock, name="unlock"),
]
urlpatterns += [
    path("reveal/<str:app_label>/<str:model>/<str:pk>/<str:field>/", views.reveal, name="reveal"),
    path("classification/", views.classification_page, name="classification"),
]
