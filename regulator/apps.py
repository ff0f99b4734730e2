from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RegulatorConfig(AppConfig):
    name = "regulator"
    verbose_name = _("监管平台核心")

    def ready(self):
        # The upload validator's deployment check and Pillow's pixel guard.
        from regulator import uploads

        uploads.configure_pillow()
