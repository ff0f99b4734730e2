from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EnterprisesConfig(AppConfig):
    name = "enterprises"
    verbose_name = _("企业档案")

    def ready(self):
        from enterprises.dossier_sections import register_sections

        register_sections()

        from enterprises.indicators import register_enterprise_indicators

        register_enterprise_indicators()
