from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings

from devices.buses import device_bus_budget
from devices.models import Channel, CoilWriteCommand, Device
from enterprises.models import Enterprise
from regulator.scoping import scope


def _model_clean(instance) -> None:
    """The model's own validation, as a 400: field errors by field, the others as non_field_errors."""
    try:
        instance.clean()
    except DjangoValidationError as exc:
        errors = dict(exc.message_dict) if hasattr(exc, "error_dict") else {NON_FIELD_ERRORS: exc.messages}
        if NON_FIELD_ERRORS in errors:
            errors[api_settings.NON_FIELD_ERRORS_KEY] = errors.pop(NON_FIELD_ERRORS)
        raise serializers.ValidationError(errors) from exc


class BusBudgetSerializer(serializers.Serializer):
    """Documentation only: an RTU bus's wire budget per poll cycle."""

    reads_per_cycle = serializers.IntegerField(help_text=_("每个采集周期的块读取次数"))
    wire_ms_per_cycle = serializers.FloatField(help_text=_("每个采集周期的线路时间(毫秒，含应答间隔)"))
    poll_period_ms = serializers.IntegerField()
    turnaround_ms = serializers.FloatField(help_text=_("每次读取计入的设备应答间隔(毫秒)"))
    utilisation_percent = serializers.FloatField(help_text=_("线路占用百分比"))
    warn = serializers.BooleanField(help_text=_("占用超过告警线"))
    over = serializers.BooleanField(help_text=_("超过采集周期(此配置会被拒绝)"))


class ScopedEnterpriseField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        return scope(Enterprise.objects.all(), self.context["request"].user)


class ScopedDeviceField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        return scope(Device.objects.all(), self.context["request"].user, "enterprise__")


class DeviceSerializer(serializers.ModelSerializer):
    enterprise = ScopedEnterpriseField()
    enterprise_name = serializers.CharField(source="enterprise.name", read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    target_rate_hz = serializers.FloatField(read_only=True)
    bus_budget = serializers.SerializerMethodField(help_text=_("RTU 总线的线路占用(其他协议为 null)"))

    class Meta:
        model = Device
        fields = [
            "id",
            "uid",
            "enterprise",
            "enterprise_name",
            "name",
            "location",
            "protocol",
            "host",
            "port",
            "serial_port",
            "baudrate",
            "parity",
            "stopbits",
            "bytesize",
            "poll_period_ms",
            "timeout_ms",
            "retries",
            "enabled",
            "maintenance",
            "status",
            "status_display",
            "status_reason",
            "status_changed_at",
            "last_seen",
            "achieved_rate_hz",
            "target_rate_hz",
            "overrun_count",
            "poller",
            "bus_budget",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "maintenance",  # only the maintenance action changes it, with a reason and an audit row
            "status",
            "status_reason",
            "status_changed_at",
            "last_seen",
            "achieved_rate_hz",
            "overrun_count",
            "poller",
            "created_at",
            "updated_at",
        ]

    def validate(self, attrs):
        # The whole device as it would be saved (pk included: a bus is checked with its stored
        # channels, and its serial port against the other devices).
        data = {}
        if self.instance is not None:
            data = {f.attname: getattr(self.instance, f.attname) for f in Device._meta.concrete_fields}
            data.pop("enterprise_id", None)
        data.update(attrs)
        _model_clean(Device(**data))
        return attrs

    def get_unique_together_constraints(self, model):
        # One serial port, one bus: Device.clean says so on the serial_port field, with what to do
        # instead (add the unit as a channel), rather than DRF's generic non-field message.
        for entry in super().get_unique_together_constraints(model):
            if getattr(entry[-1], "name", "") != "devices_unique_rtu_serial_port":
                yield entry

    @extend_schema_field(BusBudgetSerializer(allow_null=True))
    def get_bus_budget(self, device) -> dict | None:
        budget = device_bus_budget(device, [c for c in device.channels.all() if c.enabled])
        return budget.as_dict() if budget is not None else None


class ChannelSerializer(serializers.ModelSerializer):
    device = ScopedDeviceField()
    # The over-range rule as resolved (a default follows the quantity): True = highest alarm.
    over_range_alarms = serializers.BooleanField(read_only=True)

    class Meta:
        model = Channel
        fields = [
            "id",
            "uid",
            "device",
            "tag",
            "name",
            "location",
            "unit_id",
            "register_type",
            "address",
            "data_type",
            "byte_order",
            "word_order",
            "scale",
            "offset",
            "quantity",
            "unit",
            "range_low",
            "range_high",
            "over_range",
            "over_range_alarms",
            "sentinels",
            "deadband",
            "heartbeat_s",
            "writable",
            "enabled",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def validate(self, attrs):
        # pk included: a changed channel of an RTU bus replaces its stored self in the bus budget.
        data = {}
        if self.instance is not None:
            data = {f.attname: getattr(self.instance, f.attname) for f in Channel._meta.concrete_fields}
            if "device" in attrs:
                data.pop("device_id")
        data.update(attrs)
        _model_clean(Channel(**data))
        return attrs


class CoilWriteSerializer(serializers.ModelSerializer):
    class Meta:
        model = CoilWriteCommand
        fields = [
            "id",
            "uid",
            "device",
            "unit_id",
            "address",
            "value",
            "reason",
            "requested_by",
            "requested_at",
            "status",
            "started_at",
            "finished_at",
            "readback",
            "error",
            "poller",
        ]
        read_only_fields = fields


class IngestItemHelp(serializers.Serializer):
    """Documentation only: one item of POST /api/v1/readings/."""

    channel = serializers.IntegerField(required=False, help_text=_("测点编号(或用 tag)"))
    tag = serializers.CharField(required=False, help_text=_("位号，在本企业唯一时可用"))
    time = serializers.DateTimeField(
        help_text=_("采样时间，ISO 8601 带时区；与接收时间相差超过允许的时钟偏差时按接收时间存储并标记为设备时钟偏差")
    )
    value = serializers.FloatField(required=False)
    quality = serializers.CharField(required=False, help_text=_("good 或故障原因"))
    device_time = serializers.DateTimeField(required=False, help_text=_("设备自身时钟的时间(可选)"))
