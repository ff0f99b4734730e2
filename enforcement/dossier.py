"""The "credit" section of the enterprise dossier: score, grade, history with reasons, listing."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from enterprises.dossier import DossierSection, register


def credit_summary(enterprise, user) -> dict:
    from enforcement.choices import CREDIT_BASE_SCORE, CreditGrade, ListingStatus
    from enforcement.models import CreditScore, CreditScoreChange, DishonestyListing, Inspection

    score = CreditScore.objects.filter(enterprise=enterprise).first()
    history = [
        {
            "at": change.at.isoformat(),
            "score": change.new_score,
            "grade": change.new_grade,
            "old_score": change.old_score,
            "reasons": [f"{i['rule']} {i['kind']} {i['points']:+d}" for i in change.added]
            + [f"{i['rule']} {i['kind']} 失效" for i in change.removed],
        }
        for change in CreditScoreChange.objects.filter(enterprise=enterprise).order_by("at", "id")
    ]
    listing = DishonestyListing.objects.filter(enterprise=enterprise, status=ListingStatus.LISTED).first()
    inspections = [
        {"date": i.date.isoformat(), "status": i.get_status_display(), "outcome": i.get_outcome_display(), "id": i.pk}
        for i in Inspection.objects.filter(enterprise=enterprise).order_by("-date", "-id")[:10]
    ]
    import json

    return {
        "history_json": json.dumps(history, ensure_ascii=False),
        "score": score.score if score else CREDIT_BASE_SCORE,
        "grade": score.grade if score else CreditGrade.B,
        "scored": score is not None,
        "basis": score.basis if score else [],
        "history": history,
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
            title=_("安全生产信用与执法检查"),
            order=60,
            template="enforcement/dossier_credit.html",
            build=credit_summary,
        )
    )
