from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from devices.models import Channel, CoilWriteCommand, Device
from enterprises.models import Enterprise
from regulator.scoping import scope


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
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
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
        instance = Device(**{**({} if self.instance is None else self._current()), **attrs})
        from django.core.exceptions import ValidationError as DjangoValidationError

        try:
            instance.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        return attrs

    def _current(self):
        return {
            f: getattr(self.instance, f) for f in ("protocol", "host", "serial_port", "timeout_ms", "poll_period_ms")
        }


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
        from django.core.exceptions import ValidationError as DjangoValidationError

        data = {}
        if self.instance is not None:
            data = {f.name: getattr(self.instance, f.name) for f in Channel._meta.concrete_fields if f.name != "id"}
            data.pop("device", None)
            data["device_id"] = self.instance.device_id
        data.update(attrs)
        try:
            Channel(**data).clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
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
    time = serializers.DateTimeField(help_text=_("采样时间，ISO 8601 带时区"))
    value = serializers.FloatField(required=False)
    quality = serializers.CharField(required=False, help_text=_("good 或故障原因"))
    device_time = serializers.DateTimeField(required=False)
