"""The enterprise registry ("一企一档"): industries, enterprises, licences, major hazard installations."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from enterprises import uscc
from enterprises.choices import (
    BETA_BY_CLASS,
    BETA_BY_TOXIC_GAS,
    HighRiskSector,
    IndustryLevel,
    LicenceType,
    MajorHazardGrade,
    OperatingStatus,
    RiskGrade,
    RiskMethod,
    Scale,
    StandardisationLevel,
    SubstanceClass,
    alpha_for_people,
    grade_for_r,
)
from regulator.fields import EncryptedTextField


def validate_uscc(value: str) -> None:
    uscc.validate(value)


class Industry(models.Model):
    """GB/T 4754-2017 node: section letter > 2-digit division > 3-digit group > 4-digit class."""

    code = models.CharField(_("行业代码"), max_length=5, unique=True)
    name = models.CharField(_("行业名称"), max_length=128)
    level = models.PositiveSmallIntegerField(_("层级"), choices=IndustryLevel.choices)
    parent = models.ForeignKey(
        "self", verbose_name=_("上级"), null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    high_risk_sector = models.CharField(
        _("高危行业"), max_length=32, choices=HighRiskSector.choices, blank=True, default=""
    )
    # The section letter of every node, so "制造业 C" can be filtered without walking the tree.
    section = models.CharField(_("门类"), max_length=1, blank=True, default="", db_index=True)

    class Meta:
        verbose_name = _("国民经济行业")
        verbose_name_plural = _("国民经济行业")
        ordering = ["code"]

    def __str__(self):
        return f"{self.code} {self.name}"


def join_former_names(names) -> str:
    return "；".join(str(n) for n in (names or []) if str(n).strip())


class Enterprise(models.Model):
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    uscc = models.CharField(_("统一社会信用代码"), max_length=18, unique=True, validators=[validate_uscc])
    name = models.CharField(_("企业名称"), max_length=200, db_index=True)
    former_names = models.JSONField(_("曾用名"), default=list, blank=True)
    # Plain-text copy of former_names for searching (JSON text differs between databases).
    former_names_text = models.TextField(blank=True, default="", editable=False)
    legal_representative = models.CharField(_("法定代表人"), max_length=64, blank=True)
    principal_name = models.CharField(_("主要负责人"), max_length=64, blank=True)
    principal_phone = EncryptedTextField(_("主要负责人电话"))
    safety_officer_name = models.CharField(_("企业安全专员"), max_length=64, blank=True)
    safety_officer_phone = EncryptedTextField(_("安全专员电话"))
    safety_manager_name = models.CharField(_("安全管理人员"), max_length=64, blank=True)
    safety_manager_phone = EncryptedTextField(_("安全管理人员电话"))
    address = models.CharField(_("地址"), max_length=255, blank=True)
    region = models.ForeignKey(
        "regulator.Region", verbose_name=_("所在区划"), on_delete=models.PROTECT, related_name="enterprises"
    )
    park = models.ForeignKey(
        "regulator.Park",
        verbose_name=_("所在园区"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="enterprises",
    )
    longitude = models.DecimalField(
        _("经度(WGS-84)"),
        max_digits=9,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("-180")), MaxValueValidator(Decimal("180"))],
    )
    latitude = models.DecimalField(
        _("纬度(WGS-84)"),
        max_digits=8,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("-90")), MaxValueValidator(Decimal("90"))],
    )
    industry = models.ForeignKey(Industry, verbose_name=_("行业"), on_delete=models.PROTECT, related_name="enterprises")
    scale = models.CharField(_("规模"), max_length=8, choices=Scale.choices, default=Scale.SMALL)
    employees = models.PositiveIntegerField(_("从业人数"), default=0)
    standardisation_level = models.CharField(
        _("安全生产标准化等级"), max_length=1, choices=StandardisationLevel.choices, blank=True, default=""
    )
    is_key = models.BooleanField(_("重点企业"), default=False)
    high_risk_sector = models.CharField(
        _("高危行业"), max_length=32, choices=HighRiskSector.choices, blank=True, default=""
    )
    operating_status = models.CharField(
        _("经营状态"), max_length=16, choices=OperatingStatus.choices, default=OperatingStatus.OPERATING
    )
    risk_grade = models.CharField(_("风险等级"), max_length=8, choices=RiskGrade.choices, blank=True, default="")
    created_at = models.DateTimeField(_("建档时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("企业")
        verbose_name_plural = _("企业")
        ordering = ["name", "id"]
        # Few indexes on purpose: each costs every import row. Low-cardinality flags (is_key,
        # risk_grade, sector) are filtered together with the scope, which the region index serves.
        indexes = [
            models.Index(fields=["region", "name"]),
            models.Index(fields=["park", "name"]),
        ]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        self.former_names_text = join_former_names(self.former_names)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "former_names" in update_fields:
            kwargs["update_fields"] = {*update_fields, "former_names_text"}
        super().save(*args, **kwargs)

    def clean(self):
        super().clean()
        if self.uscc:
            try:
                self.uscc = uscc.validate(self.uscc)
            except ValidationError as exc:
                raise ValidationError({"uscc": exc.messages}) from exc
        if self.park_id and self.region_id and self.park.region.path and self.region.path:
            if not self.region.path.startswith(self.park.region.path):
                raise ValidationError({"park": _("园区不在企业所在区划内")})
        if (self.longitude is None) != (self.latitude is None):
            raise ValidationError({"latitude": _("经度和纬度需同时填写")})


class Licence(models.Model):
    enterprise = models.ForeignKey(
        Enterprise, verbose_name=_("企业"), on_delete=models.CASCADE, related_name="licences"
    )
    licence_type = models.CharField(_("许可证类型"), max_length=32, choices=LicenceType.choices)
    number = models.CharField(_("许可证编号"), max_length=64)
    scope = models.TextField(_("许可范围"), blank=True)
    issued_on = models.DateField(_("发证日期"))
    expires_on = models.DateField(_("有效期至"), db_index=True)

    class Meta:
        verbose_name = _("许可证")
        verbose_name_plural = _("许可证")
        ordering = ["expires_on"]
        constraints = [
            models.UniqueConstraint(fields=["licence_type", "number"], name="unique_licence_number"),
            models.CheckConstraint(
                condition=models.Q(expires_on__gte=models.F("issued_on")), name="licence_expires_after_issue"
            ),
        ]

    def __str__(self):
        return f"{self.get_licence_type_display()} {self.number}"

    def clean(self):
        if self.issued_on and self.expires_on and self.expires_on < self.issued_on:
            raise ValidationError({"expires_on": _("有效期不能早于发证日期")})

    @property
    def days_left(self) -> int:
        return (self.expires_on - timezone.localdate()).days

    @property
    def is_expired(self) -> bool:
        return self.days_left < 0

    @property
    def expiring_soon(self) -> bool:
        return 0 <= self.days_left <= settings.LICENCE_EXPIRY_WARNING_DAYS


def licences_expiring_q(today=None):
    today = today or timezone.localdate()
    return models.Q(expires_on__gte=today, expires_on__lte=today + timedelta(days=settings.LICENCE_EXPIRY_WARNING_DAYS))


class MajorHazardInstallation(models.Model):
    """重大危险源 (GB 18218-2018). R and the grade are recomputed by the service on every change."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    enterprise = models.ForeignKey(
        Enterprise, verbose_name=_("企业"), on_delete=models.CASCADE, related_name="major_hazards"
    )
    name = models.CharField(_("危险源名称"), max_length=128)
    code = models.CharField(_("危险源编号"), max_length=32, blank=True)
    people_within_500m = models.PositiveIntegerField(_("500米范围内暴露人数"), default=0)
    process_parameters = EncryptedTextField(_("工艺参数"), help_text=_("敏感数据，SM4 加密存储"))
    custodian_main = models.CharField(_("主要负责人（包保）"), max_length=64, blank=True)
    custodian_technical = models.CharField(_("技术负责人（包保）"), max_length=64, blank=True)
    custodian_operational = models.CharField(_("操作负责人（包保）"), max_length=64, blank=True)
    r_value = models.DecimalField(_("R值"), max_digits=12, decimal_places=3, default=Decimal("0"))
    grade = models.PositiveSmallIntegerField(
        _("危险源等级"), choices=MajorHazardGrade.choices, default=MajorHazardGrade.GRADE4
    )

    class Meta:
        verbose_name = _("重大危险源")
        verbose_name_plural = _("重大危险源")
        ordering = ["grade", "name"]

    def __str__(self):
        return self.name

    @property
    def alpha(self) -> Decimal:
        return alpha_for_people(self.people_within_500m)

    def compute(self, substances=None) -> tuple[Decimal, int, Decimal]:
        """(R, grade, S) from the substances; S = sum(q/Q) >= 1 makes it a major hazard installation."""
        substances = list(self.substances.all()) if substances is None else substances
        weighted = sum((s.beta * s.actual_quantity / s.critical_quantity for s in substances), Decimal("0"))
        s_value = sum((s.actual_quantity / s.critical_quantity for s in substances), Decimal("0"))
        r_value = (self.alpha * weighted).quantize(Decimal("0.001"))
        return r_value, grade_for_r(r_value), s_value


