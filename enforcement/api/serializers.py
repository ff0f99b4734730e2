import json

from rest_framework import serializers

from enforcement.choices import CreditEventKind, DocumentType, Outcome
from enforcement.models import (
    CreditEvent,
    CreditScore,
    CreditScoreChange,
    DishonestyListing,
    Document,
    Draw,
    Inspection,
    InspectionFinding,
    InspectionPhoto,
    InspectionPlan,
    InspectorProfile,
    RepairApplication,
)
from enterprises.api.serializers import ScopedEnterpriseField
from regulator.models import Region


class InspectorSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="user.display_name", read_only=True)
    jurisdiction = serializers.CharField(source="user.jurisdiction.code", read_only=True, default=None)
    specialties = serializers.SlugRelatedField(many=True, read_only=True, slug_field="code")

    class Meta:
        model = InspectorProfile
        fields = [
            "id",
            "user",
            "name",
            "jurisdiction",
            "certification_level",
            "certificate_number",
            "specialties",
            "status",
        ]


class PlanSerializer(serializers.ModelSerializer):
    jurisdiction = serializers.SlugRelatedField(slug_field="code", queryset=Region.objects.all())
    current_draw = serializers.SerializerMethodField()

    class Meta:
        model = InspectionPlan
        fields = [
            "id",
            "name",
            "jurisdiction",
            "period_start",
            "period_end",
            "items",
            "industry_prefixes",
            "risk_filter",
            "credit_filter",
            "strata",
            "default_ratio",
            "team_size",
            "require_specialty",
            "status",
            "created_at",
            "current_draw",
        ]
        read_only_fields = ["status", "created_at"]

    def get_current_draw(self, obj) -> int | None:
        draw = obj.current_draw
        return draw.pk if draw else None


class DrawSerializer(serializers.ModelSerializer):
    result = serializers.SerializerMethodField()

    class Meta:
        model = Draw
        fields = [
            "id",
            "plan",
            "sequence",
            "seed",
            "snapshot_hash",
            "result_hash",
            "signature",
            "status",
            "reason",
            "superseded_reason",
            "drawn_by",
            "drawn_at",
            "selected_count",
            "result",
        ]

    def get_result(self, obj) -> dict:
        return json.loads(obj.result)


class FindingSerializer(serializers.ModelSerializer):
    class Meta:
        model = InspectionFinding
        fields = ["id", "description", "location", "grade", "hazard_id"]


class InspectionSerializer(serializers.ModelSerializer):
    team = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    findings = FindingSerializer(many=True, read_only=True)
    documents = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Inspection
        fields = [
            "id",
            "enterprise",
            "plan",
            "draw",
            "team",
            "leader",
            "date",
            "status",
            "checklist",
            "outcome",
            "public_summary",
            "rectification_deadline",
            "penalty_amount",
            "legal_basis",
            "cancel_reason",
            "completed_at",
            "findings",
            "documents",
        ]


class InspectionRegulatorSerializer(InspectionSerializer):
    class Meta(InspectionSerializer.Meta):
        fields = [*InspectionSerializer.Meta.fields, "internal_notes"]


class ChecklistRowSerializer(serializers.Serializer):
    item = serializers.CharField(max_length=300)
    result = serializers.ChoiceField(choices=["pass", "fail", "na"])
    note = serializers.CharField(max_length=500, required=False, allow_blank=True)


class FindingInputSerializer(serializers.Serializer):
    description = serializers.CharField()
    location = serializers.CharField(required=False, allow_blank=True)
    grade = serializers.ChoiceField(choices=["ordinary", "major"], default="ordinary")


class CompleteSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=Outcome.choices)
    inspected_on = serializers.DateField(required=False)
    checklist = ChecklistRowSerializer(many=True, required=False)
    findings = FindingInputSerializer(many=True, required=False)
    public_summary = serializers.CharField(required=False, allow_blank=True, max_length=300)
    internal_notes = serializers.CharField(required=False, allow_blank=True)
    rectification_deadline = serializers.DateField(required=False, allow_null=True)
    penalty_amount = serializers.DecimalField(max_digits=12, decimal_places=2, required=False, allow_null=True)
    legal_basis = serializers.CharField(required=False, allow_blank=True, max_length=300)


class IssueDocumentSerializer(serializers.Serializer):
    doc_type = serializers.ChoiceField(choices=DocumentType.choices)
    content = serializers.DictField(required=False)


class InspectionPhotoUploadSerializer(serializers.Serializer):
    """A site photo; its content is checked by the upload validator in the service, not here."""

    image = serializers.FileField(allow_empty_file=True, use_url=False)
    caption = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")


class InspectionPhotoSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = InspectionPhoto
        fields = ["id", "caption", "uploaded_at", "url"]

    def get_url(self, obj) -> str:
        from django.urls import reverse

        return reverse("enforcement:photo_file", args=[obj.inspection_id, obj.pk])


class DocumentSerializer(serializers.ModelSerializer):
    bureau = serializers.CharField(source="bureau.code")

    class Meta:
        model = Document
        fields = [
            "id",
            "inspection",
            "doc_type",
            "number",
            "bureau",
            "year",
            "seq",
            "sha3",
            "signature",
            "issued_by",
            "issued_at",
        ]


class CreditScoreSerializer(serializers.ModelSerializer):
    class Meta:
        model = CreditScore
        fields = ["enterprise", "score", "grade", "basis", "computed_at"]


class CreditChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = CreditScoreChange
        fields = ["id", "enterprise", "at", "old_score", "new_score", "old_grade", "new_grade", "added", "removed"]


class CreditEventSerializer(serializers.ModelSerializer):
    enterprise = ScopedEnterpriseField()  # another county's enterprise reads as "does not exist"
    kind = serializers.ChoiceField(choices=CreditEventKind.choices)

    class Meta:
        model = CreditEvent
        fields = ["id", "enterprise", "kind", "occurred_on", "description", "source_key", "recorded_by", "recorded_at"]
        read_only_fields = ["source_key", "recorded_by", "recorded_at"]


class RepairSerializer(serializers.ModelSerializer):
    class Meta:
        model = RepairApplication
        fields = ["id", "statement", "applied_by", "applied_at", "status", "decided_by", "decided_at", "decision_note"]


class ListingSerializer(serializers.ModelSerializer):
    enterprise = ScopedEnterpriseField()  # another county's enterprise reads as "does not exist"
    repairs = RepairSerializer(many=True, read_only=True)

    class Meta:
        model = DishonestyListing
        fields = ["id", "enterprise", "reason", "listed_on", "expires_on", "status", "removed_on", "repairs"]
        read_only_fields = ["listed_on", "expires_on", "status", "removed_on"]
