"""The "credit" section of the enterprise dossier: score, grade, history with reasons, listing."""

from __future__ import annotations

import json

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from enterprises.dossier import DossierSection, register

STANDARDISATION_NAMES = {"1": _lazy("一级"), "2": _lazy("二级"), "3": _lazy("三级")}


def describe(item: dict, rules: dict[str, str]) -> str:
    """One contribution to the score in words: which rule, which event, how many points."""
    from enforcement.choices import CreditEventKind

    points = item.get("points", 0)
    if item.get("rule") == "STD":
        level = item.get("kind", "").rsplit("_", 1)[-1]
        text = _("安全生产标准化%(level)s") % {"level": STANDARDISATION_NAMES.get(level, level)}
    elif item.get("rule") == "LIST":
        return _("列入严重失信名单（信用等级定为D）")
    else:
        label = CreditEventKind(item["kind"]).label if item.get("kind") in CreditEventKind.values else item.get("kind")
        text = f"{rules.get(item.get('rule'), label)}（{item.get('rule')}，{item.get('date', '')}）"
    return f"{text} {points:+d}"


def credit_summary(enterprise, user) -> dict:
    from enforcement.choices import CREDIT_BASE_SCORE, CreditGrade, ListingStatus
    from enforcement.models import CreditRule, CreditScore, CreditScoreChange, DishonestyListing, Inspection

    rules = dict(CreditRule.objects.values_list("code", "description"))
    score = CreditScore.objects.filter(enterprise=enterprise).first()
    history = [
        {
            "at": timezone.localtime(change.at).isoformat(),
            "score": change.new_score,
            "grade": change.new_grade,
            "old_score": change.old_score,
            "reasons": [describe(i, rules) for i in change.added]
            + [_("%(what)s 已失效") % {"what": describe(i, rules)} for i in change.removed],
        }
        for change in CreditScoreChange.objects.filter(enterprise=enterprise).order_by("at", "id")
    ]
    listing = DishonestyListing.objects.filter(enterprise=enterprise, status=ListingStatus.LISTED).first()
    inspections = [
        {"date": i.date.isoformat(), "status": i.get_status_display(), "outcome": i.get_outcome_display(), "id": i.pk}
        for i in Inspection.objects.filter(enterprise=enterprise).order_by("-date", "-id")[:10]
    ]
    basis = score.basis if score else []
    return {
        "score": score.score if score else CREDIT_BASE_SCORE,
        "grade": score.grade if score else CreditGrade.B,
        "scored": score is not None,
        "basis": basis,
        "basis_text": [describe(i, rules) for i in basis],
        "history": history,
        "history_json": json.dumps(history, ensure_ascii=False),
        "listed": {
            "reason": listing.reason,
            "listed_on": listing.listed_on.isoformat(),
            "expires_on": listing.expires_on.isoformat(),
        }
        if listing
        else None,
        "inspections": inspections,
    }


def register_sections() -> None:
    register(
        DossierSection(
            key="credit",
            title=_lazy("安全生产信用与执法检查"),
            order=60,
            template="enforcement/dossier_credit.html",
            build=credit_summary,
        )
    )
