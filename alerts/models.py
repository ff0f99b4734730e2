"""Alert rules (limits, delays, schedules, linkage), alerts with their ISA-18.2 lifecycle and history."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from alerts.choices import (
    LEVEL_COLOURS,
    REQUIRED_RESPONSE,
    UNACKED_STATES,
    AlertAction,
    AlertKind,
    AlertLevel,
    AlertState,
    LinkageStatus,
    ResponseKind,
    Tier,
    allowed_actions,
)
from devices.choices import Quantity


class OperatingMode(models.TextChoices):
    NORMAL = "normal", _("正常生产")
    STARTUP = "startup", _("开车")
    SHUTDOWN = "shutdown", _("停车")
    OVERHAUL = "overhaul", _("检修")


class AlertRule(models.Model):
    """Limits and behaviour for a quantity (default), a device, or one channel (most specific wins)."""

    name = models.CharField(_("规则名称"), max_length=128)
    quantity = models.CharField(_("监测量"), max_length=32, choices=Quantity.choices, blank=True)
    device = models.ForeignKey(
        "devices.Device",
        verbose_name=_("采集设备"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alert_rules",
        help_text=_("留空为该监测量的默认规则"),
    )
    channel = models.ForeignKey(
        "devices.Channel",
        verbose_name=_("测点"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alert_rules",
    )
    enabled = models.BooleanField(_("启用"), default=True)
    high_high = models.FloatField(_("高高报"), null=True, blank=True)
    high = models.FloatField(_("高报"), null=True, blank=True)
    low = models.FloatField(_("低报"), null=True, blank=True)
    low_low = models.FloatField(_("低低报"), null=True, blank=True)
    deadband = models.FloatField(_("死区(回差)"), default=0.0, validators=[MinValueValidator(0)])
    on_delay_s = models.FloatField(_("报警延时(秒)"), default=0.0, validators=[MinValueValidator(0)])
    off_delay_s = models.FloatField(_("恢复延时(秒)"), default=0.0, validators=[MinValueValidator(0)])
    rate_limit_per_min = models.FloatField(
        _("变化率上限(每分钟)"), null=True, blank=True, validators=[MinValueValidator(0)]
    )
    stale_after_s = models.PositiveIntegerField(_("数据中断判定(秒)"), null=True, blank=True)
    fault_enabled = models.BooleanField(_("传感器故障报警"), default=True)
    level_high_high = models.PositiveSmallIntegerField(_("高高报级别"), choices=AlertLevel.choices, default=2)
    level_high = models.PositiveSmallIntegerField(_("高报级别"), choices=AlertLevel.choices, default=3)
    level_low = models.PositiveSmallIntegerField(_("低报级别"), choices=AlertLevel.choices, default=3)
    level_low_low = models.PositiveSmallIntegerField(_("低低报级别"), choices=AlertLevel.choices, default=2)
    level_rate = models.PositiveSmallIntegerField(_("变化率级别"), choices=AlertLevel.choices, default=3)
    level_fault = models.PositiveSmallIntegerField(_("故障/中断/离线级别"), choices=AlertLevel.choices, default=3)
    # Level-1 linkage: the coil the poller writes (shut-off valve, field beacon).
    linkage_device = models.ForeignKey(
        "devices.Device",
        verbose_name=_("联动设备"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    linkage_unit_id = models.PositiveSmallIntegerField(
        _("联动从站地址"), null=True, blank=True, validators=[MaxValueValidator(247)]
    )
    linkage_address = models.PositiveIntegerField(
        _("联动线圈地址"), null=True, blank=True, validators=[MaxValueValidator(65535)]
    )
    linkage_value = models.BooleanField(_("联动写入值"), default=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("报警规则")
        verbose_name_plural = _("报警规则")
        ordering = ["quantity", "device_id", "channel_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["quantity"],
                condition=Q(device__isnull=True, channel__isnull=True),
                name="alerts_one_default_rule_per_quantity",
            ),
            models.UniqueConstraint(
                fields=["channel"], condition=Q(channel__isnull=False), name="alerts_one_rule_per_channel"
            ),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        super().clean()
        errors = {}
        if not self.quantity and not self.device_id and not self.channel_id:
            errors["quantity"] = _("默认规则需指定监测量")
        pairs = [("high_high", "high"), ("high", "low"), ("low", "low_low"), ("high_high", "low_low")]
        for upper, lower in pairs:
            u, lo = getattr(self, upper), getattr(self, lower)
            if u is not None and lo is not None and u <= lo:
                errors[upper] = _("报警限值顺序应为 高高报 > 高报 > 低报 > 低低报")
        linkage = [self.linkage_device_id, self.linkage_unit_id, self.linkage_address]
        if any(v is not None for v in linkage) and not all(v is not None for v in linkage):
            errors["linkage_device"] = _("联动需同时填写设备、从站地址和线圈地址")
        if errors:
            raise ValidationError(errors)

    def level_for(self, kind: str) -> int:
        return {
            AlertKind.HIGH_HIGH: self.level_high_high,
            AlertKind.HIGH: self.level_high,
            AlertKind.LOW: self.level_low,
            AlertKind.LOW_LOW: self.level_low_low,
            AlertKind.RATE: self.level_rate,
        }.get(kind, self.level_fault)

    def limit_for(self, kind: str) -> float | None:
        return getattr(self, kind, None) if kind in ("high_high", "high", "low", "low_low") else None

    @property
    def has_linkage(self) -> bool:
        return self.linkage_device_id is not None and self.linkage_address is not None


class ThresholdSchedule(models.Model):
    """Dynamic threshold: overrides the rule's limits in a month range / time of day / operating mode."""

    rule = models.ForeignKey(AlertRule, verbose_name=_("规则"), on_delete=models.CASCADE, related_name="schedules")
    name = models.CharField(_("名称"), max_length=64, help_text=_("如 夏季高温"))
    priority = models.PositiveSmallIntegerField(_("优先级"), default=10, help_text=_("数值小者优先匹配"))
    month_from = models.PositiveSmallIntegerField(
        _("起始月"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(12)]
    )
    month_to = models.PositiveSmallIntegerField(
        _("结束月(含)"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(12)]
    )
    time_from = models.TimeField(_("起始时刻"), null=True, blank=True)
    time_to = models.TimeField(_("结束时刻(不含)"), null=True, blank=True)
    operating_mode = models.CharField(_("工况"), max_length=16, choices=OperatingMode.choices, blank=True)
    high_high = models.FloatField(_("高高报"), null=True, blank=True)
    high = models.FloatField(_("高报"), null=True, blank=True)
    low = models.FloatField(_("低报"), null=True, blank=True)
    low_low = models.FloatField(_("低低报"), null=True, blank=True)

    class Meta:
        verbose_name = _("动态阈值时段")
        verbose_name_plural = _("动态阈值时段")
        ordering = ["rule_id", "priority", "id"]

    def __str__(self):
        return self.name

    def clean(self):
        super().clean()
        if (self.month_from is None) != (self.month_to is None):
            raise ValidationError({"month_to": _("起止月需同时填写")})
        if (self.time_from is None) != (self.time_to is None):
            raise ValidationError({"time_to": _("起止时刻需同时填写")})


