from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EnforcementConfig(AppConfig):
    name = "enforcement"
    verbose_name = _("执法检查")

    def ready(self):
        from enforcement.dossier import register_sections

        register_sections()

        from enforcement.indicators import register_indicators

        register_indicators()
