"""Choices of the registry, and the GB 18218-2018 tables (beta by substance class, alpha by people)."""

from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _


class IndustryLevel(models.IntegerChoices):
    SECTION = 1, _("门类")
    DIVISION = 2, _("大类")
    GROUP = 3, _("中类")
    CLASS = 4, _("小类")


class HighRiskSector(models.TextChoices):
    NONE = "", _("非高危行业")
    CHEMICALS = "chemicals", _("危险化学品")
    MINING = "mining", _("矿山")
    METALLURGY = "metallurgy", _("冶金")
    CONSTRUCTION = "construction", _("建筑施工")
    HAZARDOUS_STORAGE = "hazardous_storage", _("危险货物仓储")
    FIREWORKS = "fireworks", _("烟花爆竹")


class Scale(models.TextChoices):
    LARGE = "large", _("大型")
    MEDIUM = "medium", _("中型")
    SMALL = "small", _("小型")
    MICRO = "micro", _("微型")


class StandardisationLevel(models.TextChoices):
    NONE = "", _("未达标")
    LEVEL1 = "1", _("一级")
    LEVEL2 = "2", _("二级")
    LEVEL3 = "3", _("三级")


class OperatingStatus(models.TextChoices):
    OPERATING = "operating", _("正常生产")
    CONSTRUCTION = "construction", _("在建")
    SUSPENDED = "suspended", _("停产整顿")
    CLOSED = "closed", _("关闭")


class RiskGrade(models.TextChoices):
    RED = "red", _("重大风险（红）")
    ORANGE = "orange", _("较大风险（橙）")
    YELLOW = "yellow", _("一般风险（黄）")
    BLUE = "blue", _("低风险（蓝）")


class RiskMethod(models.TextChoices):
    MODEL = "model", _("模型")
    RULES = "rules", _("规则")


class LicenceType(models.TextChoices):
    SAFETY_PRODUCTION = "safety_production", _("安全生产许可证")
    HAZCHEM_OPERATION = "hazchem_operation", _("危险化学品经营许可证")
    HAZCHEM_USE = "hazchem_use", _("危险化学品安全使用许可证")
    MINING = "mining", _("采矿许可证")
    FIREWORKS = "fireworks", _("烟花爆竹经营许可证")
    OTHER = "other", _("其他许可证")


class MajorHazardGrade(models.IntegerChoices):
    GRADE1 = 1, _("一级")
    GRADE2 = 2, _("二级")
    GRADE3 = 3, _("三级")
    GRADE4 = 4, _("四级")


class SubstanceClass(models.TextChoices):
    """GB 18218-2018 table 3 hazard categories, each with its default correction factor beta."""

    SPECIFIC = "specific", _("表1所列毒性气体（按物质取值）")
    J1 = "J1", _("J1 类急性毒性")
    J2 = "J2", _("J2 类急性毒性")
    J3 = "J3", _("J3 类急性毒性")
    J4 = "J4", _("J4 类急性毒性")
    J5 = "J5", _("J5 类急性毒性")
    W1_1 = "W1.1", _("W1.1 不稳定爆炸物/1.1项爆炸物")
    W1_2 = "W1.2", _("W1.2 1.2、1.3、1.5、1.6项爆炸物")
    W1_3 = "W1.3", _("W1.3 1.4项爆炸物")
    W2 = "W2", _("W2 易燃气体")
    W3 = "W3", _("W3 气溶胶")
    W4 = "W4", _("W4 氧化性气体")
    W5_1 = "W5.1", _("W5.1 易燃液体（类别1等）")
    W5_2 = "W5.2", _("W5.2 易燃液体（高于沸点操作）")
    W5_3 = "W5.3", _("W5.3 易燃液体（类别2）")
    W5_4 = "W5.4", _("W5.4 易燃液体（类别2、3，工作温度高于沸点）")
    W6_1 = "W6.1", _("W6.1 自反应物质 A/B 型")
    W6_2 = "W6.2", _("W6.2 自反应物质 C-F 型")
    W7_1 = "W7.1", _("W7.1 有机过氧化物 A/B 型")
    W7_2 = "W7.2", _("W7.2 有机过氧化物 C-F 型")
    W8 = "W8", _("W8 自燃液体/固体")
    W9_1 = "W9.1", _("W9.1 氧化性固体和液体 类别1")
    W9_2 = "W9.2", _("W9.2 氧化性固体和液体 类别2、3")
    W10 = "W10", _("W10 易燃固体")
    W11 = "W11", _("W11 遇水放出易燃气体的物质")


# GB 18218-2018 table 3 (categories) and table 2 (named toxic gases, used with SPECIFIC).
BETA_BY_CLASS: dict[str, Decimal] = {
    "J1": Decimal("4"),
    "J2": Decimal("1"),
    "J3": Decimal("2"),
    "J4": Decimal("2"),
    "J5": Decimal("1"),
    "W1.1": Decimal("2"),
    "W1.2": Decimal("2"),
    "W1.3": Decimal("2"),
    "W2": Decimal("1.5"),
    "W3": Decimal("1"),
    "W4": Decimal("1"),
    "W5.1": Decimal("1.5"),
    "W5.2": Decimal("1"),
    "W5.3": Decimal("1"),
    "W5.4": Decimal("1"),
    "W6.1": Decimal("1.5"),
    "W6.2": Decimal("1"),
    "W7.1": Decimal("1.5"),
    "W7.2": Decimal("1"),
    "W8": Decimal("1"),
    "W9.1": Decimal("1"),
    "W9.2": Decimal("1"),
    "W10": Decimal("1"),
    "W11": Decimal("1"),
}
BETA_BY_TOXIC_GAS: dict[str, Decimal] = {
    "一氧化碳": Decimal("2"),
    "二氧化硫": Decimal("2"),
    "氨": Decimal("2"),
    "环氧乙烷": Decimal("2"),
    "氯化氢": Decimal("3"),
    "溴甲烷": Decimal("3"),
    "氯": Decimal("4"),
    "硫化氢": Decimal("5"),
    "氟化氢": Decimal("5"),
    "二氧化氮": Decimal("10"),
    "氰化氢": Decimal("10"),
    "碳酰氯": Decimal("20"),
    "磷化氢": Decimal("20"),
    "异氰酸甲酯": Decimal("20"),
}


def alpha_for_people(people_within_500m: int) -> Decimal:
    """GB 18218-2018 table 4: correction factor alpha from the people exposed within 500 m."""
    if people_within_500m >= 100:
        return Decimal("2.0")
    if people_within_500m >= 50:
        return Decimal("1.5")
    if people_within_500m >= 30:
        return Decimal("1.2")
    if people_within_500m >= 1:
        return Decimal("1.0")
    return Decimal("0.5")


def grade_for_r(r_value: Decimal) -> int:
    """一级 R>=100, 二级 50<=R<100, 三级 10<=R<50, 四级 R<10."""
    if r_value >= 100:
        return MajorHazardGrade.GRADE1
    if r_value >= 50:
        return MajorHazardGrade.GRADE2
    if r_value >= 10:
        return MajorHazardGrade.GRADE3
    return MajorHazardGrade.GRADE4