class HazardousSubstance(models.Model):
    installation = models.ForeignKey(
        MajorHazardInstallation, verbose_name=_("重大危险源"), on_delete=models.CASCADE, related_name="substances"
    )
    name = models.CharField(_("危险化学品名称"), max_length=64)
    cas_number = models.CharField(_("CAS号"), max_length=16, blank=True)
    substance_class = models.CharField(_("危险性类别"), max_length=16, choices=SubstanceClass.choices)
    actual_quantity = models.DecimalField(
        _("实际存在量 q (t)"), max_digits=12, decimal_places=3, validators=[MinValueValidator(Decimal("0"))]
    )
    critical_quantity = models.DecimalField(
        _("临界量 Q (t)"), max_digits=12, decimal_places=3, validators=[MinValueValidator(Decimal("0.001"))]
    )
    beta = models.DecimalField(_("校正系数 β"), max_digits=5, decimal_places=2)

    class Meta:
        verbose_name = _("危险化学品")
        verbose_name_plural = _("危险化学品")
        constraints = [
            models.CheckConstraint(condition=models.Q(critical_quantity__gt=0), name="critical_quantity_positive"),
            models.CheckConstraint(condition=models.Q(actual_quantity__gte=0), name="actual_quantity_not_negative"),
        ]

    def __str__(self):
        return self.name

    @staticmethod
    def default_beta(substance_class: str, name: str) -> Decimal | None:
        if substance_class == SubstanceClass.SPECIFIC:
            return BETA_BY_TOXIC_GAS.get(name)
        return BETA_BY_CLASS.get(substance_class)

    def clean(self):
        if self.beta is None:
            self.beta = self.default_beta(self.substance_class, self.name)
            if self.beta is None:
                raise ValidationError({"beta": _("该物质无标准校正系数，请手工填写 β")})


