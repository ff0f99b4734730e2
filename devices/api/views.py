"""Devices API: scoped CRUD for devices and channels, trend data, and the HTTP ingest endpoint."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from devices import selectors, services
from devices.api.serializers import ChannelSerializer, CoilWriteSerializer, DeviceSerializer, IngestItemHelp
from devices.api.throttling import IngestTokenRateThrottle
from devices.models import Channel, Device
from regulator.api.permissions import IsRegulatorOrReadOnly
from regulator.api.viewsets import ScopedModelViewSet


class DeviceViewSet(ScopedModelViewSet):
    # Channels prefetched: the serializer shows each RTU bus's wire budget (one query per page).
    queryset = (
        Device.objects.select_related("enterprise").prefetch_related("channels").order_by("enterprise_id", "name", "id")
    )
    serializer_class = DeviceSerializer
    permission_classes = [IsRegulatorOrReadOnly]
    scope_prefix = "enterprise__"
    filterset_fields = ["enterprise", "status", "protocol", "enabled", "maintenance"]
    ordering_fields = ["name", "status", "last_seen"]

    def perform_create(self, serializer):
        serializer.instance = services.device_create(user=self.request.user, fields=dict(serializer.validated_data))

    def perform_update(self, serializer):
        serializer.instance = services.device_update(
            device=serializer.instance, user=self.request.user, fields=dict(serializer.validated_data)
        )

    def perform_destroy(self, instance):
        services.device_delete(device=instance, user=self.request.user)

    @action(detail=True, methods=["post"])
    def maintenance(self, request, pk=None):
        """Switch maintenance mode (pauses acquisition and so alarms), with a reason; audited."""
        device = self.get_object()
        on = request.data.get("maintenance")
        if not isinstance(on, bool):
            return Response({"detail": _("maintenance 应为 true 或 false")}, status=status.HTTP_400_BAD_REQUEST)
        device = services.device_set_maintenance(
            device=device, maintenance=on, user=request.user, reason=str(request.data.get("reason", ""))[:200]
        )
        return Response(self.get_serializer(device).data)

    @action(detail=True, methods=["get"], url_path="coil-writes")
    def coil_writes(self, request, pk=None):
        device = self.get_object()
        return Response(CoilWriteSerializer(device.coil_writes.all()[:100], many=True).data)


class ChannelViewSet(ScopedModelViewSet):
    queryset = Channel.objects.select_related("device").order_by("device_id", "tag", "id")
    serializer_class = ChannelSerializer
    permission_classes = [IsRegulatorOrReadOnly]
    scope_prefix = "device__enterprise__"
    filterset_fields = ["device", "quantity", "enabled", "device__enterprise"]
    ordering_fields = ["tag", "name"]

    def perform_create(self, serializer):
        serializer.instance = services.channel_create(user=self.request.user, fields=dict(serializer.validated_data))

    def perform_update(self, serializer):
        serializer.instance = services.channel_update(
            channel=serializer.instance, user=self.request.user, fields=dict(serializer.validated_data)
        )

    def perform_destroy(self, instance):
        services.channel_delete(channel=instance, user=self.request.user)

    @action(detail=True, methods=["get"])
    def trend(self, request, pk=None):
        channel = self.get_object()
        range_name = request.query_params.get("range", "hour")
        try:
            return Response(selectors.channel_trend(channel, range_name))
        except ValueError:
            return Response({"detail": _("range 只能是 hour、day 或 month")}, status=status.HTTP_400_BAD_REQUEST)


class ReadingIngestView(APIView):
    """POST /api/v1/readings/ with ``Authorization: Bearer <enterprise ingest token>``.

    Body: ``{"readings": [{"channel": 12 | "tag": "GT-101", "time": "2026-01-01T08:00:00+08:00",
    "value": 3.2, "quality": "good"}, ...]}``. Answers 200 with one result per item
    (created / duplicate / error with a ``code``); re-posting the same batch creates nothing.
    A token writes only enabled channels of its enterprise's HTTP-push devices (``not_http_device``,
    ``unknown_channel``, ``device_disabled``, ``channel_disabled`` otherwise); a time further than
    ``DEVICES_INGEST_MAX_CLOCK_SKEW_SECONDS`` from the receive time is stored at the receive time
    with quality ``clock_skew`` (``"clock_skew": true`` in its result).
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [IngestTokenRateThrottle]

    @extend_schema(request=IngestItemHelp(many=True), responses={200: dict})
    def post(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        raw = (
            header[7:].strip() if header.lower().startswith("bearer ") else request.META.get("HTTP_X_INGEST_TOKEN", "")
        )
        token = services.ingest_token_authenticate(raw)
        if token is None:
            return Response({"detail": _("接入令牌无效或已吊销")}, status=status.HTTP_401_UNAUTHORIZED)
        items = request.data.get("readings") if isinstance(request.data, dict) else request.data
        result = services.ingest_readings(enterprise=token.enterprise, items=items, source=f"http:{token.prefix}")
        return Response(result)
