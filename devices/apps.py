from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DevicesConfig(AppConfig):
    name = "devices"
    verbose_name = _("监测设备")

    def ready(self):
        from devices.dossier import devices_summary
        from devices.indicators import register_indicators
        from enterprises.dossier import DossierSection, register

        register(
            DossierSection(
                key="devices",
                title=_("监测设备"),
                order=50,
                template="devices/dossier_section.html",
                build=devices_summary,
            )
        )
        register_indicators()