class EnterpriseChange(models.Model):
    """The dossier timeline: what changed, who changed it and through which door."""

    class Source(models.TextChoices):
        UI = "ui", _("页面")
        API = "api", _("接口")
        IMPORT = "import", _("批量导入")
        ADMIN = "admin", _("后台管理")
        SYSTEM = "system", _("系统")

    enterprise = models.ForeignKey(Enterprise, on_delete=models.CASCADE, related_name="changes")
    at = models.DateTimeField(_("时间"), default=timezone.now, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    source = models.CharField(_("来源"), max_length=16, choices=Source.choices)
    action = models.CharField(_("操作"), max_length=32)
    summary = models.CharField(_("摘要"), max_length=255, blank=True)
    changes = models.JSONField(_("变更内容"), default=dict, blank=True)

    class Meta:
        verbose_name = _("档案变更记录")
        verbose_name_plural = _("档案变更记录")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["enterprise", "-at"])]

    def __str__(self):
        return f"{self.enterprise_id} {self.action} {self.at:%Y-%m-%d %H:%M}"


class RiskModel(models.Model):
    """A fitted, versioned risk model: the pickled pipeline, its digest and its held-out metrics.

    The blob is only unpickled after its SM3 digest matches (enterprises.risk.storage).
    """

    version = models.PositiveIntegerField(_("版本"), unique=True)
    created_at = models.DateTimeField(_("训练时间"), default=timezone.now)
    algorithm = models.CharField(_("算法"), max_length=64)
    feature_names = models.JSONField(_("特征"), default=list)
    metrics = models.JSONField(_("评估指标"), default=dict, blank=True)
    train_start = models.DateTimeField(_("训练窗口起"), null=True, blank=True)
    train_end = models.DateTimeField(_("训练窗口止"), null=True, blank=True)
    test_start = models.DateTimeField(_("测试窗口起"), null=True, blank=True)
    test_end = models.DateTimeField(_("测试窗口止"), null=True, blank=True)
    n_train = models.PositiveIntegerField(_("训练样本数"), default=0)
    n_test = models.PositiveIntegerField(_("测试样本数"), default=0)
    positives = models.PositiveIntegerField(_("正样本数"), default=0)
    blob = models.BinaryField(_("模型数据"))
    digest = models.CharField(_("SM3 摘要"), max_length=64)
    is_active = models.BooleanField(_("启用"), default=False)
    activated_at = models.DateTimeField(_("启用时间"), null=True, blank=True)
    note = models.CharField(_("说明"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("风险模型")
        verbose_name_plural = _("风险模型")
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True), name="one_active_risk_model"
            )
        ]

    def __str__(self):
        return f"v{self.version} {self.algorithm}"


