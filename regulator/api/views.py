from django.db.models import Q
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import api_view
from rest_framework.response import Response

from regulator import scoping
from regulator.api.serializers import MeSerializer, ParkSerializer, RegionSerializer
from regulator.models import Park, Region


class RegionViewSet(viewsets.ReadOnlyModelViewSet):
    """Regions a user may browse: their jurisdiction subtree (and its ancestors, for context)."""

    serializer_class = RegionSerializer
    filterset_fields = {"level": ["exact"], "parent": ["exact"], "code": ["exact", "startswith"]}
    search_fields = ["name", "code"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Region.objects.none()
        qs = Region.objects.all()
        ids = scoping.region_scope_ids(self.request.user)
        return qs if ids is None else qs.filter(id__in=ids)


class ParkViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ParkSerializer
    filterset_fields = ["region", "kind"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Park.objects.none()
        user = self.request.user
        qs = Park.objects.select_related("region")
        ids = scoping.region_scope_ids(user)
        if ids is None:
            return qs
        if user.is_park_manager:
            return qs.filter(pk=user.park_id)
        return qs.filter(Q(region_id__in=ids))


@extend_schema(responses=MeSerializer)
@api_view(["GET"])
def me(request):
    return Response(MeSerializer(request.user).data)
