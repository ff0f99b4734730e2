"""Admin for the registry, scoped like every other door; enterprise writes go through the services."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from enterprises import services
from enterprises.models import (
    Enterprise,
    EnterpriseChange,
    HazardousSubstance,
    Industry,
    Licence,
    MajorHazardInstallation,
    RegionBoundary,
    RiskModel,
)
from regulator.admin_masking import MaskedAdminMixin
from regulator.admin_scoping import ScopedAdminMixin

ADMIN = EnterpriseChange.Source.ADMIN


@admin.register(Industry)
class IndustryAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "level", "section", "high_risk_sector", "parent"]
    list_filter = ["level", "section", "high_risk_sector"]
    search_fields = ["code", "name"]
    raw_id_fields = ["parent"]
    ordering = ["section", "code"]


class LicenceInline(admin.TabularInline):
    model = Licence
    extra = 0
    fields = ["licence_type", "number", "scope", "issued_on", "expires_on"]


class InstallationInline(admin.TabularInline):
    model = MajorHazardInstallation
    extra = 0
    fields = ["name", "code", "people_within_500m", "r_value", "grade"]
    readonly_fields = ["r_value", "grade"]
    show_change_link = True


class ChangeInline(admin.TabularInline):
    model = EnterpriseChange
    extra = 0
    fields = ["at", "source", "user", "action", "summary"]
    readonly_fields = fields
    can_delete = False
    ordering = ["-at"]
    max_num = 0


@admin.register(Enterprise)
class EnterpriseAdmin(MaskedAdminMixin, ScopedAdminMixin, admin.ModelAdmin):
    scope_prefix = ""
    list_display = ["name", "uscc", "region", "park", "industry", "high_risk_sector", "is_key", "risk_grade"]
    list_filter = ["is_key", "high_risk_sector", "risk_grade", "operating_status", "scale", "industry__section"]
    search_fields = ["name", "uscc", "former_names_text"]
    list_select_related = ["region", "park", "industry"]
    raw_id_fields = ["region", "park", "industry"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [LicenceInline, InstallationInline, ChangeInline]
    show_full_result_count = False

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in services.ENTERPRISE_FIELDS if name in form.cleaned_data}
        saved = (
            services.enterprise_update(enterprise=obj, user=request.user, data=data, source=ADMIN)
            if change
            else services.enterprise_create(user=request.user, data=data, source=ADMIN)
        )
        obj.pk = saved.pk
        obj.refresh_from_db()

    def save_formset(self, request, form, formset, change):
        if formset.model is not Licence:
            return super().save_formset(request, form, formset, change)
        # Licences go through their services so the dossier timeline records them.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for inline_form in formset.forms:
            if not inline_form.has_changed() and inline_form.instance.pk is None:
                continue
            data = {k: inline_form.cleaned_data.get(k) for k in services.LICENCE_FIELDS}
            instance = inline_form.instance
            try:
                if inline_form in formset.deleted_forms:
                    if instance.pk:
                        services.licence_delete(licence=instance, user=request.user, source=ADMIN)
                        formset.deleted_objects.append(instance)
                elif instance.pk:
                    if inline_form.has_changed():
                        saved = services.licence_update(licence=instance, user=request.user, data=data, source=ADMIN)
                        formset.changed_objects.append((saved, inline_form.changed_data))
                else:
                    saved = services.licence_create(
                        enterprise=form.instance, user=request.user, data=data, source=ADMIN
                    )
                    formset.new_objects.append(saved)
            except ValidationError as exc:
                messages.error(request, "；".join(exc.messages))


class SubstanceInline(admin.TabularInline):
    model = HazardousSubstance
    extra = 1
    fields = ["name", "cas_number", "substance_class", "actual_quantity", "critical_quantity", "beta"]


@admin.register(MajorHazardInstallation)
class MajorHazardInstallationAdmin(MaskedAdminMixin, ScopedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "enterprise", "grade", "r_value", "people_within_500m", "custodian_main"]
    list_filter = ["grade"]
    search_fields = ["name", "code", "enterprise__name", "enterprise__uscc"]
    list_select_related = ["enterprise"]
    raw_id_fields = ["enterprise"]
    readonly_fields = ["r_value", "grade"]
    inlines = [SubstanceInline]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # R and the grade follow the substances whatever door changed them.
        services.installation_recompute(form.instance)
        EnterpriseChange.objects.create(
            enterprise=form.instance.enterprise,
            user=request.user,
            source=ADMIN,
            action="hazard_updated",
            summary=_("后台修改重大危险源 %(n)s：%(g)s，R=%(r)s")
            % {"n": form.instance.name, "g": form.instance.get_grade_display(), "r": form.instance.r_value},
        )


@admin.register(Licence)
class LicenceAdmin(ScopedAdminMixin, admin.ModelAdmin):
    list_display = ["number", "licence_type", "enterprise", "issued_on", "expires_on"]
    list_filter = ["licence_type", "expires_on"]
    search_fields = ["number", "enterprise__name", "enterprise__uscc"]
    list_select_related = ["enterprise"]
    raw_id_fields = ["enterprise"]
    date_hierarchy = "expires_on"


@admin.register(HazardousSubstance)
class HazardousSubstanceAdmin(ScopedAdminMixin, admin.ModelAdmin):
    scope_prefix = "installation__enterprise__"
    list_display = [
        "name",
        "cas_number",
        "substance_class",
        "actual_quantity",
        "critical_quantity",
        "beta",
        "installation",
    ]
    list_filter = ["substance_class"]
    search_fields = ["name", "cas_number", "installation__name"]
    list_select_related = ["installation"]
    raw_id_fields = ["installation"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        services.installation_recompute(obj.installation)

    def delete_model(self, request, obj):
        installation = obj.installation
        super().delete_model(request, obj)
        services.installation_recompute(installation)


@admin.register(EnterpriseChange)
class EnterpriseChangeAdmin(ScopedAdminMixin, admin.ModelAdmin):
    """The timeline is history: read-only."""

    list_display = ["at", "enterprise", "source", "user", "action", "summary"]
    list_filter = ["source", "action"]
    search_fields = ["enterprise__name", "enterprise__uscc", "summary"]
    list_select_related = ["enterprise", "user"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(RiskModel)
class RiskModelAdmin(admin.ModelAdmin):
    """Read-only: models come from ``train_risk_model``; the only write is activating one."""

    list_display = [
        "version",
        "algorithm",
        "created_at",
        "is_active",
        "auc",
        "rules_auc",
        "n_train",
        "n_test",
        "positives",
    ]
    list_filter = ["is_active", "algorithm"]
    exclude = ["blob"]
    readonly_fields = [
        "version",
        "created_at",
        "algorithm",
        "feature_names",
        "metrics",
        "train_start",
        "train_end",
        "test_start",
        "test_end",
        "n_train",
        "n_test",
        "positives",
        "digest",
        "is_active",
        "activated_at",
        "note",
    ]
    actions = ["activate"]

    @admin.display(description=_("AUC"))
    def auc(self, obj):
        value = (obj.metrics or {}).get("auc")
        return f"{value:.3f}" if value is not None else "—"

    @admin.display(description=_("规则 AUC"))
    def rules_auc(self, obj):
        value = ((obj.metrics or {}).get("rules") or {}).get("auc")
        return f"{value:.3f}" if value is not None else "—"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description=_("启用所选模型（仅限一个）"), permissions=["view"])
    def activate(self, request, queryset):
        from enterprises.risk.training import RiskModelIntegrityError, activate_model, load_pipeline

        if queryset.count() != 1:
            self.message_user(request, _("请只选择一个模型"), messages.ERROR)
            return
        model = queryset.get()
        try:
            load_pipeline(model)  # never activate a blob whose digest does not verify
        except RiskModelIntegrityError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        if not request.user.has_perm("enterprises.change_riskmodel"):
            self.message_user(request, _("没有启用风险模型的权限"), messages.ERROR)
            return
        activate_model(model)
        self.message_user(request, _("模型 v%(version)s 已启用") % {"version": model.version}, messages.SUCCESS)


@admin.register(RegionBoundary)
class RegionBoundaryAdmin(admin.ModelAdmin):
    """Outlines for the risk map. They are loaded (and replaced) by ``manage.py load_boundaries``,
    which validates the GeoJSON; the admin lists them and can remove one, it does not edit shapes."""

    list_display = ["region", "source", "loaded_at", "min_lon", "min_lat", "max_lon", "max_lat"]
    search_fields = ["region__code", "region__name", "source"]
    list_select_related = ["region"]
    readonly_fields = ["region", "geometry", "min_lon", "min_lat", "max_lon", "max_lat", "source", "loaded_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
