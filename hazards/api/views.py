"""The hazard workflow over HTTP: each step is an @action that calls one service.

Scoped like the registry: hazards outside the user's scope answer 404; a step the state does not
allow answers 409 with the current status and the actions allowed now; a step the user may not
take answers 403.
"""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from enterprises.models import Enterprise
from hazards import selectors, services
from hazards.api import serializers as s
from hazards.filtersets import HazardFilterSet
from hazards.models import ChecklistItem, ChecklistRun, ChecklistTemplate, Hazard
from hazards.pagination import CappedPagination
from hazards.views import stream_photo
from regulator.api.viewsets import ScopedViewSetMixin
from regulator.models import User
from regulator.scoping import scope


def _enterprise_in_scope(user, pk) -> Enterprise:
    enterprise = scope(Enterprise.objects.all(), user).filter(pk=pk).select_related("region", "industry").first()
    if enterprise is None:
        raise NotFound("企业不存在或不在您的管辖范围内")
    return enterprise


def _valid(serializer_class, request):
    data = request.data
    if hasattr(data, "getlist") and "photos" in data:
        data = {**{k: data.get(k) for k in data}, "photos": data.getlist("photos")}
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class HazardViewSet(ScopedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    scope_prefix = "enterprise__"
    queryset = Hazard.objects.select_related("enterprise", "enterprise__region")
    filterset_class = HazardFilterSet
    ordering_fields = ["reported_at", "due_date", "status", "grade"]
    ordering = ["-reported_at", "-id"]
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    pagination_class = CappedPagination

    def get_serializer_class(self):
        if self.action == "list":
            return s.HazardListSerializer
        if self.action == "create":
            return s.HazardReportSerializer
        return s.HazardDetailSerializer

    def get_queryset(self):
        qs = super().get_queryset()
        if self.action == "retrieve":
            qs = qs.prefetch_related("photos", "transitions__user", "extensions", "escalations")
        return qs

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        if self.action == "list" and self.request.query_params.get("overdue") == "1":
            if not self.request.query_params.get("ordering"):
                # Most overdue first; this order also follows the partial index of open deadlines.
                queryset = queryset.order_by("due_date", "id")
        return queryset

    def _respond(self, hazard, code=status.HTTP_200_OK):
        hazard = self.get_queryset().get(pk=hazard.pk)
        return Response(s.HazardDetailSerializer(hazard, context={"request": self.request}).data, status=code)

    @extend_schema(request=s.HazardReportSerializer, responses=s.HazardDetailSerializer)
    def create(self, request):
        data = _valid(s.HazardReportSerializer, request)
        enterprise = _enterprise_in_scope(request.user, data.pop("enterprise"))
        hazard = services.hazard_report(enterprise=enterprise, user=request.user, **data)
        return self._respond(hazard, status.HTTP_201_CREATED)

    @extend_schema(request=s.ConfirmSerializer, responses=s.HazardDetailSerializer)
    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        data = _valid(s.ConfirmSerializer, request)
        return self._respond(services.hazard_confirm(hazard=self.get_object(), user=request.user, **data))

    @extend_schema(request=s.ReasonSerializer, responses=s.HazardDetailSerializer)
    @action(detail=True, methods=["post"])
    def dismiss(self, request, pk=None):
        data = _valid(s.ReasonSerializer, request)
        return self._respond(services.hazard_dismiss(hazard=self.get_object(), user=request.user, **data))

    @extend_schema(request=s.StartRectificationSerializer, responses=s.HazardDetailSerializer)
    @action(detail=True, methods=["post"], url_path="start-rectification")
    def start_rectification(self, request, pk=None):
        data = _valid(s.StartRectificationSerializer, request)
        hazard = services.hazard_start_rectification(hazard=self.get_object(), user=request.user, **data)
        return self._respond(hazard)

    @extend_schema(request=s.SubmitRectificationSerializer, responses=s.HazardDetailSerializer)
    @action(detail=True, methods=["post"], url_path="submit-rectification")
    def submit_rectification(self, request, pk=None):
        data = _valid(s.SubmitRectificationSerializer, request)
        hazard = services.hazard_submit_rectification(hazard=self.get_object(), user=request.user, **data)
        return self._respond(hazard)

    @extend_schema(request=s.CommentSerializer, responses=s.HazardDetailSerializer)
    @action(detail=True, methods=["post"])
    def verify(self, request, pk=None):
        data = _valid(s.CommentSerializer, request)
        return self._respond(services.hazard_verify(hazard=self.get_object(), user=request.user, **data))

    @extend_schema(request=s.ReasonSerializer, responses=s.HazardDetailSerializer)
    @action(detail=True, methods=["post"], url_path="fail-verification")
    def fail_verification(self, request, pk=None):
        data = _valid(s.ReasonSerializer, request)
        return self._respond(services.hazard_fail_verification(hazard=self.get_object(), user=request.user, **data))

    @extend_schema(request=s.ExtensionRequestSerializer, responses=s.HazardDetailSerializer)
    @action(detail=True, methods=["post"], url_path="request-extension")
    def request_extension(self, request, pk=None):
        data = _valid(s.ExtensionRequestSerializer, request)
        hazard = self.get_object()
        services.hazard_request_extension(hazard=hazard, user=request.user, **data)
        return self._respond(hazard, status.HTTP_201_CREATED)

    @extend_schema(request=s.ExtensionDecisionSerializer, responses=s.HazardDetailSerializer)
    @action(detail=True, methods=["post"], url_path="decide-extension")
    def decide_extension(self, request, pk=None):
        data = _valid(s.ExtensionDecisionSerializer, request)
        hazard = self.get_object()
        services.hazard_decide_extension(hazard=hazard, user=request.user, **data)
        return self._respond(hazard)

    @extend_schema(request=s.ListSupervisionSerializer, responses=s.HazardDetailSerializer)
    @action(detail=True, methods=["post"], url_path="list-supervision")
    def list_supervision(self, request, pk=None):
        data = _valid(s.ListSupervisionSerializer, request)
        supervisor = None
        if data.get("supervisor"):
            supervisor = User.objects.filter(pk=data["supervisor"], is_active=True).first()
            if supervisor is None:
                raise ValidationError({"supervisor": ["用户不存在"]})
        hazard = services.hazard_list_supervision(
            hazard=self.get_object(), user=request.user, supervisor=supervisor, due=data["due"], comment=data["comment"]
        )
        return self._respond(hazard)

    @extend_schema(request=s.PhotoUploadSerializer, responses=s.PhotoSerializer(many=True))
    @action(detail=True, methods=["post"], url_path="photos")
    def upload_photos(self, request, pk=None):
        data = _valid(s.PhotoUploadSerializer, request)
        created = services.hazard_add_photos(
            hazard=self.get_object(), user=request.user, files=data["photos"], kind=data["kind"]
        )
        return Response(s.PhotoSerializer(created, many=True).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={(200, "image/*"): bytes})
    @action(detail=True, methods=["get"], url_path=r"photos/(?P<photo_uid>[0-9a-f-]{36})")
    def photo(self, request, pk=None, photo_uid=None):
        hazard = self.get_object()
        photo = get_object_or_404(hazard.photos, uid=photo_uid)
        return stream_photo(photo, thumb=request.query_params.get("thumb") == "1")

    @extend_schema(responses=s.TransitionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def timeline(self, request, pk=None):
        hazard = self.get_object()
        return Response(s.TransitionSerializer(selectors.hazard_timeline(hazard), many=True).data)

    @action(detail=False, methods=["get"])
    def indicators(self, request):
        """Found / closed / rates / overdue for what you see; ?by=region|industry|source|month|grade."""
        by = request.query_params.get("by")
        if by:
            if by not in ("region", "industry", "source", "month", "grade"):
                raise ValidationError({"by": ["region, industry, source, month or grade"]})
            return Response({"by": by, "rows": selectors.hazard_indicators_by(request.user, by)})
        return Response(selectors.hazard_indicators(request.user).as_dict())


class ChecklistTemplateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Regulators define checklists (create); everyone in the platform may read them."""

    serializer_class = s.ChecklistTemplateSerializer
    queryset = ChecklistTemplate.objects.prefetch_related("items").order_by("name", "id")
    filterset_fields = ["industry", "active"]

    def get_queryset(self):
        if self.request.user.is_mlps_admin:
            return ChecklistTemplate.objects.none()
        return super().get_queryset()

    def create(self, request):
        serializer = s.ChecklistTemplateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        template = services.checklist_template_create(
            user=request.user,
            name=data["name"],
            industry=data.get("industry"),
            cycle_days=data.get("cycle_days", 30),
            items=data.get("items", []),
        )
        return Response(s.ChecklistTemplateSerializer(template).data, status=status.HTTP_201_CREATED)


class ChecklistRunViewSet(
    ScopedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    scope_prefix = "enterprise__"
    serializer_class = s.ChecklistRunSerializer
    queryset = ChecklistRun.objects.select_related("template", "enterprise").prefetch_related("answers__hazards")
    filterset_fields = ["enterprise", "template", "status"]
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(request=s.ChecklistRunCreateSerializer, responses=s.ChecklistRunSerializer)
    def create(self, request):
        data = _valid(s.ChecklistRunCreateSerializer, request)
        enterprise = _enterprise_in_scope(request.user, data["enterprise"])
        template = get_object_or_404(ChecklistTemplate, pk=data["template"])
        run = services.checklist_start_run(template=template, enterprise=enterprise, user=request.user)
        return Response(s.ChecklistRunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.ChecklistAnswerSerializer, responses=s.ChecklistRunSerializer)
    @action(detail=True, methods=["post"])
    def answer(self, request, pk=None):
        run = self.get_object()
        data = _valid(s.ChecklistAnswerSerializer, request)
        item = ChecklistItem.objects.filter(pk=data.pop("item"), template_id=run.template_id).first()
        if item is None:
            raise Http404
        services.checklist_answer(run=run, item=item, user=request.user, **data)
        return Response(s.ChecklistRunSerializer(self.get_queryset().get(pk=run.pk)).data)

    @extend_schema(request=None, responses=s.ChecklistRunSerializer)
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        run = services.checklist_complete_run(run=self.get_object(), user=request.user)
        return Response(s.ChecklistRunSerializer(self.get_queryset().get(pk=run.pk)).data)
