"""Inspector pool, inspection plans and their verifiable draws, inspections with documents,
and the safety credit (rules, events, scores with history, the serious-dishonesty list)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from enforcement.choices import (
    CertificationLevel,
    CreditEventKind,
    CreditGrade,
    DocumentType,
    DrawStatus,
    FindingGrade,
    InspectionStatus,
    InspectorStatus,
    ListingStatus,
    Outcome,
    PlanStatus,
    RepairStatus,
    RiskKey,
)

USER = settings.AUTH_USER_MODEL


class InspectorProfile(models.Model):
    """An inspector of the pool (执法人员名录库); the jurisdiction is the user's."""

    user = models.OneToOneField(USER, verbose_name=_("用户"), on_delete=models.CASCADE, related_name="inspector")
    certification_level = models.CharField(
        _("能力等级"), max_length=16, choices=CertificationLevel.choices, default=CertificationLevel.JUNIOR
    )
    certificate_number = models.CharField(_("执法证号"), max_length=32, blank=True)
    specialties = models.ManyToManyField(
        "enterprises.Industry", verbose_name=_("专业领域"), blank=True, related_name="inspectors"
    )
    status = models.CharField(_("状态"), max_length=16, choices=InspectorStatus.choices, default=InspectorStatus.ACTIVE)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("执法人员")
        verbose_name_plural = _("执法人员名录库")
        ordering = ["user__username"]

    def __str__(self):
        return f"{self.user.display_name}（{self.get_certification_level_display()}）"

    @property
    def jurisdiction(self):
        return self.user.jurisdiction


class ConflictOfInterest(models.Model):
    """A declared reason why an inspector must not inspect an enterprise (回避)."""

    inspector = models.ForeignKey(
        InspectorProfile, verbose_name=_("执法人员"), on_delete=models.CASCADE, related_name="conflicts"
    )
    enterprise = models.ForeignKey(
        "enterprises.Enterprise", verbose_name=_("企业"), on_delete=models.CASCADE, related_name="+"
    )
    reason = models.CharField(_("回避事由"), max_length=200)
    declared_at = models.DateTimeField(_("申报时间"), default=timezone.now)

    class Meta:
        verbose_name = _("利益冲突申报")
        verbose_name_plural = _("利益冲突申报")
        constraints = [models.UniqueConstraint(fields=["inspector", "enterprise"], name="unique_conflict")]

    def __str__(self):
        return f"{self.inspector_id} / {self.enterprise_id}"


class FrequencyRule(models.Model):
    """Inspections per year by credit grade x risk; a row here overrides the built-in default."""

    credit_grade = models.CharField(_("信用等级"), max_length=1, choices=CreditGrade.choices)
    risk = models.CharField(_("风险等级"), max_length=8, choices=RiskKey.choices)
    min_per_year = models.PositiveSmallIntegerField(_("每年最少检查次数"))
    max_per_year = models.PositiveSmallIntegerField(_("每年最多检查次数"))

    class Meta:
        verbose_name = _("检查频次")
        verbose_name_plural = _("检查频次表")
        ordering = ["credit_grade", "risk"]
        constraints = [
            models.UniqueConstraint(fields=["credit_grade", "risk"], name="unique_frequency_class"),
            models.CheckConstraint(
                condition=models.Q(max_per_year__gte=models.F("min_per_year")), name="freq_max_ge_min"
            ),
        ]

    def __str__(self):
        return f"{self.credit_grade}/{self.risk}: {self.min_per_year}-{self.max_per_year}"


