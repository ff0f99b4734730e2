"""The registry's tabular layout, shared by export and import so an export can be re-imported."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

# (key, Chinese header, English header, other accepted header spellings)
COLUMNS: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("uscc", "统一社会信用代码", "uscc", ("信用代码", "社会信用代码", "unified social credit code", "credit code")),
    ("name", "企业名称", "name", ("名称", "单位名称", "enterprise name", "enterprise")),
    ("former_names", "曾用名", "former_names", ("former names",)),
    ("legal_representative", "法定代表人", "legal_representative", ("法人", "legal representative")),
    ("principal_name", "主要负责人", "principal_name", ("principal",)),
    ("principal_phone", "主要负责人电话", "principal_phone", ("principal phone",)),
    ("safety_officer_name", "企业安全专员", "safety_officer_name", ("安全专员", "safety officer")),
    ("safety_officer_phone", "安全专员电话", "safety_officer_phone", ("safety officer phone",)),
    ("safety_manager_name", "安全管理人员", "safety_manager_name", ("safety manager",)),
    ("safety_manager_phone", "安全管理人员电话", "safety_manager_phone", ("safety manager phone",)),
    ("address", "地址", "address", ("注册地址", "经营地址")),
    ("region_code", "区划代码", "region_code", ("行政区划代码", "region code")),
    ("region_name", "所在区划", "region", ("区划", "region name")),
    ("park_code", "园区编码", "park_code", ("park code",)),
    ("park_name", "所在园区", "park", ("园区", "park name")),
    ("industry_code", "行业代码", "industry_code", ("国民经济行业代码", "industry code", "industry")),
    ("industry_name", "行业名称", "industry_name", ("行业", "industry name")),
    ("high_risk_sector", "高危行业", "high_risk_sector", ("high risk sector",)),
    ("scale", "规模", "scale", ("企业规模",)),
    ("employees", "从业人数", "employees", ("职工人数", "人数")),
    ("standardisation_level", "安全生产标准化等级", "standardisation_level", ("标准化等级", "standardisation")),
    ("is_key", "重点企业", "is_key", ("是否重点企业", "key enterprise")),
    ("operating_status", "经营状态", "operating_status", ("状态", "operating status")),
    ("risk_grade", "风险等级", "risk_grade", ("risk grade",)),
    ("longitude", "经度", "longitude", ("lng", "lon")),
    ("latitude", "纬度", "latitude", ("lat",)),
]

HEADER_LOOKUP: dict[str, str] = {}
for _key, _zh, _en, _others in COLUMNS:
    for _spelling in (_zh, _en, _key, *_others):
        HEADER_LOOKUP[_spelling.strip().lower().replace(" ", "").replace("_", "")] = _key

EXPORT_LABEL = _("企业名录")


def header_key(text) -> str | None:
    if text is None:
        return None
    return HEADER_LOOKUP.get(str(text).strip().lstrip("\ufeff").lower().replace(" ", "").replace("_", ""))