class EnterpriseRisk(models.Model):
    """The current risk profile of one enterprise (one row, overwritten by each grading run)."""

    enterprise = models.OneToOneField(
        Enterprise, verbose_name=_("企业"), on_delete=models.CASCADE, related_name="risk_profile"
    )
    score = models.FloatField(_("风险分值"), validators=[MinValueValidator(0), MaxValueValidator(100)])
    probability = models.FloatField(_("事件概率"), null=True, blank=True)
    grade = models.CharField(_("风险等级"), max_length=8, choices=RiskGrade.choices)
    method = models.CharField(_("评估方法"), max_length=8, choices=RiskMethod.choices)
    model = models.ForeignKey(
        RiskModel, verbose_name=_("模型"), null=True, blank=True, on_delete=models.SET_NULL, related_name="profiles"
    )
    # [{"key", "label", "value", "contribution"}], largest contribution first
    factors = models.JSONField(_("主要因素"), default=list, blank=True)
    assessed_at = models.DateTimeField(_("评估时间"))

    class Meta:
        verbose_name = _("企业风险画像")
        verbose_name_plural = _("企业风险画像")

    def __str__(self):
        return f"{self.enterprise_id} {self.grade} {self.score:.1f}"


class RiskAssessment(models.Model):
    """History of grades, one row per enterprise per grading run (trend charts)."""

    enterprise = models.ForeignKey(
        Enterprise, verbose_name=_("企业"), on_delete=models.CASCADE, related_name="risk_assessments"
    )
    assessed_at = models.DateTimeField(_("评估时间"))
    grade = models.CharField(_("风险等级"), max_length=8, choices=RiskGrade.choices)
    score = models.FloatField(_("风险分值"))
    method = models.CharField(_("评估方法"), max_length=8, choices=RiskMethod.choices)

    class Meta:
        verbose_name = _("风险评估记录")
        verbose_name_plural = _("风险评估记录")
        ordering = ["-assessed_at", "id"]
        indexes = [
            models.Index(fields=["assessed_at"]),
            models.Index(fields=["enterprise", "-assessed_at"]),
        ]

    def __str__(self):
        return f"{self.enterprise_id} {self.assessed_at:%Y-%m-%d} {self.grade}"


