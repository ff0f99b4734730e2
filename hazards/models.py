"""Hazards (隐患) with their rectification plan, timeline, photos, extensions and escalations,
and the self-inspection checklists (企业自查) whose failed items become hazards."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from hazards.choices import (
    OVERDUE_STATES,
    CheckResult,
    EscalationTier,
    ExtensionStatus,
    HazardCategory,
    HazardGrade,
    HazardSource,
    HazardStatus,
    MajorLevel,
    PhotoKind,
    RunStatus,
)

USER = settings.AUTH_USER_MODEL


class HazardQuerySet(models.QuerySet):
    def overdue(self, today=None):
        today = today or timezone.localdate()
        return self.filter(status__in=OVERDUE_STATES, due_date__lt=today)

    def open(self):
        from hazards.choices import OPEN_STATES

        return self.filter(status__in=OPEN_STATES)


class Hazard(models.Model):
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    enterprise = models.ForeignKey(
        "enterprises.Enterprise", verbose_name=_("企业"), on_delete=models.PROTECT, related_name="hazards"
    )
    description = models.TextField(_("隐患描述"))
    location = models.CharField(_("隐患部位"), max_length=200, blank=True)
    installation = models.ForeignKey(
        "enterprises.MajorHazardInstallation",
        verbose_name=_("所在危险源/装置"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="hazards",
    )
    category = models.CharField(_("隐患类别"), max_length=16, choices=HazardCategory.choices, blank=True)
    grade = models.CharField(_("隐患等级"), max_length=8, choices=HazardGrade.choices, default=HazardGrade.ORDINARY)
    major_level = models.PositiveSmallIntegerField(_("重大隐患级别"), choices=MajorLevel.choices, null=True, blank=True)
    source = models.CharField(_("隐患来源"), max_length=16, choices=HazardSource.choices)
    source_ref = models.CharField(_("来源记录"), max_length=64, blank=True, help_text=_("如 inspection:12"))
    found_by = models.ForeignKey(
        USER, verbose_name=_("发现人"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    found_at = models.DateTimeField(_("发现时间"), default=timezone.now)
    # Indexed together with the report time (Meta.indexes), not alone.
    status = models.CharField(_("状态"), max_length=16, choices=HazardStatus.choices, default=HazardStatus.REPORTED)
    version = models.PositiveIntegerField(default=0, editable=False)
    # Rectification plan (五到位: measures, funds, responsible person, deadline, emergency plan).
    measures = models.TextField(_("整改措施"), blank=True)
    funds = models.DecimalField(_("整改资金(元)"), max_digits=12, decimal_places=2, null=True, blank=True)
    responsible_person = models.CharField(_("整改责任人"), max_length=64, blank=True)
    deadline = models.DateField(_("整改期限"), null=True, blank=True)
    emergency_plan = models.TextField(_("应急预案/防范措施"), blank=True)
    due_date = models.DateField(_("有效整改期限"), null=True, blank=True, editable=False)
    cost_spent = models.DecimalField(_("实际整改费用(元)"), max_digits=12, decimal_places=2, null=True, blank=True)
    rectification_note = models.TextField(_("整改情况说明"), blank=True)
    # Milestones.
    reported_at = models.DateTimeField(_("上报时间"), default=timezone.now, db_index=True)
    confirmed_at = models.DateTimeField(_("确认时间"), null=True, blank=True)
    submitted_at = models.DateTimeField(_("提交整改时间"), null=True, blank=True)
    closed_at = models.DateTimeField(_("销号时间"), null=True, blank=True, db_index=True)
    closed_by = models.ForeignKey(
        USER, verbose_name=_("验收人"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    closed_on_time = models.BooleanField(_("按期完成"), null=True, blank=True)
    dismissed_reason = models.TextField(_("驳回理由"), blank=True)
    last_failure_reason = models.TextField(_("最近验收不通过理由"), blank=True)
    # Overdue bookkeeping kept by escalate_overdue.
    # Not indexed on purpose: with free space on the page (fillfactor, see migration 0003) the
    # escalation's updates of these two columns are HOT and do not touch the table's indexes.
    is_overdue = models.BooleanField(_("已逾期"), default=False)
    escalation_tier = models.PositiveSmallIntegerField(_("升级层级"), default=0)
    # 挂牌督办.
    listed = models.BooleanField(_("挂牌督办"), default=False)  # partial index in Meta
    listed_at = models.DateTimeField(_("挂牌时间"), null=True, blank=True)
    listed_by = models.ForeignKey(
        USER, verbose_name=_("挂牌人"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    supervisor = models.ForeignKey(
        USER, verbose_name=_("督办人员"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    supervision_due = models.DateField(_("督办期限"), null=True, blank=True)
    checklist_answer = models.ForeignKey(
        "hazards.ChecklistAnswer",
        verbose_name=_("自查项"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="hazards",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = HazardQuerySet.as_manager()

    class Meta:
        verbose_name = _("隐患")
        verbose_name_plural = _("隐患")
        ordering = ["-reported_at", "-id"]
        indexes = [
            models.Index(fields=["enterprise", "status"]),
            models.Index(fields=["status", "due_date"]),
            models.Index(fields=["-reported_at", "-id"], name="hazard_reported_desc"),
            models.Index(fields=["grade", "status"]),
            models.Index(
                # enterprise as a trailing key (not INCLUDE, which SQLite lacks): scoped overdue
                # counts are answered from the index alone.
                fields=["due_date", "id", "enterprise"],
                condition=models.Q(status__in=["reported", "confirmed", "rectifying"]),
                name="hazard_open_due",
            ),
            # Open deadlines per enterprise: a jurisdiction's overdue hazards found enterprise by
            # enterprise (a county is a tenth of the enterprises, so walking hazard_open_due in date
            # order looked up ten enterprises per match), index only.
            models.Index(
                fields=["enterprise", "due_date"],
                condition=models.Q(status__in=["reported", "confirmed", "rectifying"]),
                name="hazard_open_enterprise_due",
            ),
            # The regulator list: filter by state, newest first; counts answered from the index.
            models.Index(fields=["status", "-reported_at", "-id"], name="hazard_status_reported"),
            models.Index(fields=["status", "grade", "source", "enterprise"], name="hazard_filter_cover"),
            # Listed supervision, newest first; grade and enterprise as trailing keys so the list's
            # filters and its capped count are answered from the index alone.
            models.Index(
                fields=["-reported_at", "-id", "grade", "enterprise"],
                condition=models.Q(listed=True),
                name="hazard_listed_cover",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(grade=HazardGrade.MAJOR) | models.Q(major_level__isnull=True),
                name="hazard_major_level_only_for_major",
            ),
        ]

    def __str__(self):
        return f"{self.code} {self.description[:40]}"

    @property
    def code(self) -> str:
        year = f"{timezone.localtime(self.reported_at):%Y}" if self.reported_at else ""
        return f"YH{year}{self.pk or 0:07d}"

    @property
    def is_major(self) -> bool:
        return self.grade == HazardGrade.MAJOR

    @property
    def overdue_now(self) -> bool:
        return bool(self.status in OVERDUE_STATES and self.due_date and self.due_date < timezone.localdate())

    @property
    def days_overdue(self) -> int:
        if not self.overdue_now:
            return 0
        return (timezone.localdate() - self.due_date).days

    @property
    def grade_label(self) -> str:
        if self.is_major and self.major_level:
            return f"{self.get_grade_display()}（{self.get_major_level_display()}）"
        return str(self.get_grade_display())


class HazardTransition(models.Model):
    """One step of the timeline: who did what when, from which state to which, and why."""

    hazard = models.ForeignKey(Hazard, on_delete=models.CASCADE, related_name="transitions")
    action = models.CharField(_("操作"), max_length=32)
    from_status = models.CharField(_("原状态"), max_length=16, blank=True)
    to_status = models.CharField(_("新状态"), max_length=16)
    user = models.ForeignKey(USER, verbose_name=_("操作人"), null=True, blank=True, on_delete=models.SET_NULL)
    at = models.DateTimeField(_("时间"), default=timezone.now)
    comment = models.TextField(_("说明"), blank=True)
    data = models.JSONField(_("数据"), default=dict, blank=True)

    class Meta:
        verbose_name = _("隐患流转记录")
        verbose_name_plural = _("隐患流转记录")
        ordering = ["at", "id"]

    def __str__(self):
        return f"{self.hazard_id} {self.action} {self.from_status}->{self.to_status}"

    @property
    def from_label(self) -> str:
        return str(HazardStatus(self.from_status).label) if self.from_status in HazardStatus.values else ""

    @property
    def to_label(self) -> str:
        return str(HazardStatus(self.to_status).label) if self.to_status in HazardStatus.values else ""

    @property
    def action_label(self) -> str:
        from hazards.choices import HazardAction

        try:
            return str(HazardAction(self.action).label)
        except ValueError:
            return self.action


class HazardPhoto(models.Model):
    """A re-encoded image kept under MEDIA_ROOT; served only through the permission-checking view."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    hazard = models.ForeignKey(Hazard, on_delete=models.CASCADE, related_name="photos")
    kind = models.CharField(_("类型"), max_length=8, choices=PhotoKind.choices, default=PhotoKind.BEFORE)
    path = models.CharField(max_length=255, editable=False)
    thumb_path = models.CharField(max_length=255, editable=False)
    content_type = models.CharField(max_length=32)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size = models.PositiveIntegerField()
    original_name = models.CharField(_("原文件名"), max_length=120, blank=True)
    uploaded_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("隐患照片")
        verbose_name_plural = _("隐患照片")
        ordering = ["uploaded_at", "id"]

    def __str__(self):
        return f"{self.hazard_id} {self.kind} {self.uid}"


