"""Admin for devices, channels and ingest tokens, scoped like the registry (superusers see everything)."""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from devices import services
from devices.forms import ChannelInlineFormSet
from devices.models import Channel, CoilWriteCommand, Device, DeviceStatusChange, IngestToken
from regulator.scoping import scope


class ScopedAdmin(admin.ModelAdmin):
    scope_prefix = "enterprise__"

    def get_queryset(self, request):
        return scope(super().get_queryset(request), request.user, self.scope_prefix)


class ChannelInline(admin.TabularInline):
    model = Channel
    formset = ChannelInlineFormSet  # the RTU bus budget over all the channels edited at once
    extra = 0
    fields = [
        "tag",
        "name",
        "unit_id",
        "register_type",
        "address",
        "data_type",
        "scale",
        "offset",
        "quantity",
        "unit",
        "range_low",
        "range_high",
        "over_range",
        "deadband",
        "enabled",
    ]


@admin.register(Device)
class DeviceAdmin(ScopedAdmin):
    list_display = [
        "name",
        "enterprise",
        "protocol",
        "host",
        "port",
        "serial_port",
        "poll_period_ms",
        "enabled",
        "maintenance",
        "status",
        "last_seen",
        "achieved_rate_hz",
    ]
    list_filter = ["protocol", "status", "enabled", "maintenance"]
    search_fields = ["name", "enterprise__name", "host", "serial_port"]
    raw_id_fields = ["enterprise"]
    readonly_fields = [
        "status",
        "status_reason",
        "status_changed_at",
        "last_seen",
        "achieved_rate_hz",
        "overrun_count",
        "poller",
        "created_at",
        "updated_at",
    ]
    inlines = [ChannelInline]


@admin.register(Channel)
class ChannelAdmin(ScopedAdmin):
    scope_prefix = "device__enterprise__"
    list_display = [
        "tag",
        "name",
        "device",
        "unit_id",
        "register_type",
        "address",
        "data_type",
        "quantity",
        "unit",
        "enabled",
    ]
    list_filter = ["quantity", "over_range", "register_type", "data_type", "enabled"]
    search_fields = ["tag", "name", "device__name", "device__enterprise__name"]
    raw_id_fields = ["device"]


@admin.register(CoilWriteCommand)
class CoilWriteAdmin(ScopedAdmin):
    scope_prefix = "device__enterprise__"
    list_display = [
        "requested_at",
        "device",
        "unit_id",
        "address",
        "value",
        "status",
        "readback",
        "error",
        "requested_by",
    ]
    list_filter = ["status"]
    raw_id_fields = ["device", "requested_by"]

    def has_change_permission(self, request, obj=None):
        return False  # written by request_coil_write and the poller only

    def has_add_permission(self, request):
        return False


@admin.register(DeviceStatusChange)
class DeviceStatusChangeAdmin(ScopedAdmin):
    scope_prefix = "device__enterprise__"
    list_display = ["at", "device", "old", "new", "reason", "poller"]
    list_filter = ["new"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(IngestToken)
class IngestTokenAdmin(ScopedAdmin):
    list_display = ["name", "enterprise", "prefix", "created_at", "last_used_at", "revoked_at"]
    fields = ["enterprise", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    raw_id_fields = ["enterprise"]
    actions = ["revoke"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        token, raw = services.ingest_token_create(enterprise=obj.enterprise, name=obj.name, user=request.user)
        obj.pk = token.pk
        messages.warning(request, _("令牌只显示这一次，请立即复制：%(raw)s") % {"raw": raw})

    @admin.action(description=_("吊销所选令牌"))
    def revoke(self, request, queryset):
        for token in queryset:
            services.ingest_token_revoke(token=token, user=request.user)
