from rest_framework import serializers

from alerts.choices import ResponseKind
from alerts.models import Alert, AlertComment, AlertEscalation, AlertResponse, AlertRule, AlertTransition
from alerts.payloads import alert_payload
from devices.models import Channel, Device


class AlertSerializer(serializers.ModelSerializer):
    class Meta:
        model = Alert
        fields = ["id"]

    def to_representation(self, instance):
        data = alert_payload(instance)
        data["false_alarm"] = instance.false_alarm
        data["shelved_until"] = instance.shelved_until.isoformat() if instance.shelved_until else None
        data["shelve_reason"] = instance.shelve_reason
        return data


class TransitionSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.display_name", default=None)

    class Meta:
        model = AlertTransition
        fields = ["at", "action", "from_state", "to_state", "user", "comment"]


class CommentSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.display_name", default=None)

    class Meta:
        model = AlertComment
        fields = ["id", "at", "user", "text"]


class ResponseSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.display_name", default=None)
    seconds_after_alert = serializers.FloatField(read_only=True)

    class Meta:
        model = AlertResponse
        fields = ["id", "kind", "at", "recorded_at", "user", "note", "seconds_after_alert"]


class EscalationSerializer(serializers.ModelSerializer):
    class Meta:
        model = AlertEscalation
        fields = ["tier", "at", "reason", "recipients"]


class AlertDetailSerializer(AlertSerializer):
    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["transitions"] = TransitionSerializer(instance.transitions.select_related("user"), many=True).data
        data["comments"] = CommentSerializer(instance.comments.select_related("user"), many=True).data
        data["responses"] = ResponseSerializer(instance.responses.select_related("user", "alert"), many=True).data
        data["escalations"] = EscalationSerializer(instance.escalations.all(), many=True).data
        return data


class CommentInput(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")


class ShelveInput(serializers.Serializer):
    reason = serializers.CharField(max_length=255)
    until = serializers.DateTimeField()


class ReasonInput(serializers.Serializer):
    reason = serializers.CharField(max_length=255)


class TextInput(serializers.Serializer):
    text = serializers.CharField(max_length=2000)


class ResponseInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ResponseKind.choices)
    at = serializers.DateTimeField(required=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")


class ReviewInput(serializers.Serializer):
    false_alarm = serializers.BooleanField()
    note = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")


class ScheduleSerializer(serializers.ModelSerializer):
    class Meta:
        from alerts.models import ThresholdSchedule

        model = ThresholdSchedule
        fields = [
            "id",
            "name",
            "priority",
            "month_from",
            "month_to",
            "time_from",
            "time_to",
            "operating_mode",
            "high_high",
            "high",
            "low",
            "low_low",
        ]


class _ScopedRelatedField(serializers.PrimaryKeyRelatedField):
    """A device or channel the requesting user may see; anything else reads as 'does not exist'
    (a rule naming another county's device must not learn that the device is there)."""

    def __init__(self, model, prefix, **kwargs):
        self.model, self.prefix = model, prefix
        super().__init__(allow_null=True, required=False, **kwargs)

    def get_queryset(self):
        from regulator.scoping import scope

        request = self.context.get("request")
        if request is None:
            return self.model.objects.none()
        return scope(self.model.objects.all(), request.user, prefix=self.prefix)


class AlertRuleSerializer(serializers.ModelSerializer):
    schedules = ScheduleSerializer(many=True, read_only=True)
    device = _ScopedRelatedField(Device, "enterprise__")
    channel = _ScopedRelatedField(Channel, "device__enterprise__")

    class Meta:
        model = AlertRule
        validators = []  # uniqueness is checked by the database; the service names the field
        fields = [
            "schedules",
            "id",
            "name",
            "quantity",
            "device",
            "channel",
            "enabled",
            "high_high",
            "high",
            "low",
            "low_low",
            "deadband",
            "on_delay_s",
            "off_delay_s",
            "rate_limit_per_min",
            "stale_after_s",
            "fault_enabled",
            "level_high_high",
            "level_high",
            "level_low",
            "level_low_low",
            "level_rate",
            "level_fault",
            "linkage_device",
            "linkage_unit_id",
            "linkage_address",
            "linkage_value",
        ]
