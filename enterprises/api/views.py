"""Registry API: enterprises (+ dossier), industries, licences, major hazard installations.

Every queryset starts from the scoped base classes; writes call enterprises.services.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.filters import SearchFilter
from rest_framework.response import Response

from enterprises import selectors, services
from enterprises.api import serializers as s
from enterprises.dossier import build_all
from enterprises.filtersets import EnterpriseFilterSet, InstallationFilterSet, LicenceFilterSet
from enterprises.models import Enterprise, EnterpriseChange, Licence, MajorHazardInstallation
from regulator.api.permissions import IsRegulatorOrReadOnly
from regulator.api.viewsets import ScopedViewSetMixin

API = EnterpriseChange.Source.API


def _raise_as_drf(exc: DjangoValidationError):
    from rest_framework.exceptions import ValidationError

    raise ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages})


class EnterpriseViewSet(
    ScopedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Enterprises in the caller's scope. Regulator staff create and update; nobody deletes (close instead)."""

    scope_prefix = ""
    queryset = Enterprise.objects.select_related("region", "park", "industry").order_by("-id")  # newest first
    permission_classes = [IsRegulatorOrReadOnly]
    filter_backends = [DjangoFilterBackend]
    filterset_class = EnterpriseFilterSet

    def get_serializer_class(self):
        if self.action == "list":
            return s.EnterpriseListSerializer
        if self.action in ("create", "update", "partial_update"):
            return s.EnterpriseWriteSerializer
        if self.action == "dossier":
            return s.DossierSerializer
        return s.EnterpriseDetailSerializer

    def perform_create(self, serializer):
        try:
            serializer.instance = services.enterprise_create(
                user=self.request.user, data=serializer.validated_data, source=API
            )
        except DjangoValidationError as exc:
            _raise_as_drf(exc)

    def perform_update(self, serializer):
        try:
            serializer.instance = services.enterprise_update(
                enterprise=serializer.instance, user=self.request.user, data=serializer.validated_data, source=API
            )
        except DjangoValidationError as exc:
            _raise_as_drf(exc)

    @extend_schema(responses=s.DossierSerializer, summary="一企一档：企业的全部档案分节")
    @action(detail=True, methods=["get"])
    def dossier(self, request, pk=None):
        enterprise = self.get_object()
        sections = {
            section.key: {"title": str(section.title), "order": section.order, "data": data}
            for section, data in build_all(enterprise, request.user)
        }
        head = s.EnterpriseListSerializer(enterprise, context={"request": request}).data
        return Response({"enterprise": head, "sections": sections})


class IndustryViewSet(viewsets.ReadOnlyModelViewSet):
    """GB/T 4754-2017 industries (reference data, visible to every signed-in user)."""

    serializer_class = s.IndustrySerializer
    queryset = selectors.industries()
    filter_backends = [DjangoFilterBackend, SearchFilter]
    filterset_fields = ["level", "parent", "section", "high_risk_sector", "code"]
    search_fields = ["code", "name"]
    pagination_class = None

    @extend_schema(responses=s.IndustryTreeNodeSerializer(many=True), summary="行业分类树")
    @action(detail=False, methods=["get"])
    def tree(self, request):
        return Response(selectors.industry_tree())


class LicenceViewSet(ScopedViewSetMixin, viewsets.ModelViewSet):
    scope_prefix = "enterprise__"
    queryset = Licence.objects.select_related("enterprise").order_by("expires_on", "id")
    serializer_class = s.LicenceSerializer
    permission_classes = [IsRegulatorOrReadOnly]
    filter_backends = [DjangoFilterBackend]
    filterset_class = LicenceFilterSet

    def _data(self, serializer):
        return {k: v for k, v in serializer.validated_data.items() if k != "enterprise"}

    def perform_create(self, serializer):
        try:
            serializer.instance = services.licence_create(
                enterprise=serializer.validated_data["enterprise"],
                user=self.request.user,
                data=self._data(serializer),
                source=API,
            )
        except DjangoValidationError as exc:
            _raise_as_drf(exc)

    def perform_update(self, serializer):
        try:
            serializer.instance = services.licence_update(
                licence=serializer.instance, user=self.request.user, data=self._data(serializer), source=API
            )
        except DjangoValidationError as exc:
            _raise_as_drf(exc)

    def perform_destroy(self, instance):
        services.licence_delete(licence=instance, user=self.request.user, source=API)


class InstallationViewSet(ScopedViewSetMixin, viewsets.ModelViewSet):
    """重大危险源. R and the grade are computed by the server from the substances (read-only)."""

    scope_prefix = "enterprise__"
    queryset = (
        MajorHazardInstallation.objects.select_related("enterprise").prefetch_related("substances").order_by("id")
    )
    serializer_class = s.InstallationSerializer
    permission_classes = [IsRegulatorOrReadOnly]
    filter_backends = [DjangoFilterBackend]
    filterset_class = InstallationFilterSet

    def _split(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("enterprise", None)
        substances = data.pop("substances", None)
        if substances is not None:
            substances = [{k: v for k, v in item.items() if k != "id"} for item in substances]
        return data, substances

    def perform_create(self, serializer):
        data, substances = self._split(serializer)
        try:
            serializer.instance = services.installation_create(
                enterprise=serializer.validated_data["enterprise"],
                user=self.request.user,
                data=data,
                substances=substances or [],
                source=API,
            )
        except DjangoValidationError as exc:
            _raise_as_drf(exc)

    def perform_update(self, serializer):
        data, substances = self._split(serializer)
        try:
            serializer.instance = services.installation_update(
                installation=serializer.instance, user=self.request.user, data=data, substances=substances, source=API
            )
        except DjangoValidationError as exc:
            _raise_as_drf(exc)

    def perform_destroy(self, instance):
        services.installation_delete(installation=instance, user=self.request.user, source=API)
