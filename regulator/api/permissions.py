from rest_framework.permissions import SAFE_METHODS, BasePermission


class IsRegulatorOrReadOnly(BasePermission):
    """Reads for everyone in scope; writes for regulator staff (scope is applied by the queryset)."""

    def has_permission(self, request, view):
        user = request.user
        if not user or not user.is_authenticated:
            return False
        if request.method in SAFE_METHODS:
            return True
        return user.is_superuser or user.is_regulator