class EnterpriseMode(models.Model):
    """The operating mode an enterprise reports (开车/停车/检修); schedules may depend on it."""

    enterprise = models.OneToOneField(
        "enterprises.Enterprise", on_delete=models.CASCADE, related_name="operating_mode", verbose_name=_("企业")
    )
    mode = models.CharField(_("工况"), max_length=16, choices=OperatingMode.choices, default=OperatingMode.NORMAL)
    changed_at = models.DateTimeField(_("变更时间"), auto_now=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("企业工况")
        verbose_name_plural = _("企业工况")

    def __str__(self):
        return f"{self.enterprise}: {self.get_mode_display()}"


class FloodGroup(models.Model):
    """A burst of alerts from one device (more than N in the flood window), shown as one row."""

    enterprise = models.ForeignKey("enterprises.Enterprise", on_delete=models.CASCADE, related_name="+")
    device = models.ForeignKey("devices.Device", on_delete=models.CASCADE, related_name="alert_floods")
    started_at = models.DateTimeField(_("开始时间"), db_index=True)
    last_at = models.DateTimeField(_("最近报警"))
    count = models.PositiveIntegerField(_("报警数"), default=0)

    class Meta:
        verbose_name = _("报警泛滥分组")
        verbose_name_plural = _("报警泛滥分组")
        ordering = ["-started_at"]

    def __str__(self):
        return f"{self.device} ×{self.count}"


class Alert(models.Model):
    enterprise = models.ForeignKey(
        "enterprises.Enterprise", verbose_name=_("企业"), on_delete=models.PROTECT, related_name="alerts"
    )
    device = models.ForeignKey(
        "devices.Device",
        verbose_name=_("采集设备"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="alerts",
    )
    channel = models.ForeignKey(
        "devices.Channel",
        verbose_name=_("测点"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="alerts",
    )
    rule = models.ForeignKey(AlertRule, verbose_name=_("规则"), null=True, blank=True, on_delete=models.SET_NULL)
    kind = models.CharField(_("报警类型"), max_length=16, choices=AlertKind.choices)
    level = models.PositiveSmallIntegerField(_("级别"), choices=AlertLevel.choices, db_index=True)
    state = models.CharField(_("状态"), max_length=16, choices=AlertState.choices, db_index=True)
    condition_active = models.BooleanField(_("报警条件存在"), default=True)
    message = models.CharField(_("报警内容"), max_length=255)
    value = models.FloatField(_("触发值"), null=True, blank=True)
    limit = models.FloatField(_("限值"), null=True, blank=True)
    unit = models.CharField(_("单位"), max_length=16, blank=True)
    occurrences = models.PositiveIntegerField(_("触发次数"), default=1)
    raised_at = models.DateTimeField(_("报警时间"), db_index=True)
    cleared_at = models.DateTimeField(_("恢复时间"), null=True, blank=True)
    acknowledged_at = models.DateTimeField(_("确认时间"), null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("确认人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    closed_at = models.DateTimeField(_("关闭时间"), null=True, blank=True)
    ack_due_at = models.DateTimeField(_("确认期限"))
    response_due_at = models.DateTimeField(_("响应期限"), null=True, blank=True)
    responded_at = models.DateTimeField(_("响应时间"), null=True, blank=True)
    tier = models.PositiveSmallIntegerField(_("当前层级"), choices=Tier.choices, default=Tier.ENTERPRISE)
    escalation_due_at = models.DateTimeField(_("下次升级时间"), null=True, blank=True, db_index=True)
    shelved_until = models.DateTimeField(_("搁置至"), null=True, blank=True)
    shelve_reason = models.CharField(_("搁置原因"), max_length=255, blank=True)
    flood_group = models.ForeignKey(
        FloodGroup, verbose_name=_("泛滥分组"), null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    linkage_status = models.CharField(
        _("联动状态"), max_length=16, choices=LinkageStatus.choices, blank=True, default=LinkageStatus.NONE
    )
    linkage_command = models.ForeignKey(
        "devices.CoilWriteCommand",
        verbose_name=_("联动写入"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    false_alarm = models.BooleanField(_("误报"), null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("复核人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reviewed_at = models.DateTimeField(_("复核时间"), null=True, blank=True)
    review_note = models.CharField(_("复核意见"), max_length=255, blank=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("报警")
        verbose_name_plural = _("报警")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["enterprise", "state"]),
            models.Index(fields=["device", "raised_at"]),
            models.Index(fields=["channel", "kind", "state"]),
        ]
        constraints = [
            # One open alert per condition: a repeat updates it, racing writers collide here.
            models.UniqueConstraint(
                fields=["channel", "kind"],
                condition=Q(channel__isnull=False) & ~Q(state="normal"),
                name="alerts_one_open_per_channel_kind",
            ),
            models.UniqueConstraint(
                fields=["device", "kind"],
                condition=Q(channel__isnull=True, device__isnull=False) & ~Q(state="normal"),
                name="alerts_one_open_per_device_kind",
            ),
        ]

    def __str__(self):
        return f"#{self.pk} {self.message}"

    @property
    def colour(self) -> str:
        return LEVEL_COLOURS.get(self.level, "blue")

    @property
    def is_unacked(self) -> bool:
        return self.state in UNACKED_STATES

    @property
    def required_response(self) -> str | None:
        return REQUIRED_RESPONSE.get(self.level)

    @property
    def allowed_actions(self) -> list[str]:
        return allowed_actions(self.state)

    @property
    def deadline(self):
        """The next deadline that matters to the people on duty: acknowledge, then respond."""
        if self.is_unacked:
            return self.ack_due_at
        if self.required_response and self.responded_at is None:
            return self.response_due_at
        return None


class AlertTransition(models.Model):
    """Every lifecycle step: who, when, from, to, why."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="transitions")
    at = models.DateTimeField(_("时间"), db_index=True)
    action = models.CharField(_("动作"), max_length=24, choices=AlertAction.choices)
    from_state = models.CharField(_("原状态"), max_length=16, choices=AlertState.choices, blank=True)
    to_state = models.CharField(_("新状态"), max_length=16, choices=AlertState.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("操作人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    comment = models.CharField(_("说明"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("报警状态变更")
        verbose_name_plural = _("报警状态变更")
        ordering = ["at", "id"]


class AlertComment(models.Model):
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="comments")
    at = models.DateTimeField(_("时间"))
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    text = models.TextField(_("内容"), max_length=2000)

    class Meta:
        verbose_name = _("报警备注")
        verbose_name_plural = _("报警备注")
        ordering = ["at", "id"]


class AlertResponse(models.Model):
    """One response step (plan started, valve closed, fire brigade notified ...) with its time."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="responses")
    kind = models.CharField(_("处置"), max_length=24, choices=ResponseKind.choices)
    at = models.DateTimeField(_("处置时间"))
    recorded_at = models.DateTimeField(_("记录时间"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("记录人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    note = models.CharField(_("说明"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("处置记录")
        verbose_name_plural = _("处置记录")
        ordering = ["at", "id"]

    @property
    def seconds_after_alert(self) -> float:
        return (self.at - self.alert.raised_at).total_seconds()


class AlertEscalation(models.Model):
    """One escalation step; unique per tier, so each tier is notified exactly once."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="escalations")
    tier = models.PositiveSmallIntegerField(_("层级"), choices=Tier.choices)
    at = models.DateTimeField(_("时间"))
    reason = models.CharField(_("原因"), max_length=255)
    recipients = models.PositiveIntegerField(_("通知人数"), default=0)

    class Meta:
        verbose_name = _("报警升级")
        verbose_name_plural = _("报警升级")
        ordering = ["at", "id"]
        constraints = [models.UniqueConstraint(fields=["alert", "tier"], name="alerts_one_escalation_per_tier")]


class AlertChangeApplied(models.Model):
    """An engine change (from a process's alert outbox) that is in the database: replaying it again, after
    a crash between the commit and its removal from the outbox, finds it here and does nothing."""

    change_id = models.CharField(_("变更标识"), max_length=32, unique=True)
    alert = models.ForeignKey(Alert, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    applied_at = models.DateTimeField(_("写入时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("已写入的报警变更")
        verbose_name_plural = _("已写入的报警变更")
