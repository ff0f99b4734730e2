"""Monitoring devices (Modbus gateways / RTU buses), their channels, readings and linkage writes."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from devices.choices import (
    BIT_REGISTERS,
    WORDS,
    ByteOrder,
    CoilWriteStatus,
    DataType,
    DeviceStatus,
    OverRange,
    Parity,
    Protocol,
    Quality,
    Quantity,
    RegisterType,
    WordOrder,
    over_range_is_alarm,
)


class Device(models.Model):
    """One connection: a Modbus TCP gateway (host:port) or a serial RTU bus; units live on channels."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    enterprise = models.ForeignKey(
        "enterprises.Enterprise", verbose_name=_("企业"), on_delete=models.PROTECT, related_name="devices"
    )
    name = models.CharField(_("设备名称"), max_length=128)
    location = models.CharField(_("安装位置"), max_length=200, blank=True)
    protocol = models.CharField(_("通信协议"), max_length=8, choices=Protocol.choices, default=Protocol.TCP)
    host = models.CharField(_("主机地址"), max_length=255, blank=True)
    port = models.PositiveIntegerField(
        _("端口"), default=502, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    serial_port = models.CharField(_("串口"), max_length=128, blank=True, help_text=_("如 /dev/ttyUSB0"))
    baudrate = models.PositiveIntegerField(_("波特率"), default=9600)
    parity = models.CharField(_("校验位"), max_length=1, choices=Parity.choices, default=Parity.NONE)
    stopbits = models.PositiveSmallIntegerField(_("停止位"), default=1, choices=[(1, "1"), (2, "2")])
    bytesize = models.PositiveSmallIntegerField(_("数据位"), default=8, choices=[(7, "7"), (8, "8")])
    poll_period_ms = models.PositiveIntegerField(
        _("采集周期(毫秒)"),
        default=100,
        validators=[MinValueValidator(20), MaxValueValidator(3_600_000)],
        help_text=_("100 毫秒即每秒 10 次"),
    )
    timeout_ms = models.PositiveIntegerField(
        _("应答超时(毫秒)"), default=300, validators=[MinValueValidator(10), MaxValueValidator(60_000)]
    )
    retries = models.PositiveSmallIntegerField(_("重试次数"), default=0, validators=[MaxValueValidator(5)])
    enabled = models.BooleanField(_("启用"), default=True)
    maintenance = models.BooleanField(_("维护模式"), default=False, help_text=_("维护期间暂停采集，不产生报警"))
    # Written by the poller.
    status = models.CharField(
        _("状态"), max_length=16, choices=DeviceStatus.choices, default=DeviceStatus.UNKNOWN, db_index=True
    )
    status_reason = models.CharField(_("状态说明"), max_length=255, blank=True)
    status_changed_at = models.DateTimeField(_("状态变更时间"), null=True, blank=True)
    last_seen = models.DateTimeField(_("最后通信"), null=True, blank=True)
    achieved_rate_hz = models.FloatField(_("实际采集频率(次/秒)"), null=True, blank=True)
    overrun_count = models.PositiveBigIntegerField(_("周期超时次数"), default=0)
    poller = models.CharField(_("采集进程"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("配置更新时间"), auto_now=True, db_index=True)

    class Meta:
        verbose_name = _("采集设备")
        verbose_name_plural = _("采集设备")
        ordering = ["enterprise_id", "name", "id"]
        indexes = [models.Index(fields=["enterprise", "status"])]
        constraints = [
            models.UniqueConstraint(
                fields=["host", "port"],
                condition=models.Q(protocol="tcp") & ~models.Q(host=""),
                name="devices_unique_tcp_endpoint",
            ),
            # One serial port is one bus: its units are channels of one device, which polls them one
            # after the other. Two devices opening the same port would interleave frames on the wire.
            models.UniqueConstraint(
                fields=["serial_port"],
                condition=models.Q(protocol="rtu") & ~models.Q(serial_port=""),
                name="devices_unique_rtu_serial_port",
                violation_error_message=_("该串口已被另一台 RTU 总线设备使用"),
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def endpoint(self) -> str:
        if self.protocol == Protocol.TCP:
            return f"{self.host}:{self.port}"
        return f"{self.serial_port} {self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"

    @property
    def target_rate_hz(self) -> float:
        return 1000.0 / self.poll_period_ms if self.poll_period_ms else 0.0

    def clean(self):
        super().clean()
        if self.protocol == Protocol.TCP and not self.host:
            raise ValidationError({"host": _("Modbus TCP 网关需填写主机地址")})
        if self.protocol == Protocol.RTU and not self.serial_port:
            raise ValidationError({"serial_port": _("RTU 总线需填写串口")})
        if self.timeout_ms and self.poll_period_ms and self.timeout_ms > 10 * self.poll_period_ms:
            raise ValidationError({"timeout_ms": _("应答超时不应超过采集周期的 10 倍")})
        if self.protocol == Protocol.RTU:
            self._clean_bus()

    def _clean_bus(self) -> None:
        """An RTU bus: its port is not another device's, and its reads fit in its poll period."""
        from devices.buses import device_bus_budget, over_budget_message

        if (
            self.serial_port
            and Device.objects.filter(protocol=Protocol.RTU, serial_port=self.serial_port).exclude(pk=self.pk).exists()
        ):
            raise ValidationError(
                {
                    "serial_port": _(
                        "该串口已被另一台 RTU 总线设备使用：同一串口上的从站请作为该设备的测点添加(设置从站地址)，"
                        "不能再建一台设备打开同一串口"
                    )
                }
            )
        if not self.baudrate or not self.poll_period_ms:
            return
        budget = device_bus_budget(self)
        if budget is not None and budget.over:
            raise ValidationError({"poll_period_ms": over_budget_message(self, budget)})

    @property
    def bus_budget(self):
        """This RTU bus's wire budget with its enabled channels (None for TCP and HTTP devices)."""
        from devices.buses import device_bus_budget

        return device_bus_budget(self)


class Channel(models.Model):
    """A measuring point (测点): one value at one register of one unit behind a device."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    device = models.ForeignKey(Device, verbose_name=_("采集设备"), on_delete=models.CASCADE, related_name="channels")
    tag = models.CharField(_("位号"), max_length=32, help_text=_("如 GT-101"))
    name = models.CharField(_("测点名称"), max_length=128)
    location = models.CharField(_("安装位置"), max_length=200, blank=True)
    unit_id = models.PositiveSmallIntegerField(
        _("从站地址"), default=1, validators=[MinValueValidator(0), MaxValueValidator(247)]
    )
    register_type = models.CharField(
        _("寄存器类型"), max_length=16, choices=RegisterType.choices, default=RegisterType.HOLDING
    )
    address = models.PositiveIntegerField(_("寄存器地址"), validators=[MaxValueValidator(65535)])
    data_type = models.CharField(_("数据类型"), max_length=8, choices=DataType.choices, default=DataType.UINT16)
    byte_order = models.CharField(_("字节序"), max_length=8, choices=ByteOrder.choices, default=ByteOrder.BIG)
    word_order = models.CharField(_("字序"), max_length=8, choices=WordOrder.choices, default=WordOrder.BIG)
    scale = models.FloatField(_("系数"), default=1.0)
    offset = models.FloatField(_("偏移"), default=0.0)
    quantity = models.CharField(_("监测量"), max_length=32, choices=Quantity.choices, default=Quantity.OTHER)
    unit = models.CharField(_("工程单位"), max_length=16, blank=True)
    range_low = models.FloatField(_("量程下限"), null=True, blank=True)
    range_high = models.FloatField(_("量程上限"), null=True, blank=True)
    over_range = models.CharField(
        _("超量程处理"),
        max_length=16,
        choices=OverRange.choices,
        default=OverRange.BY_QUANTITY,
        help_text=_(
            "高于量程上限时：可燃/有毒气体默认按最高级报警(高高报、高报立即触发，不计报警延时)，其他监测量默认仅报传感器故障"
        ),
    )
    sentinels = models.JSONField(
        _("哨兵值"), default=list, blank=True, help_text=_("表示传感器故障的原始值，如 [65535, -32768]")
    )
    deadband = models.FloatField(
        _("存储死区"), default=0.0, validators=[MinValueValidator(0)], help_text=_("变化超过该值才存储(工程单位)")
    )
    heartbeat_s = models.PositiveIntegerField(_("强制存储间隔(秒)"), default=60, validators=[MinValueValidator(1)])
    writable = models.BooleanField(_("允许联动写入"), default=False)
    enabled = models.BooleanField(_("启用"), default=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("配置更新时间"), auto_now=True, db_index=True)

    class Meta:
        verbose_name = _("测点")
        verbose_name_plural = _("测点")
        ordering = ["device_id", "tag", "id"]
        constraints = [
            models.UniqueConstraint(fields=["device", "tag"], name="devices_unique_channel_tag"),
            models.CheckConstraint(
                condition=models.Q(range_low__isnull=True)
                | models.Q(range_high__isnull=True)
                | models.Q(range_low__lt=models.F("range_high")),
                name="devices_channel_range_ordered",
            ),
        ]

    def __str__(self):
        return f"{self.tag} {self.name}"

    @property
    def words(self) -> int:
        return 1 if self.register_type in BIT_REGISTERS else WORDS[self.data_type]

    @property
    def over_range_alarms(self) -> bool:
        """Above the range is the highest alarm (fail-safe high), not only a sensor fault."""
        return over_range_is_alarm(self.quantity, self.over_range)

    def get_over_range_rule_display(self) -> str:
        """The resolved rule in words (for a default, what the quantity makes of it)."""
        if self.over_range_alarms:
            return str(OverRange.ALARM.label)
        return str(OverRange.FAULT.label)

    def clean(self):
        super().clean()
        errors = {}
        if self.register_type in BIT_REGISTERS and self.data_type != DataType.BOOL:
            errors["data_type"] = _("线圈和离散输入只能是开关量")
        if self.register_type not in BIT_REGISTERS and self.data_type == DataType.BOOL:
            errors["data_type"] = _("开关量请使用线圈或离散输入")
        if self.address is not None and self.address + self.words > 65536:
            errors["address"] = _("寄存器地址超出范围")
        if self.range_low is not None and self.range_high is not None and self.range_low >= self.range_high:
            errors["range_high"] = _("量程上限应大于下限")
        if not isinstance(self.sentinels, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in self.sentinels
        ):
            errors["sentinels"] = _("哨兵值应为数字列表")
        if self.writable and self.register_type != RegisterType.COIL:
            errors["writable"] = _("只有线圈可以联动写入")
        if errors:
            raise ValidationError(errors)
        self._clean_bus()

    def _clean_bus(self) -> None:
        """A new or changed channel of an RTU bus must not push the bus past its wire budget."""
        from devices.buses import device_bus_budget, over_budget_message

        device = Device.objects.filter(pk=self.device_id).first() if self.device_id else None
        if device is None or device.protocol != Protocol.RTU:
            return
        if self.address is None or self.unit_id is None or self.data_type not in WORDS:
            return  # the field errors say what is wrong
        channels = list(device.channels.filter(enabled=True).exclude(pk=self.pk))
        if self.enabled:
            channels.append(self)
        budget = device_bus_budget(device, channels)
        if budget is not None and budget.over:
            raise ValidationError(over_budget_message(device, budget))


class Reading(models.Model):
    """One stored sample. Unique on (channel, time): replays and re-posts never duplicate."""

    # No database FK: measured, the deferred FK check costs ~45% of COPY throughput. The writer only
    # inserts rows whose channel exists (staged INSERT .. JOIN devices_channel) and Django's CASCADE
    # still removes a deleted channel's readings. No separate index: the (channel, time) unique index leads with it.
    channel = models.ForeignKey(
        Channel,
        verbose_name=_("测点"),
        on_delete=models.CASCADE,
        related_name="readings",
        db_constraint=False,
        db_index=False,
    )
    time = models.DateTimeField(_("接收时间"))
    value = models.FloatField(_("数值"), null=True, blank=True)
    quality = models.CharField(_("质量"), max_length=16, choices=Quality.choices, default=Quality.GOOD)
    device_time = models.DateTimeField(_("设备时间"), null=True, blank=True)
    poller = models.CharField(_("来源"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("监测数据")
        verbose_name_plural = _("监测数据")
        constraints = [models.UniqueConstraint(fields=["channel", "time"], name="devices_reading_unique_channel_time")]

    def __str__(self):
        return f"{self.channel_id}@{self.time:%Y-%m-%d %H:%M:%S}={self.value}"

    @property
    def good(self) -> bool:
        return self.quality == Quality.GOOD


class ReadingAggregate(models.Model):
    """One minute of one channel, over every sample (before deadband compression)."""

    channel = models.ForeignKey(Channel, verbose_name=_("测点"), on_delete=models.CASCADE, related_name="aggregates")
    minute = models.DateTimeField(_("分钟"))
    min = models.FloatField(_("最小值"), null=True)
    max = models.FloatField(_("最大值"), null=True)
    sum = models.FloatField(_("累计值"), default=0.0)
    count = models.PositiveIntegerField(_("有效样本数"), default=0)
    bad_count = models.PositiveIntegerField(_("异常样本数"), default=0)

    class Meta:
        verbose_name = _("分钟统计")
        verbose_name_plural = _("分钟统计")
        constraints = [models.UniqueConstraint(fields=["channel", "minute"], name="devices_aggregate_unique_minute")]

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None


class StoredBatch(models.Model):
    """A batch of readings a poller has stored, written in the same transaction as the batch.

    A batch is stored again when its spool file outlives its commit (a crash between the two, or a
    commit whose reply was lost): the second time its key is found here and the batch is skipped,
    so its aggregates are not added twice. The poller prunes its own rows once its spool is empty.
    """

    key = models.CharField(max_length=40, primary_key=True)
    poller = models.CharField(_("采集进程"), max_length=64)
    created = models.DateTimeField(_("生成时间"))  # on the poller's clock, when the batch was made

    class Meta:
        verbose_name = _("已存储批次")
        verbose_name_plural = _("已存储批次")
        indexes = [models.Index(fields=["poller", "created"], name="devices_storedbatch_prune")]


class DeviceStatusChange(models.Model):
    """History of a device's status: who saw what change, when and why."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="status_changes")
    at = models.DateTimeField(_("时间"), db_index=True)
    old = models.CharField(_("原状态"), max_length=16, choices=DeviceStatus.choices)
    new = models.CharField(_("新状态"), max_length=16, choices=DeviceStatus.choices)
    reason = models.CharField(_("原因"), max_length=255, blank=True)
    poller = models.CharField(_("采集进程"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("设备状态变更")
        verbose_name_plural = _("设备状态变更")
        ordering = ["-at", "-id"]


class CoilWriteCommand(models.Model):
    """A linkage write (e.g. close a valve) that the poller owning the device executes and confirms."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    device = models.ForeignKey(Device, verbose_name=_("采集设备"), on_delete=models.CASCADE, related_name="coil_writes")
    unit_id = models.PositiveSmallIntegerField(_("从站地址"), validators=[MaxValueValidator(247)])
    address = models.PositiveIntegerField(_("线圈地址"), validators=[MaxValueValidator(65535)])
    value = models.BooleanField(_("写入值"))
    reason = models.CharField(_("原因"), max_length=255)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("请求人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    requested_at = models.DateTimeField(_("请求时间"), db_index=True)
    status = models.CharField(
        _("状态"), max_length=16, choices=CoilWriteStatus.choices, default=CoilWriteStatus.PENDING, db_index=True
    )
    started_at = models.DateTimeField(_("开始时间"), null=True, blank=True)
    finished_at = models.DateTimeField(_("完成时间"), null=True, blank=True)
    readback = models.BooleanField(_("回读值"), null=True, blank=True)
    error = models.CharField(_("错误"), max_length=255, blank=True)
    poller = models.CharField(_("执行进程"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("联动写入")
        verbose_name_plural = _("联动写入")
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["device", "status"])]

    def __str__(self):
        return f"{self.device} u{self.unit_id} coil {self.address} := {int(self.value)}"


class IngestToken(models.Model):
    """A per-enterprise token for HTTP ingest; only a hash is stored, the token is shown once."""

    enterprise = models.ForeignKey(
        "enterprises.Enterprise", verbose_name=_("企业"), on_delete=models.CASCADE, related_name="ingest_tokens"
    )
    name = models.CharField(_("名称"), max_length=64, help_text=_("如 DCS 数据推送"))
    prefix = models.CharField(_("前缀"), max_length=12, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("最近使用"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("吊销时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("数据接入令牌")
        verbose_name_plural = _("数据接入令牌")
        ordering = ["enterprise_id", "name"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def active(self) -> bool:
        return self.revoked_at is None
