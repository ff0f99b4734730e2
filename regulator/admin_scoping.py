"""Scope Django admin pages with the same rule as every other door (regulator.scoping).

    @admin.register(Hazard)
    class HazardAdmin(ScopedAdminMixin, admin.ModelAdmin):
        scope_prefix = "enterprise__"   # "" for Enterprise itself

Out-of-scope objects are absent from change lists and answer 404 (not a redirect) on their change,
delete and history pages; foreign-key choices to enterprises are limited to the user's scope.
"""

from __future__ import annotations

from django.http import Http404

from regulator import scoping


class ScopedAdminMixin:
    scope_prefix: str = "enterprise__"

    def get_queryset(self, request):
        return scoping.scope(super().get_queryset(request), request.user, self.scope_prefix)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("not found or out of scope")
        return obj

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        from enterprises.models import Enterprise

        if db_field.related_model is Enterprise:
            kwargs.setdefault("queryset", scoping.scope(Enterprise.objects.all(), request.user))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_search_results(self, request, queryset, search_term):
        # Autocomplete widgets of other admins query this one: keep them scoped too.
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        return scoping.scope(queryset, request.user, self.scope_prefix), may_have_duplicates
