"""REST: alerts scoped to the user, each lifecycle step one action calling one service."""

from django.db.models import Q
from django.shortcuts import get_object_or_404
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action, api_view
from rest_framework.response import Response

from alerts import services
from alerts.api import serializers as s
from alerts.choices import OPEN_STATES, AlertKind, AlertLevel, AlertState
from alerts.models import Alert, AlertRule
from regulator import scoping
from regulator.api.viewsets import ScopedReadOnlyViewSet


class AlertFilter(filters.FilterSet):
    state = filters.MultipleChoiceFilter(choices=AlertState.choices)
    level = filters.MultipleChoiceFilter(choices=AlertLevel.choices)
    kind = filters.MultipleChoiceFilter(choices=AlertKind.choices)
    open = filters.BooleanFilter(method="filter_open", label="open")
    raised_after = filters.IsoDateTimeFilter(field_name="raised_at", lookup_expr="gte")
    raised_before = filters.IsoDateTimeFilter(field_name="raised_at", lookup_expr="lt")
    after_id = filters.NumberFilter(field_name="id", lookup_expr="gt")

    class Meta:
        model = Alert
        fields = ["enterprise", "device", "channel", "false_alarm", "flood_group"]

    def filter_open(self, queryset, name, value):
        return queryset.filter(state__in=OPEN_STATES) if value else queryset.exclude(state__in=OPEN_STATES)


class AlertViewSet(ScopedReadOnlyViewSet):
    queryset = Alert.objects.select_related("enterprise", "device", "channel", "flood_group")
    filterset_class = AlertFilter
    ordering_fields = ["id", "raised_at", "level"]
    ordering = ["-id"]

    def get_serializer_class(self):
        return s.AlertDetailSerializer if self.action != "list" else s.AlertSerializer

    def _done(self, alert):
        alert = self.get_queryset().get(pk=alert.pk)
        return Response(s.AlertDetailSerializer(alert).data)

    def _input(self, serializer_class):
        ser = serializer_class(data=self.request.data)
        ser.is_valid(raise_exception=True)
        return ser.validated_data

    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        data = self._input(s.CommentInput)
        return self._done(
            services.alert_acknowledge(alert=self.get_object(), user=request.user, comment=data["comment"])
        )

    @action(detail=True, methods=["post"], url_path="acknowledge-group")
    def acknowledge_group(self, request, pk=None):
        """Acknowledge the whole flood group this alert belongs to (or just the alert)."""
        data = self._input(s.CommentInput)
        alert = self.get_object()
        count = services.alerts_acknowledge_group(alert=alert, user=request.user, comment=data["comment"])
        body = s.AlertDetailSerializer(self.get_queryset().get(pk=alert.pk)).data
        body["acknowledged_count"] = count
        return Response(body)

    @action(detail=True, methods=["post"])
    def shelve(self, request, pk=None):
        data = self._input(s.ShelveInput)
        alert = services.alert_shelve(
            alert=self.get_object(), user=request.user, reason=data["reason"], until=data["until"]
        )
        return self._done(alert)

    @action(detail=True, methods=["post"])
    def unshelve(self, request, pk=None):
        data = self._input(s.CommentInput)
        return self._done(services.alert_unshelve(alert=self.get_object(), user=request.user, comment=data["comment"]))

    @action(detail=True, methods=["post"], url_path="remove-from-service")
    def remove_from_service(self, request, pk=None):
        data = self._input(s.ReasonInput)
        alert = services.alert_remove_from_service(alert=self.get_object(), user=request.user, reason=data["reason"])
        return self._done(alert)

    @action(detail=True, methods=["post"], url_path="return-to-service")
    def return_to_service(self, request, pk=None):
        data = self._input(s.CommentInput)
        alert = services.alert_return_to_service(alert=self.get_object(), user=request.user, comment=data["comment"])
        return self._done(alert)

    @action(detail=True, methods=["post"])
    def comment(self, request, pk=None):
        data = self._input(s.TextInput)
        alert = self.get_object()
        services.alert_comment(alert=alert, user=request.user, text=data["text"])
        return self._done(alert)

    @action(detail=True, methods=["post"])
    def respond(self, request, pk=None):
        data = self._input(s.ResponseInput)
        alert = self.get_object()
        services.alert_record_response(
            alert=alert, user=request.user, kind=data["kind"], at=data.get("at"), note=data["note"]
        )
        return self._done(alert)

    @action(detail=True, methods=["post"])
    def review(self, request, pk=None):
        data = self._input(s.ReviewInput)
        alert = services.alert_review(
            alert=self.get_object(), user=request.user, false_alarm=data["false_alarm"], note=data["note"]
        )
        return self._done(alert)


class AlertRuleViewSet(viewsets.ModelViewSet):
    """Rules that apply to what the user may see: the quantity defaults and those of visible devices.
    Writes go through services.alert_rule_save (who may edit which rule is decided there)."""

    serializer_class = s.AlertRuleSerializer
    filterset_fields = ["quantity", "device", "channel", "enabled"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return AlertRule.objects.none()
        user = self.request.user
        qs = AlertRule.objects.select_related("device", "channel__device").prefetch_related("schedules")
        q = scoping.enterprise_scope_q(user, prefix="device__enterprise__")
        if q is None:
            return qs
        if user.is_mlps_admin:
            return qs.none()
        by_channel = scoping.enterprise_scope_q(user, prefix="channel__device__enterprise__")
        return qs.filter(Q(device__isnull=True, channel__isnull=True) | q | by_channel)

    def perform_create(self, serializer):
        serializer.instance = services.alert_rule_save(
            rule=AlertRule(), user=self.request.user, fields=dict(serializer.validated_data)
        )

    def perform_update(self, serializer):
        serializer.instance = services.alert_rule_save(
            rule=serializer.instance, user=self.request.user, fields=dict(serializer.validated_data)
        )

    def perform_destroy(self, instance):
        services.alert_rule_delete(rule=instance, user=self.request.user)


class OperatingModeSerializer(serializers.Serializer):
    enterprise = serializers.IntegerField(read_only=True)
    mode = serializers.ChoiceField(choices=["normal", "startup", "shutdown", "overhaul"])
    changed_at = serializers.DateTimeField(read_only=True, allow_null=True)


@extend_schema(request=OperatingModeSerializer, responses=OperatingModeSerializer)
@api_view(["GET", "PUT"])
def operating_mode(request, enterprise_id: int):
    """GET or PUT {"mode": "normal|startup|shutdown|overhaul"} for one enterprise in scope."""
    from alerts.models import EnterpriseMode
    from enterprises.models import Enterprise

    enterprise = get_object_or_404(scoping.scope(Enterprise.objects.all(), request.user), pk=enterprise_id)
    if request.method == "PUT":
        mode = services.enterprise_set_operating_mode(
            enterprise=enterprise, user=request.user, mode=str(request.data.get("mode", ""))
        )
    else:
        mode = EnterpriseMode.objects.filter(enterprise=enterprise).first()
    return Response(
        {
            "enterprise": enterprise.pk,
            "mode": mode.mode if mode else "normal",
            "changed_at": mode.changed_at if mode else None,
        }
    )
