"""Pagination whose total stops counting at a cap: an exact COUNT over a million joined rows costs
more than the page itself, and nobody pages through more than a thousand hazards (they filter)."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.utils.functional import cached_property
from rest_framework.response import Response

from regulator.api.pagination import StandardPagination

COUNT_CAP = 1_000


class CappedPaginator(Paginator):
    cap = COUNT_CAP

    @cached_property
    def count(self) -> int:
        # Without ORDER BY the database may stop at any cap+1 matching rows.
        return self.object_list.order_by()[: self.cap + 1].count()

    @property
    def capped(self) -> bool:
        return self.count > self.cap


class CappedPagination(StandardPagination):
    django_paginator_class = CappedPaginator

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        response.data["count_capped"] = self.page.paginator.capped
        return Response(response.data)

    def get_paginated_response_schema(self, schema):
        schema = super().get_paginated_response_schema(schema)
        schema["properties"]["count_capped"] = {"type": "boolean"}
        return schema
