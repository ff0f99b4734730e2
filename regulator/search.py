"""Substring search in Chinese text that PostgreSQL can plan for."""

from __future__ import annotations

from functools import reduce
from operator import or_

from django.db.models import Q


def text_q(value: str, *fields: str) -> Q:
    """Any of ``fields`` contains ``value``, ignoring case where there is case to ignore.

    Text with nothing to case-fold (Chinese, digits) is compared with a plain LIKE on the columns:
    their statistics tell PostgreSQL that "化工" matches a third of the enterprises. Django's
    icontains compares UPPER(column), an expression without statistics, estimated at one row; the
    plan then joined every match before taking the page (a registry search: 450 -> 77 ms over
    100,000 enterprises, bench/registry.py). Text with letters keeps icontains.
    """
    lookup = "contains" if value.upper() == value.lower() else "icontains"
    return reduce(or_, (Q(**{f"{field}__{lookup}": value}) for field in fields))