class RegionBoundary(models.Model):
    """A region's outline for the risk map (GeoJSON Polygon/MultiPolygon, WGS-84), with its bbox.

    Loaded by ``manage.py load_boundaries FILE.geojson`` (see enterprises/geo.py); the map draws
    the user's jurisdiction and its children from these rows, so no online tiles are needed.
    """

    region = models.OneToOneField(
        "regulator.Region", verbose_name=_("行政区划"), on_delete=models.CASCADE, related_name="boundary"
    )
    geometry = models.JSONField(_("边界(GeoJSON)"))
    min_lon = models.FloatField(_("最小经度"))
    min_lat = models.FloatField(_("最小纬度"))
    max_lon = models.FloatField(_("最大经度"))
    max_lat = models.FloatField(_("最大纬度"))
    source = models.CharField(_("数据来源"), max_length=200, blank=True)
    loaded_at = models.DateTimeField(_("导入时间"), auto_now=True)

    class Meta:
        verbose_name = _("区划边界")
        verbose_name_plural = _("区划边界")

    def __str__(self):
        return str(self.region)


class IndicatorSnapshot(models.Model):
    """The dashboard's additive measures for one calendar month, one region and one park (or none), so
    month/quarter/year dashboards read ~1,000 small rows per month instead of scanning every event.

    ``values``: {"flow": {measure: n}, "stock": {measure: n at month end}, "sample": {measure: sum over
    samples}, "last": {measure: latest sample}}; see ``enterprises/indicators.py`` and
    ``enterprises/indicator_snapshots.py`` (filled by the ``snapshot_indicators`` command / beat task).
    """

    month = models.DateField(_("月份"))
    region = models.ForeignKey("regulator.Region", on_delete=models.CASCADE, related_name="+")
    park = models.ForeignKey("regulator.Park", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    values = models.JSONField(_("指标量"), default=dict)

    class Meta:
        verbose_name = _("指标月快照")
        verbose_name_plural = _("指标月快照")
        constraints = [
            models.UniqueConstraint(fields=["month", "region", "park"], name="indicator_snapshot_unique"),
            models.UniqueConstraint(
                fields=["month", "region"], condition=models.Q(park__isnull=True), name="indicator_snapshot_unique_np"
            ),
        ]


class IndicatorSnapshotMonth(models.Model):
    """Which months have snapshots, when they were computed and how many live samples they hold."""

    month = models.DateField(_("月份"), unique=True)
    computed_at = models.DateTimeField(_("计算时间"))
    samples = models.PositiveIntegerField(_("采样次数"), default=0)
    # When the month's day rows (IndicatorDaySnapshot) were last computed; None: the month has none.
    days_computed_at = models.DateTimeField(_("日快照计算时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("指标快照月份")
        verbose_name_plural = _("指标快照月份")
        ordering = ["-month"]


class IndicatorDaySnapshot(models.Model):
    """The dashboard's additive measures for one day and one region's whole subtree (all parks), so a custom
    period reads its whole months from ``IndicatorSnapshot`` and only its partial months' days from here.

    ``values`` as in ``IndicatorSnapshot`` ({"flow", "stock" (at the day's end), "sample", "last"}), zero
    measures left out; see ``enterprises/dashboard_days.py``."""

    day = models.DateField(_("日期"))
    region = models.ForeignKey("regulator.Region", on_delete=models.CASCADE, related_name="+")
    values = models.JSONField(_("指标量"), default=dict)

    class Meta:
        verbose_name = _("指标日快照")
        verbose_name_plural = _("指标日快照")
        constraints = [models.UniqueConstraint(fields=["day", "region"], name="indicator_day_snapshot_unique")]
