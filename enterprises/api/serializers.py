"""Serializers of the registry API. Writes go through enterprises.services (views call them)."""

from __future__ import annotations

from rest_framework import serializers

from enterprises import selectors
from enterprises.models import (
    Enterprise,
    HazardousSubstance,
    Industry,
    Licence,
    MajorHazardInstallation,
)
from enterprises.services import ENTERPRISE_FIELDS
from regulator.api.masking import MaskingSerializerMixin
from regulator.models import Park, Region


class IndustrySerializer(serializers.ModelSerializer):
    level_display = serializers.CharField(source="get_level_display", read_only=True)

    class Meta:
        model = Industry
        fields = ["id", "code", "name", "level", "level_display", "parent", "section", "high_risk_sector"]


class IndustryTreeNodeSerializer(serializers.Serializer):
    """Documentation only: one node of /industries/tree/ (children nest the same shape)."""

    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    level = serializers.IntegerField()
    high_risk_sector = serializers.CharField()
    children = serializers.ListField(child=serializers.DictField())


class EnterpriseListSerializer(MaskingSerializerMixin, serializers.ModelSerializer):
    """A row of the list: phones masked by the page's rule (a list never reveals)."""

    region_name = serializers.CharField(source="region.name", read_only=True)
    park_name = serializers.CharField(source="park.name", read_only=True, default=None)
    industry_code = serializers.CharField(source="industry.code", read_only=True)
    industry_name = serializers.CharField(source="industry.name", read_only=True)

    class Meta:
        model = Enterprise
        fields = [
            "id",
            "uscc",
            "name",
            "former_names",
            "region",
            "region_name",
            "park",
            "park_name",
            "industry",
            "industry_code",
            "industry_name",
            "high_risk_sector",
            "is_key",
            "risk_grade",
            "operating_status",
            "scale",
            "employees",
            "principal_name",
            "principal_phone",
            "updated_at",
        ]


class EnterpriseDetailSerializer(MaskingSerializerMixin, serializers.ModelSerializer):
    """Phones masked as on the page; ``?reveal=1`` gives them to a user who may reveal (audited)."""

    region_name = serializers.CharField(source="region.name", read_only=True)
    park_name = serializers.CharField(source="park.name", read_only=True, default=None)
    industry_code = serializers.CharField(source="industry.code", read_only=True)
    industry_name = serializers.CharField(source="industry.name", read_only=True)

    class Meta:
        model = Enterprise
        fields = [
            "id",
            "uscc",
            "name",
            "former_names",
            "legal_representative",
            "principal_name",
            "principal_phone",
            "safety_officer_name",
            "safety_officer_phone",
            "safety_manager_name",
            "safety_manager_phone",
            "address",
            "region",
            "region_name",
            "park",
            "park_name",
            "longitude",
            "latitude",
            "industry",
            "industry_code",
            "industry_name",
            "scale",
            "employees",
            "standardisation_level",
            "is_key",
            "high_risk_sector",
            "operating_status",
            "risk_grade",
            "created_at",
            "updated_at",
        ]


class EnterpriseWriteSerializer(serializers.ModelSerializer):
    """Input for create/update. USCC is normalised and checked by the service (400 with the rule)."""

    uscc = serializers.CharField(max_length=40)
    former_names = serializers.ListField(child=serializers.CharField(max_length=200), required=False)
    principal_phone = serializers.CharField(max_length=32, required=False, allow_blank=True)
    safety_officer_phone = serializers.CharField(max_length=32, required=False, allow_blank=True)
    safety_manager_phone = serializers.CharField(max_length=32, required=False, allow_blank=True)
    region = serializers.PrimaryKeyRelatedField(queryset=Region.objects.all())
    park = serializers.PrimaryKeyRelatedField(queryset=Park.objects.all(), required=False, allow_null=True)
    industry = serializers.PrimaryKeyRelatedField(queryset=Industry.objects.all())

    class Meta:
        model = Enterprise
        fields = ENTERPRISE_FIELDS
        extra_kwargs = {"name": {"validators": []}}

    def to_representation(self, instance):
        return EnterpriseDetailSerializer(instance, context=self.context).data


class ScopedEnterpriseField(serializers.PrimaryKeyRelatedField):
    """An enterprise the requesting user may see; anything else reads as 'does not exist'."""

    def get_queryset(self):
        request = self.context.get("request")
        return selectors.enterprises_visible_to(request.user) if request else Enterprise.objects.none()


class LicenceSerializer(serializers.ModelSerializer):
    enterprise = ScopedEnterpriseField()
    enterprise_name = serializers.CharField(source="enterprise.name", read_only=True)
    licence_type_display = serializers.CharField(source="get_licence_type_display", read_only=True)
    days_left = serializers.IntegerField(read_only=True)
    expiring_soon = serializers.BooleanField(read_only=True)
    is_expired = serializers.BooleanField(read_only=True)

    class Meta:
        model = Licence
        fields = [
            "id",
            "enterprise",
            "enterprise_name",
            "licence_type",
            "licence_type_display",
            "number",
            "scope",
            "issued_on",
            "expires_on",
            "days_left",
            "expiring_soon",
            "is_expired",
        ]
        validators = []  # uniqueness and dates are checked by the service (full_clean)


class SubstanceSerializer(serializers.ModelSerializer):
    beta = serializers.DecimalField(max_digits=5, decimal_places=2, required=False, allow_null=True)

    class Meta:
        model = HazardousSubstance
        fields = ["id", "name", "cas_number", "substance_class", "actual_quantity", "critical_quantity", "beta"]
        read_only_fields = ["id"]


class InstallationSerializer(MaskingSerializerMixin, serializers.ModelSerializer):
    enterprise = ScopedEnterpriseField()
    enterprise_name = serializers.CharField(source="enterprise.name", read_only=True)
    grade_display = serializers.CharField(source="get_grade_display", read_only=True)
    alpha = serializers.DecimalField(max_digits=3, decimal_places=1, read_only=True)
    substances = SubstanceSerializer(many=True, required=False)
    process_parameters = serializers.CharField(required=False, allow_blank=True)

    class Meta:
        model = MajorHazardInstallation
        fields = [
            "id",
            "enterprise",
            "enterprise_name",
            "name",
            "code",
            "people_within_500m",
            "alpha",
            "process_parameters",
            "custodian_main",
            "custodian_technical",
            "custodian_operational",
            "substances",
            "r_value",
            "grade",
            "grade_display",
        ]
        read_only_fields = ["r_value", "grade"]


class DossierSectionSerializer(serializers.Serializer):
    title = serializers.CharField()
    order = serializers.IntegerField()
    data = serializers.DictField()


class DossierSerializer(serializers.Serializer):
    enterprise = EnterpriseListSerializer()
    sections = serializers.DictField(child=DossierSectionSerializer())
