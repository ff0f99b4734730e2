"""REST API: each workflow step is an action that calls one service."""

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from enforcement import selectors, services
from enforcement.api import serializers as s
from enforcement.models import RepairApplication
from enforcement.views import document_pdf_response, stream_photo
from regulator import scoping
from regulator.api.permissions import IsRegulatorOrReadOnly


class InspectorViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = s.InspectorSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        return selectors.inspectors_visible_to(self.request.user)


class PlanViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = s.PlanSerializer
    permission_classes = [IsRegulatorOrReadOnly]

    def get_queryset(self):
        return selectors.plans_visible_to(self.request.user)

    def perform_create(self, serializer):
        serializer.instance = services.plan_create(user=self.request.user, **serializer.validated_data)

    @action(detail=True, methods=["post"])
    def draw(self, request, pk=None):
        draw = services.draw_plan(plan=self.get_object(), user=request.user, reason=request.data.get("reason", ""))
        return Response(s.DrawSerializer(draw).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        plan = services.plan_close(plan=self.get_object(), user=request.user)
        return Response(self.get_serializer(plan).data)


class DrawViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = s.DrawSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        return selectors.draws_visible_to(self.request.user)

    @action(detail=True, methods=["get"])
    def verify(self, request, pk=None):
        problems = services.verify_draw(self.get_object())
        return Response({"ok": not problems, "problems": problems})


class InspectionViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [IsRegulatorOrReadOnly]

    def get_queryset(self):
        qs = selectors.inspections_visible_to(self.request.user).prefetch_related("team", "findings", "documents")
        if self.request.query_params.get("mine") == "1":
            qs = qs.filter(team=self.request.user)
        status_filter = self.request.query_params.get("status")
        return qs.filter(status=status_filter) if status_filter else qs

    def get_serializer_class(self):
        user = getattr(self.request, "user", None)
        if user is not None and (getattr(user, "is_regulator", False) or user.is_superuser):
            return s.InspectionRegulatorSerializer  # with the internal notes
        return s.InspectionSerializer

    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        data = s.CompleteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        inspection = services.inspection_complete(
            inspection=self.get_object(), user=request.user, **data.validated_data
        )
        return Response(s.InspectionRegulatorSerializer(inspection).data)

    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        inspection = services.inspection_cancel(
            inspection=self.get_object(), user=request.user, reason=request.data.get("reason", "")
        )
        return Response(s.InspectionRegulatorSerializer(inspection).data)

    @extend_schema(
        request={"multipart/form-data": s.InspectionPhotoUploadSerializer}, responses=s.InspectionPhotoSerializer
    )
    @action(detail=True, methods=["post"], url_path="photos")
    def upload_photo(self, request, pk=None):
        data = s.InspectionPhotoUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        photo = services.inspection_add_photo(
            inspection=self.get_object(),
            user=request.user,
            upload=data.validated_data["image"],
            caption=data.validated_data["caption"],
        )
        return Response(s.InspectionPhotoSerializer(photo).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["get"], url_path=r"photos/(?P<photo_id>[0-9]+)")
    def photo(self, request, pk=None, photo_id=None):
        return stream_photo(get_object_or_404(self.get_object().photos, pk=photo_id))

    @action(detail=True, methods=["post"])
    def documents(self, request, pk=None):
        data = s.IssueDocumentSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        doc = services.document_issue(
            inspection=self.get_object(),
            doc_type=data.validated_data["doc_type"],
            user=request.user,
            content=data.validated_data.get("content") or {},
        )
        return Response(s.DocumentSerializer(doc).data, status=status.HTTP_201_CREATED)


class DocumentViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = s.DocumentSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        return selectors.documents_visible_to(self.request.user)

    @action(detail=True, methods=["get"])
    def pdf(self, request, pk=None):
        return document_pdf_response(self.get_object())

    @action(detail=True, methods=["get"])
    def verify(self, request, pk=None):
        return Response(services.document_verify(self.get_object()))


class CreditScoreViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = s.CreditScoreSerializer
    permission_classes = [IsAuthenticated]
    lookup_field = "enterprise"

    def get_queryset(self):
        qs = selectors.credit_scores_visible_to(self.request.user).order_by("enterprise_id")
        grade = self.request.query_params.get("grade")
        return qs.filter(grade=grade) if grade else qs

    @action(detail=True, methods=["get"])
    def history(self, request, enterprise=None):
        score = self.get_object()
        changes = selectors.credit_changes_visible_to(request.user).filter(enterprise_id=score.enterprise_id)
        return Response(s.CreditChangeSerializer(changes.order_by("at", "id"), many=True).data)


class CreditEventViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = s.CreditEventSerializer
    permission_classes = [IsRegulatorOrReadOnly]

    def get_queryset(self):
        return selectors.credit_events_visible_to(self.request.user)

    def perform_create(self, serializer):
        from enterprises.models import Enterprise

        enterprise = serializer.validated_data["enterprise"]
        if not scoping.scope(Enterprise.objects.filter(pk=enterprise.pk), self.request.user).exists():
            raise NotFound(_("企业不存在或不在您的管辖范围内"))
        serializer.instance = services.credit_record_event(
            enterprise=enterprise,
            kind=serializer.validated_data["kind"],
            occurred_on=serializer.validated_data["occurred_on"],
            description=serializer.validated_data.get("description", ""),
            user=self.request.user,
        )
        services.credit_recompute(enterprise_ids=[enterprise.pk])


class ListingViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = s.ListingSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        return selectors.listings_visible_to(self.request.user).prefetch_related("repairs")

    def perform_create(self, serializer):
        from enterprises.models import Enterprise

        enterprise = serializer.validated_data["enterprise"]
        if not scoping.scope(Enterprise.objects.filter(pk=enterprise.pk), self.request.user).exists():
            raise NotFound(_("企业不存在或不在您的管辖范围内"))
        serializer.instance = services.listing_add(
            enterprise=enterprise, reason=serializer.validated_data["reason"], user=self.request.user
        )

    @action(detail=True, methods=["post"])
    def repair(self, request, pk=None):
        application = services.repair_apply(
            listing=self.get_object(), user=request.user, statement=request.data.get("statement", "")
        )
        return Response(s.RepairSerializer(application).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"], url_path=r"repairs/(?P<application_id>\d+)/decide")
    def decide(self, request, pk=None, application_id=None):
        application = get_object_or_404(RepairApplication, pk=application_id, listing=self.get_object())
        approve = str(request.data.get("approve", "")).lower() in {"1", "true", "yes"}
        application = services.repair_decide(
            application=application, user=request.user, approve=approve, note=request.data.get("note", "")
        )
        return Response(s.RepairSerializer(application).data)