class InspectionPlan(models.Model):
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(_("计划名称"), max_length=200)
    jurisdiction = models.ForeignKey(
        "regulator.Region", verbose_name=_("辖区"), on_delete=models.PROTECT, related_name="inspection_plans"
    )
    period_start = models.DateField(_("开始日期"))
    period_end = models.DateField(_("结束日期"))
    items = models.JSONField(
        _("检查事项"), default=list, blank=True, help_text=_("列表：{basis 依据, content 内容, method 方式}")
    )
    industry_prefixes = models.JSONField(_("行业范围（代码前缀）"), default=list, blank=True)
    risk_filter = models.JSONField(_("风险等级范围"), default=list, blank=True)
    credit_filter = models.JSONField(_("信用等级范围"), default=list, blank=True)
    strata = models.JSONField(
        _("抽查分层"),
        default=list,
        blank=True,
        help_text=_("列表：{label, credit:[..], risk:[..], industry:前缀, ratio 或 count}；空表示全部按默认比例"),
    )
    default_ratio = models.DecimalField(
        _("默认抽查比例"),
        max_digits=5,
        decimal_places=4,
        default=Decimal("0.05"),
        validators=[MinValueValidator(0), MaxValueValidator(1)],
    )
    team_size = models.PositiveSmallIntegerField(_("每组人数"), default=2, validators=[MinValueValidator(2)])
    require_specialty = models.BooleanField(_("要求专业匹配"), default=True)
    status = models.CharField(_("状态"), max_length=16, choices=PlanStatus.choices, default=PlanStatus.DRAFT)
    created_by = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("检查计划")
        verbose_name_plural = _("检查计划")
        ordering = ["-period_start", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(team_size__gte=2), name="plan_team_size_at_least_2"),
            models.CheckConstraint(condition=models.Q(period_end__gte=models.F("period_start")), name="plan_period"),
        ]

    def __str__(self):
        return self.name

    @property
    def current_draw(self):
        return self.draws.filter(status=DrawStatus.CURRENT).first()


class Draw(models.Model):
    """One dual-random draw. The snapshot and result are kept as the exact canonical JSON that was hashed."""

    plan = models.ForeignKey(InspectionPlan, verbose_name=_("检查计划"), on_delete=models.PROTECT, related_name="draws")
    sequence = models.PositiveSmallIntegerField(_("第几次抽取"), default=1)
    seed = models.CharField(_("随机种子"), max_length=64)
    snapshot = models.TextField(_("快照（规范JSON）"))
    snapshot_hash = models.CharField(_("快照SM3"), max_length=64)
    result = models.TextField(_("结果（规范JSON）"))
    result_hash = models.CharField(_("结果SM3"), max_length=64)
    signature = models.JSONField(_("SM2签名"), null=True, blank=True)
    status = models.CharField(_("状态"), max_length=16, choices=DrawStatus.choices, default=DrawStatus.CURRENT)
    reason = models.CharField(_("抽取说明/重新抽取原因"), max_length=300, blank=True)
    superseded_reason = models.CharField(_("作废原因"), max_length=300, blank=True)
    drawn_by = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    drawn_at = models.DateTimeField(_("抽取时间"), default=timezone.now)
    selected_count = models.PositiveIntegerField(_("抽中企业数"), default=0)

    class Meta:
        verbose_name = _("抽取记录")
        verbose_name_plural = _("抽取记录")
        ordering = ["-drawn_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "sequence"], name="unique_draw_sequence"),
            # The target of Inspection's (draw_id, plan_id) foreign key (see Inspection.plan).
            models.UniqueConstraint(fields=["id", "plan"], name="draw_id_plan"),
            models.UniqueConstraint(
                fields=["plan"], condition=models.Q(status="current"), name="one_current_draw_per_plan"
            ),
        ]

    def __str__(self):
        return f"{self.plan.name} #{self.sequence}"

    def signed_payload(self) -> bytes:
        from enforcement.drawing import canonical_bytes

        return canonical_bytes(
            {
                "draw": self.pk,
                "plan": self.plan_id,
                "seed": self.seed,
                "snapshot_hash": self.snapshot_hash,
                "result_hash": self.result_hash,
            }
        )


