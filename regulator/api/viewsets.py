"""API base classes: every queryset is scoped before anything else touches it."""

from rest_framework import viewsets

from regulator import scoping


class ScopedViewSetMixin:
    """Subclasses set ``scope_prefix`` (path from the model to Enterprise; "" for Enterprise itself).

    Out-of-scope objects are simply absent, so detail views answer 404 for them.
    """

    scope_prefix: str = "enterprise__"

    def get_queryset(self):
        return scoping.scope(super().get_queryset(), self.request.user, self.scope_prefix)


class ScopedReadOnlyViewSet(ScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    pass


class ScopedModelViewSet(ScopedViewSetMixin, viewsets.ModelViewSet):
    pass
