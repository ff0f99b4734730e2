from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from django.utils import timezone
from django.views.decorators.cache import cache_control
from django.views.decorators.http import last_modified
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from enterprises.dashboard_views import DashboardAPIView
from regulator import views

_CATALOG_LOADED_AT = timezone.now().replace(microsecond=0)


def healthz(request):
    return JsonResponse({"status": "ok"})


api_v1 = [
    path("", include("regulator.api.urls")),
    path("", include("enterprises.api.urls")),
    path("", include("hazards.api.urls")),
    path("", include("enforcement.api.urls")),
    path("", include("devices.api.urls")),
    path("", include("alerts.api.urls")),
    path("dashboard/", DashboardAPIView.as_view(), name="dashboard-api"),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("notifications/", views.notifications, name="notifications"),
    path("i18n/", include("django.conf.urls.i18n")),
    # Translations for page scripts (djangojs domain). Catalogs are loaded at start-up, so the start
    # time is their Last-Modified: browsers revalidate each page (a cheap 304); base.html puts the
    # language in the URL so a language switch never reuses the other language's cached catalog.
    path(
        "jsi18n/",
        cache_control(no_cache=True)(
            last_modified(lambda request, **kw: _CATALOG_LOADED_AT)(JavaScriptCatalog.as_view())
        ),
        name="javascript-catalog",
    ),
    path("accounts/", include("regulator.account_urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("enterprises/", include("enterprises.urls")),
    path("hazards/", include("hazards.urls")),
    path("enforcement/", include("enforcement.urls")),
    path("devices/", include("devices.urls")),
    path("alerts/", include("alerts.urls")),
    path("map/", include("enterprises.map_urls")),
    path("reports/", include("enterprises.report_urls")),
    path("dashboard/", include("enterprises.dashboard_urls")),
]

admin.site.site_header = "安全生产信息化监管平台"
admin.site.site_title = "监管平台后台"
