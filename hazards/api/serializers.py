"""Hazard API representations; writes go through hazards.services, never through save()."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from hazards import policy
from hazards.choices import CheckResult, HazardCategory, HazardGrade, HazardSource, MajorLevel, PhotoKind
from hazards.models import (
    ChecklistItem,
    ChecklistRun,
    ChecklistTemplate,
    ExtensionRequest,
    Hazard,
    HazardEscalation,
    HazardPhoto,
    HazardTransition,
)


class PhotoSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    thumb_url = serializers.SerializerMethodField()

    class Meta:
        model = HazardPhoto
        fields = ["uid", "kind", "content_type", "width", "height", "size", "uploaded_at", "url", "thumb_url"]

    def get_url(self, obj) -> str:
        return reverse("hazards:photo", args=[obj.uid])

    def get_thumb_url(self, obj) -> str:
        return reverse("hazards:photo_thumb", args=[obj.uid])


class TransitionSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.display_name", default=None)

    class Meta:
        model = HazardTransition
        fields = ["id", "action", "from_status", "to_status", "user", "at", "comment", "data"]


class ExtensionSerializer(serializers.ModelSerializer):
    requested_by = serializers.CharField(source="requested_by.display_name", default=None)
    decided_by = serializers.CharField(source="decided_by.display_name", default=None)

    class Meta:
        model = ExtensionRequest
        fields = [
            "id",
            "requested_by",
            "requested_at",
            "old_deadline",
            "new_deadline",
            "reason",
            "status",
            "decided_by",
            "decided_at",
            "decision_comment",
        ]


class EscalationSerializer(serializers.ModelSerializer):
    class Meta:
        model = HazardEscalation
        fields = ["tier", "due_date", "days_overdue", "at", "recipients"]


class HazardListSerializer(serializers.ModelSerializer):
    code = serializers.CharField(read_only=True)
    enterprise_name = serializers.CharField(source="enterprise.name", read_only=True)
    overdue = serializers.BooleanField(source="overdue_now", read_only=True)
    days_overdue = serializers.IntegerField(read_only=True)

    class Meta:
        model = Hazard
        fields = [
            "id",
            "code",
            "enterprise",
            "enterprise_name",
            "description",
            "location",
            "category",
            "grade",
            "major_level",
            "source",
            "status",
            "deadline",
            "due_date",
            "overdue",
            "days_overdue",
            "listed",
            "reported_at",
            "closed_at",
        ]


class HazardDetailSerializer(HazardListSerializer):
    allowed_actions = serializers.SerializerMethodField()
    photos = PhotoSerializer(many=True, read_only=True)
    transitions = TransitionSerializer(many=True, read_only=True)
    extensions = ExtensionSerializer(many=True, read_only=True)
    escalations = EscalationSerializer(many=True, read_only=True)
    found_by = serializers.CharField(source="found_by.display_name", default=None)
    supervisor = serializers.CharField(source="supervisor.display_name", default=None)

    class Meta(HazardListSerializer.Meta):
        fields = [
            *HazardListSerializer.Meta.fields,
            "source_ref",
            "found_by",
            "found_at",
            "measures",
            "funds",
            "responsible_person",
            "emergency_plan",
            "cost_spent",
            "rectification_note",
            "confirmed_at",
            "submitted_at",
            "closed_on_time",
            "dismissed_reason",
            "last_failure_reason",
            "escalation_tier",
            "listed_at",
            "supervisor",
            "supervision_due",
            "allowed_actions",
            "photos",
            "transitions",
            "extensions",
            "escalations",
        ]

    def get_allowed_actions(self, obj) -> list[str]:
        return policy.allowed_actions(obj, self.context["request"].user)


class PlanSerializer(serializers.Serializer):
    measures = serializers.CharField(required=False, allow_blank=True)
    funds = serializers.DecimalField(max_digits=12, decimal_places=2, required=False, allow_null=True, min_value=0)
    responsible_person = serializers.CharField(required=False, allow_blank=True, max_length=64)
    deadline = serializers.DateField(required=False, allow_null=True)
    emergency_plan = serializers.CharField(required=False, allow_blank=True)


class HazardReportSerializer(PlanSerializer):
    enterprise = serializers.IntegerField()
    source = serializers.ChoiceField(choices=HazardSource.choices)
    description = serializers.CharField()
    location = serializers.CharField(required=False, allow_blank=True, max_length=200)
    category = serializers.ChoiceField(choices=HazardCategory.choices, required=False, allow_blank=True)
    grade = serializers.ChoiceField(choices=HazardGrade.choices, default=HazardGrade.ORDINARY)
    major_level = serializers.ChoiceField(choices=MajorLevel.choices, required=False, allow_null=True)
    found_at = serializers.DateTimeField(required=False, allow_null=True)
    photos = serializers.ListField(child=serializers.FileField(), required=False)


class ConfirmSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="")
    grade = serializers.ChoiceField(choices=HazardGrade.choices, required=False)
    major_level = serializers.ChoiceField(choices=MajorLevel.choices, required=False, allow_null=True)


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField()


class CommentSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class StartRectificationSerializer(PlanSerializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class SubmitRectificationSerializer(serializers.Serializer):
    note = serializers.CharField()
    cost_spent = serializers.DecimalField(max_digits=12, decimal_places=2, required=False, allow_null=True, min_value=0)
    photos = serializers.ListField(child=serializers.FileField(), required=False)


class ExtensionRequestSerializer(serializers.Serializer):
    new_deadline = serializers.DateField()
    reason = serializers.CharField()


class ExtensionDecisionSerializer(serializers.Serializer):
    approve = serializers.BooleanField()
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class ListSupervisionSerializer(serializers.Serializer):
    supervisor = serializers.IntegerField(required=False, allow_null=True)
    due = serializers.DateField()
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class PhotoUploadSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=PhotoKind.choices, default=PhotoKind.BEFORE)
    photos = serializers.ListField(child=serializers.FileField(), allow_empty=False)


class ChecklistItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = ChecklistItem
        fields = ["id", "order", "text", "basis", "category"]


class ChecklistTemplateSerializer(serializers.ModelSerializer):
    items = ChecklistItemSerializer(many=True)

    class Meta:
        model = ChecklistTemplate
        fields = ["id", "name", "industry", "cycle_days", "active", "items"]


class ChecklistRunSerializer(serializers.ModelSerializer):
    answers = serializers.SerializerMethodField()

    class Meta:
        model = ChecklistRun
        fields = ["id", "template", "enterprise", "status", "started_at", "completed_at", "next_due", "answers"]

    def get_answers(self, obj) -> list[dict]:
        return [
            {
                "item": a.item_id,
                "result": a.result,
                "note": a.note,
                "hazards": [h.pk for h in a.hazards.all()],
            }
            for a in obj.answers.all()
        ]


class ChecklistRunCreateSerializer(serializers.Serializer):
    template = serializers.IntegerField()
    enterprise = serializers.IntegerField()


class ChecklistAnswerSerializer(serializers.Serializer):
    item = serializers.IntegerField()
    result = serializers.ChoiceField(choices=CheckResult.choices)
    note = serializers.CharField(required=False, allow_blank=True, default="")
    grade = serializers.ChoiceField(choices=HazardGrade.choices, default=HazardGrade.ORDINARY)
    photos = serializers.ListField(child=serializers.FileField(), required=False)
