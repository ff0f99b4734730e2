from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = _("监测预警")

    def ready(self):
        from alerts.dossier import alert_summary
        from alerts.indicators import register_indicators
        from alerts.runtime import poller_sink, reading_sink, status_sink
        from devices.hooks import register_poller_sink, register_reading_sink, register_status_sink
        from enterprises.dossier import DossierSection, register

        register_indicators()
        register_reading_sink(reading_sink)
        register_status_sink(status_sink)
        register_poller_sink(poller_sink)
        register(
            DossierSection(
                key="alerts", title=_("监测报警"), order=50, template="alerts/dossier_section.html", build=alert_summary
            )
        )
