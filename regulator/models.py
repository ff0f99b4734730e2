"""Users, the region tree (GB/T 2260) with parks, and the append-only audit log."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from regulator.choices import MLPS_ROLES, REGULATOR_ROLES, EnterpriseRole, ParkKind, RegionLevel, Role
from regulator.fields import EncryptedTextField


class Region(models.Model):
    """A node of the administrative tree; ``path`` holds the codes from the root for subtree queries."""

    code = models.CharField(
        _("行政区划代码"),
        max_length=12,
        unique=True,
        validators=[RegexValidator(r"^\d{6}(\d{3}|\d{6})?$", _("行政区划代码应为6、9或12位数字"))],
    )
    name = models.CharField(_("名称"), max_length=64)
    level = models.PositiveSmallIntegerField(_("层级"), choices=RegionLevel.choices)
    parent = models.ForeignKey(
        "self", verbose_name=_("上级"), null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    path = models.CharField(_("路径"), max_length=128, editable=False, db_index=True)

    class Meta:
        verbose_name = _("行政区划")
        verbose_name_plural = _("行政区划")
        ordering = ["code"]

    def __str__(self):
        return f"{self.name}（{self.code}）"

    def save(self, *args, **kwargs):
        self.path = f"{self.parent.path}{self.code}/" if self.parent_id else f"/{self.code}/"
        super().save(*args, **kwargs)

    def subtree(self):
        return Region.objects.filter(path__startswith=self.path)

    def ancestors(self):
        codes = [c for c in self.path.strip("/").split("/") if c]
        return Region.objects.filter(code__in=codes).order_by("level")


class Park(models.Model):
    name = models.CharField(_("园区名称"), max_length=128)
    code = models.CharField(_("园区编码"), max_length=32, unique=True)
    kind = models.CharField(_("类型"), max_length=16, choices=ParkKind.choices, default=ParkKind.CHEMICAL)
    region = models.ForeignKey(Region, verbose_name=_("所在区划"), on_delete=models.PROTECT, related_name="parks")

    class Meta:
        verbose_name = _("园区")
        verbose_name_plural = _("园区")
        ordering = ["code"]

    def __str__(self):
        return self.name


class User(AbstractUser):
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    full_name = models.CharField(_("姓名"), max_length=64, blank=True)
    role = models.CharField(_("角色"), max_length=32, choices=Role.choices, default=Role.ENTERPRISE_USER)
    enterprise_role = models.CharField(
        _("企业内职务"), max_length=32, choices=EnterpriseRole.choices, blank=True, default=""
    )
    jurisdiction = models.ForeignKey(
        Region,
        verbose_name=_("辖区"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="staff",
        help_text=_("监管人员所属的辖区节点，可见其下全部企业"),
    )
    park = models.ForeignKey(
        Park, verbose_name=_("园区"), null=True, blank=True, on_delete=models.PROTECT, related_name="managers"
    )
    phone = EncryptedTextField(_("手机号"))
    id_number = EncryptedTextField(_("身份证号"))

    class Meta:
        verbose_name = _("用户")
        verbose_name_plural = _("用户")

    def __str__(self):
        return self.full_name or self.username

    @property
    def display_name(self) -> str:
        return self.full_name or self.username

    @property
    def is_regulator(self) -> bool:
        return self.role in REGULATOR_ROLES

    @property
    def is_park_manager(self) -> bool:
        return self.role == Role.PARK_MANAGER

    @property
    def is_enterprise_user(self) -> bool:
        return self.role == Role.ENTERPRISE_USER

    @property
    def is_mlps_admin(self) -> bool:
        return self.role in MLPS_ROLES


class AuditEntry(models.Model):
    """One append-only audit record; ``entry_hash`` = SM3(prev_hash + canonical content)."""

    created_at = models.DateTimeField(_("时间(UTC)"), db_index=True)
    user = models.ForeignKey(User, verbose_name=_("用户"), null=True, blank=True, on_delete=models.SET_NULL)
    username = models.CharField(_("用户名"), max_length=150, blank=True)
    source_ip = models.GenericIPAddressField(_("来源IP"), null=True, blank=True)
    event = models.CharField(_("事件"), max_length=64, db_index=True)
    object_type = models.CharField(_("对象类型"), max_length=64, blank=True)
    object_id = models.CharField(_("对象ID"), max_length=64, blank=True)
    object_repr = models.CharField(_("对象"), max_length=200, blank=True)
    outcome = models.CharField(_("结果"), max_length=16, default="success")
    detail = models.JSONField(_("详情"), default=dict, blank=True)
    prev_hash = models.CharField(max_length=64, editable=False)
    entry_hash = models.CharField(max_length=64, editable=False, unique=True)

    class Meta:
        verbose_name = _("审计日志")
        verbose_name_plural = _("审计日志")
        ordering = ["id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.username} {self.event}"


class Notification(models.Model):
    """An in-app message (the bell); ``dedupe_key`` makes a notification idempotent per user."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="notifications")
    created_at = models.DateTimeField(_("时间"), auto_now_add=True, db_index=True)
    title = models.CharField(_("标题"), max_length=200)
    body = models.TextField(_("内容"), blank=True)
    url = models.CharField(_("链接"), max_length=255, blank=True)
    level = models.CharField(_("级别"), max_length=16, default="info")
    dedupe_key = models.CharField(max_length=128, blank=True)
    read_at = models.DateTimeField(_("已读时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("站内通知")
        verbose_name_plural = _("站内通知")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "dedupe_key"], condition=~models.Q(dedupe_key=""), name="unique_notification_dedupe"
            )
        ]

    def __str__(self):
        return self.title