class Inspection(models.Model):
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    enterprise = models.ForeignKey(
        "enterprises.Enterprise",
        verbose_name=_("企业"),
        on_delete=models.PROTECT,
        related_name="inspections",
        db_index=False,  # (enterprise, -date) below starts with it: a second index is only written
    )
    # An inspection of a plan is one of its draw's: plan and draw are checked together, by one
    # foreign key (draw_id, plan_id) -> Draw (id, plan_id) MATCH FULL that migration 0005 adds on
    # PostgreSQL (Django has no composite foreign keys): both set, the draw exists and is of that
    # plan; or neither (an inspection outside any plan). One check per drawn inspection instead of
    # two separate ones.
    plan = models.ForeignKey(
        InspectionPlan,
        verbose_name=_("检查计划"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="inspections",
        db_constraint=False,
    )
    draw = models.ForeignKey(
        Draw,
        verbose_name=_("抽取记录"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="inspections",
        db_constraint=False,
    )
    team = models.ManyToManyField(
        USER, verbose_name=_("检查组"), related_name="enforcement_inspections", through="InspectionTeamMember"
    )
    leader = models.ForeignKey(
        USER,
        verbose_name=_("组长"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        # No query looks inspections up by leader (no reverse relation); only deleting a user does,
        # which is rare. A draw would fill this index for each of its ~14,000 inspections.
        db_index=False,
    )
    date = models.DateField(_("检查日期"), db_index=True)
    status = models.CharField(
        _("状态"), max_length=16, choices=InspectionStatus.choices, default=InspectionStatus.PLANNED
    )  # indexed below: a plain index, without the LIKE index db_index adds on PostgreSQL
    checklist = models.JSONField(_("检查事项结果"), default=list, blank=True)
    outcome = models.CharField(_("检查结论"), max_length=16, choices=Outcome.choices, blank=True, default="")
    public_summary = models.CharField(_("公示结果"), max_length=300, blank=True)
    internal_notes = models.TextField(_("内部备注（不公开）"), blank=True)
    rectification_deadline = models.DateField(_("整改期限"), null=True, blank=True)
    penalty_amount = models.DecimalField(_("罚款金额（元）"), max_digits=12, decimal_places=2, null=True, blank=True)
    legal_basis = models.CharField(_("法律依据"), max_length=300, blank=True)
    cancel_reason = models.CharField(_("取消原因"), max_length=300, blank=True)
    completed_at = models.DateTimeField(_("完成时间"), null=True, blank=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("执法检查")
        verbose_name_plural = _("执法检查")
        ordering = ["-date", "-id"]
        indexes = [
            models.Index(fields=["status"], name="inspection_status"),
            models.Index(fields=["enterprise", "-date"]),
            # The draw's history of every enterprise (latest live visit, visits in the last year):
            # one index-only scan, already in the order DISTINCT ON and the window need.
            models.Index(
                fields=["enterprise", "-date", "-id"],
                condition=~models.Q(status="cancelled"),
                name="inspection_live_latest",
            ),
        ]

    def __str__(self):
        return f"{self.enterprise} {self.date}"


class InspectionTeamMember(models.Model):
    """A member of an inspection's team: the table Django would create for ``Inspection.team``,
    declared to leave out its index on inspection alone, which the unique (inspection, user)
    index already serves (it starts with inspection). A draw writes ~28,000 of these rows."""

    pk = models.CompositePrimaryKey("inspection", "user")
    inspection = models.ForeignKey(Inspection, on_delete=models.CASCADE, related_name="+", db_index=False)
    user = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="+")

    class Meta:
        db_table = "enforcement_inspection_team"
        verbose_name = _("检查组成员")
        verbose_name_plural = _("检查组成员")

    def __str__(self):
        return f"{self.inspection_id} / {self.user_id}"


class InspectionFinding(models.Model):
    inspection = models.ForeignKey(Inspection, on_delete=models.CASCADE, related_name="findings")
    description = models.TextField(_("问题描述"))
    location = models.CharField(_("部位"), max_length=200, blank=True)
    grade = models.CharField(_("隐患等级"), max_length=16, choices=FindingGrade.choices, default=FindingGrade.ORDINARY)
    hazard_id = models.BigIntegerField(_("隐患编号"), null=True, blank=True)

    class Meta:
        verbose_name = _("检查发现问题")
        verbose_name_plural = _("检查发现问题")
        ordering = ["id"]

    def __str__(self):
        return self.description[:50]


def _photo_path(instance, filename):
    # The name comes from regulator.uploads (the decoded format's extension); anything else would be
    # a bypass of the validator, stored as an opaque .bin that is only ever served as a download.
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    ext = ext if ext in ("jpg", "png", "webp") else "bin"
    return f"enforcement/photos/{instance.inspection_id}/{uuid.uuid4().hex}.{ext}"


class InspectionPhoto(models.Model):
    inspection = models.ForeignKey(Inspection, on_delete=models.CASCADE, related_name="photos")
    image = models.FileField(_("照片"), upload_to=_photo_path)
    caption = models.CharField(_("说明"), max_length=200, blank=True)
    uploaded_by = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("检查照片")
        verbose_name_plural = _("检查照片")


class DocumentCounter(models.Model):
    """The last number issued per bureau, type and year; locked while a document is issued."""

    bureau = models.ForeignKey("regulator.Region", on_delete=models.PROTECT, related_name="+")
    doc_type = models.CharField(max_length=32, choices=DocumentType.choices)
    year = models.PositiveSmallIntegerField()
    last = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("文书编号计数器")
        verbose_name_plural = _("文书编号计数器")
        constraints = [models.UniqueConstraint(fields=["bureau", "doc_type", "year"], name="unique_doc_counter")]


class Document(models.Model):
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    inspection = models.ForeignKey(
        Inspection, verbose_name=_("执法检查"), on_delete=models.PROTECT, related_name="documents"
    )
    doc_type = models.CharField(_("文书类型"), max_length=32, choices=DocumentType.choices)
    bureau = models.ForeignKey(
        "regulator.Region", verbose_name=_("执法机关辖区"), on_delete=models.PROTECT, related_name="+"
    )
    year = models.PositiveSmallIntegerField(_("年度"))
    seq = models.PositiveIntegerField(_("序号"))
    number = models.CharField(_("文书编号"), max_length=64)
    content = models.JSONField(_("文书内容"), default=dict)
    pdf = models.FileField(_("PDF"), upload_to="enforcement/documents/", max_length=200)
    sha3 = models.CharField(_("PDF SM3"), max_length=64)
    signature = models.JSONField(_("SM2签名"), null=True, blank=True)
    issued_by = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    issued_at = models.DateTimeField(_("签发时间"), default=timezone.now)

    class Meta:
        verbose_name = _("执法文书")
        verbose_name_plural = _("执法文书")
        ordering = ["-issued_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["bureau", "doc_type", "year", "seq"], name="unique_document_number")
        ]

    def __str__(self):
        return self.number


class CreditRule(models.Model):
    code = models.CharField(_("规则编号"), max_length=16, unique=True)
    event_kind = models.CharField(_("事件类型"), max_length=32, choices=CreditEventKind.choices, unique=True)
    points = models.SmallIntegerField(_("分值（负为扣分）"))
    validity_days = models.PositiveIntegerField(_("有效期（天）"), default=365)
    description = models.CharField(_("说明"), max_length=200)
    active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("信用评分规则")
        verbose_name_plural = _("信用评分规则")
        ordering = ["code"]

    def __str__(self):
        return f"{self.code} {self.description} ({self.points:+d})"


class CreditEvent(models.Model):
    """Something that moves an enterprise's credit; ``source_key`` makes harvesting idempotent."""

    enterprise = models.ForeignKey(
        "enterprises.Enterprise", verbose_name=_("企业"), on_delete=models.CASCADE, related_name="credit_events"
    )
    kind = models.CharField(_("事件类型"), max_length=32, choices=CreditEventKind.choices)
    occurred_on = models.DateField(_("发生日期"), db_index=True)
    description = models.CharField(_("说明"), max_length=300, blank=True)
    source_key = models.CharField(_("来源"), max_length=64, unique=True)
    recorded_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    recorded_at = models.DateTimeField(_("记录时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("信用事件")
        verbose_name_plural = _("信用事件")
        ordering = ["-occurred_on", "-id"]
        indexes = [models.Index(fields=["enterprise", "occurred_on"])]

    def __str__(self):
        return f"{self.enterprise_id} {self.kind} {self.occurred_on}"


class CreditScore(models.Model):
    enterprise = models.OneToOneField(
        "enterprises.Enterprise", verbose_name=_("企业"), on_delete=models.CASCADE, related_name="credit"
    )
    score = models.SmallIntegerField(_("信用分"))
    grade = models.CharField(_("信用等级"), max_length=1, choices=CreditGrade.choices)
    basis = models.JSONField(_("计分依据"), default=list)
    computed_at = models.DateTimeField(_("计算时间"))

    class Meta:
        verbose_name = _("信用评分")
        verbose_name_plural = _("信用评分")

    def __str__(self):
        return f"{self.enterprise_id}: {self.score} {self.grade}"


class CreditScoreChange(models.Model):
    """One change of score or grade, with the contributions that appeared or lapsed."""

    enterprise = models.ForeignKey(
        "enterprises.Enterprise", verbose_name=_("企业"), on_delete=models.CASCADE, related_name="credit_changes"
    )
    at = models.DateTimeField(_("时间"), db_index=True)
    old_score = models.SmallIntegerField(_("原分值"), null=True)
    new_score = models.SmallIntegerField(_("新分值"))
    old_grade = models.CharField(_("原等级"), max_length=1, blank=True)
    new_grade = models.CharField(_("新等级"), max_length=1)
    added = models.JSONField(_("新增计分项"), default=list)
    removed = models.JSONField(_("失效计分项"), default=list)

    class Meta:
        verbose_name = _("信用分变动")
        verbose_name_plural = _("信用分变动")
        ordering = ["enterprise", "at", "id"]
        indexes = [models.Index(fields=["enterprise", "at"])]


class DishonestyListing(models.Model):
    """Serious-dishonesty list (严重失信主体名单): a term, and early repair on application."""

    enterprise = models.ForeignKey(
        "enterprises.Enterprise", verbose_name=_("企业"), on_delete=models.PROTECT, related_name="dishonesty_listings"
    )
    reason = models.CharField(_("列入事由"), max_length=300)
    listed_on = models.DateField(_("列入日期"))
    expires_on = models.DateField(_("届满日期"))
    status = models.CharField(_("状态"), max_length=16, choices=ListingStatus.choices, default=ListingStatus.LISTED)
    decided_by = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    removed_on = models.DateField(_("移出日期"), null=True, blank=True)

    class Meta:
        verbose_name = _("严重失信名单")
        verbose_name_plural = _("严重失信名单")
        ordering = ["-listed_on", "-id"]

    def __str__(self):
        return f"{self.enterprise} {self.listed_on}"

    @property
    def repair_possible_from(self):
        return self.listed_on + timedelta(days=365)


class RepairApplication(models.Model):
    listing = models.ForeignKey(DishonestyListing, on_delete=models.PROTECT, related_name="repairs")
    statement = models.TextField(_("修复申请说明"))
    applied_by = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    applied_at = models.DateTimeField(_("申请时间"), default=timezone.now)
    status = models.CharField(_("状态"), max_length=16, choices=RepairStatus.choices, default=RepairStatus.PENDING)
    decided_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(_("决定时间"), null=True, blank=True)
    decision_note = models.CharField(_("审核意见"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("信用修复申请")
        verbose_name_plural = _("信用修复申请")
        ordering = ["-applied_at"]
