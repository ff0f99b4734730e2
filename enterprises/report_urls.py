from django.urls import path, re_path

from enterprises import report_views

app_name = "reports"

urlpatterns = [
    path("monthly/", report_views.monthly_report, name="monthly"),
    re_path(
        r"^monthly/archive/(?P<code>\d{6,12})/(?P<month>\d{4}-\d{2})\.(?P<fmt>xlsx|pdf)$",
        report_views.archived_report,
        name="archived",
    ),
]
