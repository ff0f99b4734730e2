"""The risk features' keys and labels (light: no pandas), used by the dossier and the explanations."""

from django.utils.translation import gettext_lazy as _

# key -> label shown in the dossier's reasons. The order is the model's column order.
FEATURES: dict[str, str] = {
    "high_risk_sector": _("高危行业"),
    "chemicals": _("危险化学品/危货仓储行业"),
    "major_hazard_count": _("重大危险源数量"),
    "major_hazard_level": _("重大危险源最高等级（一级=4）"),
    "substance_count": _("危险化学品种类数"),
    "scale": _("企业规模"),
    "log_employees": _("从业人数（对数）"),
    "is_key": _("重点企业"),
    "no_standardisation": _("安全生产标准化未达标"),
    "hazards_found": _("近180天发现隐患数"),
    "hazards_found_recent": _("近30天发现隐患数"),
    "major_hazards_found": _("近180天重大隐患数"),
    "hazards_open": _("未整改隐患数"),
    "hazards_overdue": _("逾期未整改隐患数"),
    "major_hazards_open": _("未销号重大隐患数"),
    "hazards_closed_late": _("近180天逾期销号隐患数"),
    "alerts_level1": _("近180天一级报警数"),
    "alerts_level2": _("近180天二级报警数"),
    "alerts_other": _("近180天三、四级报警数"),
    "alerts_late_ack": _("近180天超时未确认报警数"),
    "credit_grade": _("信用等级（A=0…D=3）"),
    "inspections": _("近180天执法检查次数"),
    "penalties": _("近180天行政处罚/停产整顿次数"),
    "rectification_orders": _("近180天责令限期整改次数"),
    "accidents": _("近180天生产安全事故数"),
    "has_devices": _("接入监测设备"),
    "device_offline_rate": _("设备离线率"),
    "data_untimely_rate": _("数据未及时上传测点比例"),
}
FEATURE_NAMES = list(FEATURES)


def feature_label(key: str) -> str:
    return str(FEATURES.get(key, key))
