"""Admin for enforcement: the pool, frequency table and credit rules are edited here; draws,
documents and scores are read-only (they change only through their services)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from enforcement import services
from enforcement.models import (
    ConflictOfInterest,
    CreditEvent,
    CreditRule,
    CreditScore,
    DishonestyListing,
    Document,
    Draw,
    FrequencyRule,
    Inspection,
    InspectionPlan,
    InspectorProfile,
    RepairApplication,
)
from regulator import scoping
from regulator.admin_scoping import ScopedAdminMixin


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ConflictInline(admin.TabularInline):
    model = ConflictOfInterest
    extra = 0
    autocomplete_fields = ["enterprise"]
    fields = ["enterprise", "reason", "declared_at"]


@admin.register(InspectorProfile)
class InspectorProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "certification_level", "certificate_number", "status"]
    list_filter = ["certification_level", "status"]
    search_fields = ["user__username", "user__full_name", "certificate_number"]
    filter_horizontal = ["specialties"]
    inlines = [ConflictInline]
    raw_id_fields = ["user"]

    def get_queryset(self, request):
        qs = super().get_queryset(request).select_related("user")
        if request.user.is_superuser:
            return qs
        return qs.filter(user__jurisdiction_id__in=scoping.jurisdiction_region_ids(request.user))


@admin.register(FrequencyRule)
class FrequencyRuleAdmin(admin.ModelAdmin):
    list_display = ["credit_grade", "risk", "min_per_year", "max_per_year"]
    list_editable = ["min_per_year", "max_per_year"]
    list_filter = ["credit_grade", "risk"]


@admin.register(CreditRule)
class CreditRuleAdmin(admin.ModelAdmin):
    list_display = ["code", "event_kind", "description", "points", "validity_days", "active"]
    list_editable = ["points", "validity_days", "active"]
    actions = ["recompute"]

    @admin.action(description=_("按当前规则重新计算全部信用分"))
    def recompute(self, request, queryset):
        summary = services.credit_recompute()
        self.message_user(request, f"{summary}", messages.SUCCESS)


@admin.register(InspectionPlan)
class InspectionPlanAdmin(ReadOnlyAdmin):
    list_display = ["name", "jurisdiction", "period_start", "period_end", "status"]
    list_filter = ["status"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(jurisdiction_id__in=scoping.jurisdiction_region_ids(request.user))


@admin.register(Draw)
class DrawAdmin(ReadOnlyAdmin):
    list_display = ["plan", "sequence", "status", "drawn_at", "selected_count", "result_hash"]
    exclude = ["snapshot", "result"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(plan__jurisdiction_id__in=scoping.jurisdiction_region_ids(request.user))


@admin.register(Inspection)
class InspectionAdmin(ScopedAdminMixin, ReadOnlyAdmin):
    list_display = ["enterprise", "date", "status", "outcome", "plan"]
    list_filter = ["status", "outcome"]
    search_fields = ["enterprise__name"]
    # The team has an explicit through model, so the admin form leaves it out: shown here instead.
    readonly_fields = ["team_members"]

    @admin.display(description=_("检查组"))
    def team_members(self, obj):
        return "、".join(str(user) for user in obj.team.order_by("pk"))


@admin.register(Document)
class DocumentAdmin(ScopedAdminMixin, ReadOnlyAdmin):
    scope_prefix = "inspection__enterprise__"
    list_display = ["number", "doc_type", "issued_at", "sha3"]
    list_filter = ["doc_type", "year"]
    search_fields = ["number"]
    # The stored file has no URL (MEDIA_URL is None: rendering it as a link was a 500): link the
    # permission-checking download view instead, which sends it with the download headers.
    exclude = ["pdf"]
    readonly_fields = ["pdf_download"]

    @admin.display(description=_("PDF"))
    def pdf_download(self, obj):
        if not obj.pdf:
            return "—"
        return format_html('<a href="{}">{}.pdf</a>', reverse("enforcement:document_pdf", args=[obj.pk]), obj.number)


@admin.register(CreditEvent)
class CreditEventAdmin(ScopedAdminMixin, ReadOnlyAdmin):
    list_display = ["enterprise", "kind", "occurred_on", "source_key"]
    list_filter = ["kind"]
    search_fields = ["enterprise__name", "source_key"]


@admin.register(CreditScore)
class CreditScoreAdmin(ScopedAdminMixin, ReadOnlyAdmin):
    list_display = ["enterprise", "score", "grade", "computed_at"]
    list_filter = ["grade"]
    search_fields = ["enterprise__name"]


@admin.register(DishonestyListing)
class DishonestyListingAdmin(ScopedAdminMixin, ReadOnlyAdmin):
    list_display = ["enterprise", "listed_on", "expires_on", "status"]
    list_filter = ["status"]


@admin.register(RepairApplication)
class RepairApplicationAdmin(ScopedAdminMixin, ReadOnlyAdmin):
    scope_prefix = "listing__enterprise__"
    list_display = ["listing", "applied_at", "status", "decided_at"]
    list_filter = ["status"]
