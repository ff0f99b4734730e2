from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HazardsConfig(AppConfig):
    name = "hazards"
    verbose_name = _("隐患排查治理")

    def ready(self):
        from enterprises.dossier import DossierSection, register
        from hazards.indicators import register_indicators

        register_indicators()
        register(
            DossierSection(
                key="hazards",
                title=_("隐患排查治理"),
                order=30,
                template="hazards/dossier_section.html",
                build=_dossier_section,
            )
        )


def _dossier_section(enterprise, user=None) -> dict:
    from hazards.selectors import enterprise_hazard_summary

    return enterprise_hazard_summary(enterprise)
