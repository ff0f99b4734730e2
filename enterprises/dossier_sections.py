"""The registry's own dossier sections: basic data, licences, major hazards, change timeline.

Each ``build(enterprise, user)`` issues a fixed number of queries whatever the number of rows
(the enterprise arrives with region, park and industry already joined).
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Prefetch
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from enterprises.dossier import DossierSection, register
from enterprises.models import EnterpriseChange, HazardousSubstance

TIMELINE_LIMIT = 50


def _label(model, name: str) -> str:
    return str(model._meta.get_field(name).verbose_name)


def _masked_field(enterprise, key: str, value, user) -> dict:
    """Sensitive values leave masked; users who may reveal get the audited reveal URL."""
    from django.urls import reverse

    from regulator.security.masking import Unavailable, can_reveal, mask_value

    field = type(enterprise)._meta.get_field(key)
    entry = {"key": key, "label": str(field.verbose_name), "value": mask_value(field, value)}
    if value and entry["value"] != value and can_reveal(user) and not isinstance(value, Unavailable):
        entry["reveal_url"] = reverse(
            "security:reveal",
            kwargs={"app_label": "enterprises", "model": "enterprise", "pk": enterprise.pk, "field": key},
        )
    return entry


SENSITIVE_BASIC_FIELDS = {"principal_phone", "safety_officer_phone", "safety_manager_phone"}


def build_basic(enterprise, user) -> dict:
    from regulator.security.masking import read_field

    e = enterprise
    fields = [
        ("uscc", e.uscc),
        ("name", e.name),
        ("former_names", "；".join(e.former_names or [])),
        ("legal_representative", e.legal_representative),
        ("principal_name", e.principal_name),
        ("principal_phone", read_field(e, "principal_phone") or ""),
        ("safety_officer_name", e.safety_officer_name),
        ("safety_officer_phone", read_field(e, "safety_officer_phone") or ""),
        ("safety_manager_name", e.safety_manager_name),
        ("safety_manager_phone", read_field(e, "safety_manager_phone") or ""),
        ("address", e.address),
        ("region", e.region.name),
        ("park", e.park.name if e.park_id else ""),
        ("industry", f"{e.industry.code} {e.industry.name}"),
        ("high_risk_sector", str(e.get_high_risk_sector_display()) if e.high_risk_sector else ""),
        ("scale", str(e.get_scale_display())),
        ("employees", e.employees),
        ("standardisation_level", str(e.get_standardisation_level_display())),
        ("is_key", bool(e.is_key)),
        ("operating_status", str(e.get_operating_status_display())),
        ("risk_grade", e.risk_grade),
    ]
    return {
        "fields": [
            _masked_field(e, k, v, user)
            if k in SENSITIVE_BASIC_FIELDS
            else {"key": k, "label": _label(type(e), k), "value": v}
            for k, v in fields
        ],
        "region_code": e.region.code,
        "industry_code": e.industry.code,
        "risk_grade_display": str(e.get_risk_grade_display()) if e.risk_grade else "",
        "coordinates": (
            {"longitude": float(e.longitude), "latitude": float(e.latitude)} if e.longitude is not None else None
        ),
    }


def build_licences(enterprise, user) -> dict:
    today = timezone.localdate()
    warning = settings.LICENCE_EXPIRY_WARNING_DAYS
    items = []
    for lic in enterprise.licences.order_by("expires_on", "id"):
        days_left = (lic.expires_on - today).days
        status = "expired" if days_left < 0 else "expiring" if days_left <= warning else "valid"
        items.append(
            {
                "id": lic.pk,
                "licence_type": lic.licence_type,
                "licence_type_display": str(lic.get_licence_type_display()),
                "number": lic.number,
                "scope": lic.scope,
                "issued_on": lic.issued_on.isoformat(),
                "expires_on": lic.expires_on.isoformat(),
                "days_left": days_left,
                "status": status,
                "expiring_soon": status == "expiring",
            }
        )
    return {
        "items": items,
        "warning_days": warning,
        "expiring_count": sum(1 for i in items if i["status"] == "expiring"),
        "expired_count": sum(1 for i in items if i["status"] == "expired"),
    }


def build_major_hazards(enterprise, user) -> dict:
    installations = enterprise.major_hazards.prefetch_related(
        Prefetch("substances", queryset=HazardousSubstance.objects.order_by("id"))
    ).order_by("grade", "name")
    items = []
    for inst in installations:
        items.append(
            {
                "id": inst.pk,
                "name": inst.name,
                "code": inst.code,
                "grade": inst.grade,
                "grade_display": str(inst.get_grade_display()),
                "r_value": str(inst.r_value),
                "alpha": str(inst.alpha),
                "people_within_500m": inst.people_within_500m,
                "custodians": {
                    "main": inst.custodian_main,
                    "technical": inst.custodian_technical,
                    "operational": inst.custodian_operational,
                },
                "substances": [
                    {
                        "name": s.name,
                        "cas_number": s.cas_number,
                        "substance_class": s.substance_class,
                        "actual_quantity": str(s.actual_quantity),
                        "critical_quantity": str(s.critical_quantity),
                        "beta": str(s.beta),
                    }
                    for s in inst.substances.all()
                ],
            }
        )
    return {"items": items, "count": len(items), "highest_grade": min((i["grade"] for i in items), default=None)}


def build_timeline(enterprise, user) -> dict:
    changes = EnterpriseChange.objects.filter(enterprise=enterprise).select_related("user")[:TIMELINE_LIMIT]
    return {
        "items": [
            {
                "at": c.at.isoformat(),
                "user": c.user.display_name if c.user_id else "",
                "source": c.source,
                "source_display": str(c.get_source_display()),
                "action": c.action,
                "summary": c.summary,
                "changes": c.changes,
            }
            for c in changes
        ],
        "limit": TIMELINE_LIMIT,
    }


RISK_HISTORY_LIMIT = 12


def build_risk(enterprise, user) -> dict:
    """The current risk profile with its reasons, and the latest assessments (two queries)."""
    from enterprises.choices import RiskGrade
    from enterprises.models import EnterpriseRisk, RiskAssessment
    from enterprises.risk.factors import feature_label

    profile = EnterpriseRisk.objects.select_related("model").filter(enterprise=enterprise).first()
    history = RiskAssessment.objects.filter(enterprise=enterprise).order_by("-assessed_at", "-id")[:RISK_HISTORY_LIMIT]
    items = [
        {
            "assessed_at": a.assessed_at.isoformat(),
            "grade": a.grade,
            "grade_display": str(RiskGrade(a.grade).label) if a.grade in RiskGrade.values else a.grade,
            "score": a.score,
            "method": a.method,
        }
        for a in history
    ]
    if profile is None:
        return {"assessed": False, "history": items}
    model = profile.model
    by_model = profile.method == "model"
    return {
        "assessed": True,
        "grade": profile.grade,
        "grade_display": str(profile.get_grade_display()),
        "score": round(profile.score, 1),
        "probability": round(profile.probability, 4) if profile.probability is not None else None,
        "method": profile.method,
        "method_display": (
            str(_("模型 v%(version)s") % {"version": model.version}) if by_model and model else str(_("规则"))
        ),
        "model_version": model.version if by_model and model else None,
        "assessed_at": profile.assessed_at.isoformat(),
        "assessed_at_display": timezone.localtime(profile.assessed_at).strftime("%Y-%m-%d %H:%M"),
        "contribution_unit": str(_("对数几率") if by_model else _("分")),
        "factors": [
            {
                "key": f.get("key"),
                "label": feature_label(f.get("key", "")),
                "value": f.get("value"),
                "contribution": f.get("contribution"),
                "direction": "up" if (f.get("contribution") or 0) > 0 else "down",
            }
            for f in profile.factors or []
        ],
        "history": items,
    }


def register_sections() -> None:
    register(
        DossierSection(
            key="basic", title=_("基本信息"), order=10, template="enterprises/dossier/basic.html", build=build_basic
        )
    )
    register(
        DossierSection(
            key="licences",
            title=_("证照许可"),
            order=20,
            template="enterprises/dossier/licences.html",
            build=build_licences,
        )
    )
    register(
        DossierSection(
            key="major_hazards",
            title=_("重大危险源"),
            order=25,
            template="enterprises/dossier/major_hazards.html",
            build=build_major_hazards,
        )
    )
    register(
        DossierSection(
            key="risk", title=_("风险画像"), order=15, template="enterprises/dossier/risk.html", build=build_risk
        )
    )
    register(
        DossierSection(
            key="timeline",
            title=_("档案变更记录"),
            order=900,
            template="enterprises/dossier/timeline.html",
            build=build_timeline,
        )
    )