class ExtensionRequest(models.Model):
    hazard = models.ForeignKey(Hazard, on_delete=models.CASCADE, related_name="extensions")
    requested_by = models.ForeignKey(
        USER, verbose_name=_("申请人"), null=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField(_("申请时间"), default=timezone.now)
    old_deadline = models.DateField(_("原期限"), null=True)
    new_deadline = models.DateField(_("申请延期至"))
    reason = models.TextField(_("延期理由"))
    status = models.CharField(
        _("审批状态"), max_length=16, choices=ExtensionStatus.choices, default=ExtensionStatus.PENDING
    )
    decided_by = models.ForeignKey(
        USER, verbose_name=_("审批人"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(_("审批时间"), null=True, blank=True)
    decision_comment = models.TextField(_("审批意见"), blank=True)

    class Meta:
        verbose_name = _("延期申请")
        verbose_name_plural = _("延期申请")
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["hazard"], condition=models.Q(status="pending"), name="one_pending_extension_per_hazard"
            )
        ]

    def __str__(self):
        return f"{self.hazard_id} -> {self.new_deadline} ({self.status})"


class HazardEscalation(models.Model):
    """One escalation step, recorded once per hazard, tier and effective deadline."""

    hazard = models.ForeignKey(Hazard, on_delete=models.CASCADE, related_name="escalations")
    tier = models.PositiveSmallIntegerField(_("层级"), choices=EscalationTier.choices)
    due_date = models.DateField(_("对应期限"))
    days_overdue = models.PositiveIntegerField(_("逾期天数"))
    at = models.DateTimeField(_("时间"), default=timezone.now)
    recipients = models.JSONField(_("通知对象"), default=list, blank=True)
    # The outbox: rows are written with the tier change, then notified and stamped here.
    notified_at = models.DateTimeField(_("通知时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("逾期升级")
        verbose_name_plural = _("逾期升级")
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["hazard", "tier", "due_date"], name="unique_escalation_step"),
        ]
        indexes = [
            models.Index(fields=["id"], condition=models.Q(notified_at__isnull=True), name="escalation_pending"),
        ]

    def __str__(self):
        return f"{self.hazard_id} tier {self.tier}"


class ChecklistTemplate(models.Model):
    """A self-inspection checklist for an industry (an industry node applies to all its descendants)."""

    name = models.CharField(_("检查表名称"), max_length=128)
    industry = models.ForeignKey(
        "enterprises.Industry",
        verbose_name=_("适用行业"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="checklist_templates",
        help_text=_("留空表示适用于全部行业"),
    )
    cycle_days = models.PositiveIntegerField(_("检查周期(天)"), default=30)
    active = models.BooleanField(_("启用"), default=True)
    created_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("自查检查表")
        verbose_name_plural = _("自查检查表")
        ordering = ["name", "id"]

    def __str__(self):
        return self.name


class ChecklistItem(models.Model):
    template = models.ForeignKey(ChecklistTemplate, on_delete=models.CASCADE, related_name="items")
    order = models.PositiveSmallIntegerField(_("序号"), default=0)
    text = models.TextField(_("检查内容"))
    basis = models.CharField(_("检查依据"), max_length=255, blank=True)
    category = models.CharField(_("隐患类别"), max_length=16, choices=HazardCategory.choices, blank=True)

    class Meta:
        verbose_name = _("检查项")
        verbose_name_plural = _("检查项")
        ordering = ["template", "order", "id"]

    def __str__(self):
        return self.text[:60]


class ChecklistRun(models.Model):
    template = models.ForeignKey(ChecklistTemplate, on_delete=models.PROTECT, related_name="runs")
    enterprise = models.ForeignKey("enterprises.Enterprise", on_delete=models.CASCADE, related_name="checklist_runs")
    run_by = models.ForeignKey(USER, verbose_name=_("检查人"), null=True, on_delete=models.SET_NULL, related_name="+")
    started_at = models.DateTimeField(_("开始时间"), default=timezone.now)
    completed_at = models.DateTimeField(_("完成时间"), null=True, blank=True)
    status = models.CharField(_("状态"), max_length=16, choices=RunStatus.choices, default=RunStatus.IN_PROGRESS)
    next_due = models.DateField(_("下次应检日期"), null=True, blank=True)

    class Meta:
        verbose_name = _("自查记录")
        verbose_name_plural = _("自查记录")
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["enterprise", "template", "-completed_at"])]

    def __str__(self):
        return f"{self.template} @ {self.enterprise_id}"

    def compute_next_due(self):
        return timezone.localdate(self.completed_at) + timedelta(days=self.template.cycle_days)


class ChecklistAnswer(models.Model):
    run = models.ForeignKey(ChecklistRun, on_delete=models.CASCADE, related_name="answers")
    item = models.ForeignKey(ChecklistItem, on_delete=models.PROTECT, related_name="answers")
    result = models.CharField(_("结果"), max_length=8, choices=CheckResult.choices)
    note = models.TextField(_("说明"), blank=True)
    answered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("检查结果")
        verbose_name_plural = _("检查结果")
        ordering = ["item__order", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "item"], name="one_answer_per_item")]

    def __str__(self):
        return f"{self.run_id}/{self.item_id}: {self.result}"
