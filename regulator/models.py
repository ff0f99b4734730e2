"""Users, the region tree (GB/T 2260) with parks, the append-only audit log, and the security
records behind login (password history, lockouts, TOTP devices)."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from regulator.choices import MLPS_ROLES, REGULATOR_ROLES, EnterpriseRole, ParkKind, RegionLevel, Role
from regulator.fields import EncryptedTextField
from regulator.security.classification import Category, Level


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
    must_change_password = models.BooleanField(
        _("下次登录须修改密码"), default=False, help_text=_("管理员设置或重置的初始密码，用户首次登录时必须修改")
    )
    password_changed_at = models.DateTimeField(_("密码修改时间"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("用户")
        verbose_name_plural = _("用户")
        permissions = [
            ("reveal_sensitive", _("查看脱敏前的敏感数据")),
            ("unlock_account", _("解除账户或IP锁定")),
        ]
        constraints = [
            # Separation of duties: a system admin, security admin or auditor is never a superuser,
            # which would silently give them the other two roles' powers.
            models.CheckConstraint(
                condition=~(Q(role__in=sorted(r.value for r in MLPS_ROLES)) & Q(is_superuser=True)),
                name="mlps_role_is_not_superuser",
            )
        ]

    def clean(self):
        super().clean()
        if self.role in MLPS_ROLES and self.is_superuser:
            raise ValidationError({"is_superuser": _("三权分立：系统管理员、安全管理员、安全审计员不得同时为超级用户")})
        if getattr(self, "_grants_checked", False):
            return  # the admin form checked the final state (role together with the new permissions)
        from regulator.grants import model_errors

        errors = model_errors(self)
        if errors:
            raise ValidationError({"role": errors})

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
    """One append-only audit record; ``entry_hash`` = HMAC-SM3 under the chain key ``chain_key_id``
    of (prev_hash, key id, canonical content); legacy entries (no key id) are plain SM3."""

    created_at = models.DateTimeField(_("时间(UTC)"), db_index=True)
    # No database constraint and no cascade: deleting a user must not rewrite (and so break) the
    # chain; ``username`` keeps who it was.
    user = models.ForeignKey(
        User,
        verbose_name=_("用户"),
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
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
    # Which AUDIT_CHAIN_KEYS key made entry_hash; "" = a legacy entry from before the chain was keyed.
    chain_key_id = models.CharField(max_length=32, blank=True, default="", editable=False)

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


class PasswordHistory(models.Model):
    """Hashes of a user's previous passwords, so the last N cannot be reused."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="password_history")
    password = models.CharField(max_length=256)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("历史密码")
        verbose_name_plural = _("历史密码")
        ordering = ["-created_at", "-id"]


class LoginLock(models.Model):
    """Failed-login counter and lock for one account or one source IP."""

    class Scope(models.TextChoices):
        ACCOUNT = "account", _("账户")
        IP = "ip", _("来源IP")

    scope = models.CharField(_("锁定对象"), max_length=8, choices=Scope.choices)
    key = models.CharField(_("账户名或IP"), max_length=150)
    failures = models.PositiveIntegerField(_("连续失败次数"), default=0)
    window_started_at = models.DateTimeField(_("计数开始"), null=True, blank=True)
    locked_until = models.DateTimeField(_("锁定至"), null=True, blank=True, db_index=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("登录锁定")
        verbose_name_plural = _("登录锁定")
        ordering = ["-updated_at"]
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="unique_login_lock")]

    def __str__(self):
        return f"{self.get_scope_display()} {self.key}"


class TOTPDevice(models.Model):
    """A user's TOTP authenticator (RFC 6238); the secret is SM4-encrypted, steps never reused."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="totp_device")
    secret = EncryptedTextField(_("密钥"))
    confirmed_at = models.DateTimeField(_("启用时间"), null=True, blank=True)
    last_used_step = models.BigIntegerField(_("最近使用的时间片"), default=0)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("动态口令设备")
        verbose_name_plural = _("动态口令设备")

    def __str__(self):
        return f"TOTP {self.user}"


class ClassificationOverride(models.Model):
    """An administrator's decision on one field's data category and level (see classification)."""

    field_path = models.CharField(_("字段"), max_length=200, unique=True, help_text=_("格式：app_label.Model.field"))
    category = models.CharField(_("数据类别"), max_length=16, choices=Category.choices)
    level = models.CharField(_("数据级别"), max_length=16, choices=Level.choices)
    reason = models.CharField(_("依据"), max_length=255, blank=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("数据分类分级")
        verbose_name_plural = _("数据分类分级")
        ordering = ["field_path"]

    def __str__(self):
        return self.field_path

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        from regulator.security.classification import invalidate_cache

        invalidate_cache()

    def clean(self):
        from django.apps import apps as django_apps
        from django.core.exceptions import FieldDoesNotExist

        super().clean()
        try:
            app_label, model_name, field_name = self.field_path.split(".")
            django_apps.get_model(app_label, model_name)._meta.get_field(field_name)
        except (ValueError, LookupError, FieldDoesNotExist):
            raise ValidationError({"field_path": _("没有这个字段（格式：app_label.Model.field）")}) from None


# Audit receivers (logouts, admin changes) and the separation-of-duties guards on roles and
# permissions: connected once the models exist, because the core AppConfig is not this module's
# to change.
from regulator import grants as _grants  # noqa: E402
from regulator.security import signals as _security_signals  # noqa: E402, F401

_grants.connect(User)
