"""Roles and region levels shared by every app."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    INSPECTOR = "inspector", _("执法人员")
    SECTION_HEAD = "section_head", _("科室负责人")
    REGULATOR_ADMIN = "regulator_admin", _("监管部门管理员")
    PARK_MANAGER = "park_manager", _("园区管理人员")
    ENTERPRISE_USER = "enterprise_user", _("企业用户")
    # MLPS level 3 separation of duties (三权分立): these see no business data.
    SYSTEM_ADMIN = "system_admin", _("系统管理员")
    SECURITY_ADMIN = "security_admin", _("安全管理员")
    AUDITOR = "auditor", _("安全审计员")


REGULATOR_ROLES = frozenset({Role.INSPECTOR, Role.SECTION_HEAD, Role.REGULATOR_ADMIN})
MLPS_ROLES = frozenset({Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN, Role.AUDITOR})


class EnterpriseRole(models.TextChoices):
    SAFETY_OFFICER = "safety_officer", _("企业安全专员")
    SAFETY_MANAGER = "safety_manager", _("安全管理人员")
    PRINCIPAL = "principal", _("主要负责人")


class RegionLevel(models.IntegerChoices):
    PROVINCE = 1, _("省")
    CITY = 2, _("市")
    COUNTY = 3, _("县/区")
    TOWNSHIP = 4, _("乡镇/街道")


class ParkKind(models.TextChoices):
    CHEMICAL = "chemical", _("化工园区")
    INDUSTRIAL = "industrial", _("工业园区")
    OTHER = "other", _("其他园区")
