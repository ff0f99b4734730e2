from django.contrib import admin
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from alerts.models import (
    Alert,
    AlertComment,
    AlertEscalation,
    AlertResponse,
    AlertRule,
    AlertTransition,
    EnterpriseMode,
    FloodGroup,
    ThresholdSchedule,
)
from devices.choices import FAIL_SAFE_HIGH_QUANTITIES, OverRange
from regulator.scoping import scope


class ThresholdScheduleInline(admin.TabularInline):
    model = ThresholdSchedule
    extra = 0


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "quantity",
        "device",
        "channel",
        "high_high",
        "high",
        "low",
        "low_low",
        "deadband",
        "over_range_rule",
        "enabled",
    ]
    list_filter = ["quantity", "enabled"]
    search_fields = ["name", "device__name", "channel__tag"]
    raw_id_fields = ["device", "channel", "linkage_device"]
    readonly_fields = ["over_range_rule"]
    inlines = [ThresholdScheduleInline]

    @admin.display(description=_("超量程处理"))
    def over_range_rule(self, obj) -> str:
        """What a reading above the range does under this rule: the channel's setting for a channel
        rule, the quantity's default otherwise (a channel may override it)."""
        if obj is None or obj.pk is None:
            return gettext("可燃/有毒气体：超量程按最高级报警；其他监测量：仅报传感器故障(可在测点上设置)")
        if obj.channel_id:
            return obj.channel.get_over_range_rule_display()
        if not obj.quantity:
            return gettext("按各测点的监测量与设置")
        label = OverRange.ALARM.label if obj.quantity in FAIL_SAFE_HIGH_QUANTITIES else OverRange.FAULT.label
        return gettext("%(rule)s(监测量默认，可在测点上设置)") % {"rule": label}


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class TransitionInline(ReadOnlyInline):
    model = AlertTransition


class ResponseInline(ReadOnlyInline):
    model = AlertResponse


class EscalationInline(ReadOnlyInline):
    model = AlertEscalation


class CommentInline(ReadOnlyInline):
    model = AlertComment


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """Read-only: every lifecycle step goes through the services (the board, the API)."""

    list_display = ["id", "level", "state", "enterprise", "message", "raised_at", "tier", "false_alarm"]
    list_filter = ["level", "state", "kind", "tier"]
    search_fields = ["message", "enterprise__name"]
    date_hierarchy = "raised_at"
    inlines = [TransitionInline, ResponseInline, EscalationInline, CommentInline]

    def get_queryset(self, request):
        return scope(super().get_queryset(request).select_related("enterprise"), request.user, "enterprise__")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(EnterpriseMode)
class EnterpriseModeAdmin(admin.ModelAdmin):
    list_display = ["enterprise", "mode", "changed_at", "changed_by"]
    raw_id_fields = ["enterprise"]


@admin.register(FloodGroup)
class FloodGroupAdmin(admin.ModelAdmin):
    list_display = ["device", "started_at", "last_at", "count"]
