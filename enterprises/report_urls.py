from django.urls import path

from enterprises import report_views

app_name = "reports"

urlpatterns = [
    path("monthly/", report_views.monthly_report, name="monthly"),
]
