"""Demo data of enforcement: the inspector pool, 18 months of past inspections (outcomes driven by
each enterprise's latent risk propensity), a drawn plan with completed inspections and documents,
credit events, 18 months of credit history, one listed enterprise.

Deterministic: randomness from ``ctx.rng`` only, dates from ``ctx.now``; the draw's seed comes from
``ctx.rng`` too (production draws use ``secrets``).
"""

from __future__ import annotations

import math
import uuid
from datetime import timedelta

from django.utils import timezone

from enforcement import services
from enforcement.choices import CertificationLevel, CreditEventKind, DocumentType, InspectionStatus, Outcome
from enforcement.models import (
    ConflictOfInterest,
    CreditEvent,
    Document,
    Inspection,
    InspectionFinding,
    InspectionPlan,
    InspectorProfile,
)
from enterprises.risk.demo import HISTORY_DAYS, intensity, poisson

LEVELS = [
    CertificationLevel.SENIOR,
    CertificationLevel.JUNIOR,
    CertificationLevel.INTERMEDIATE,
    CertificationLevel.JUNIOR,
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂"
CONFLICT_REASONS = [
    "配偶在该企业任安全总监",
    "近三年曾在该企业任职",
    "直系亲属持有该企业股份",
    "曾为该企业提供安全评价服务",
]
FINDINGS = [
    ("可燃气体检测报警器未定期检定", "罐区"),
    ("动火作业未办理作业票", "二号车间"),
    ("安全出口被货物堵塞", "成品仓库"),
    ("特种作业人员未持证上岗", "锅炉房"),
    ("应急预案未按规定演练", "办公楼"),
    ("防爆区域使用非防爆电器", "装置区"),
]


def _uid(rng) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _extra_inspectors(ctx, county, prefix: str, count: int):
    from regulator.choices import Role
    from regulator.models import User

    users = []
    for n in range(3, 3 + count):
        username = f"{prefix}_inspector{n}"
        user = User.objects.filter(username=username).first()
        if user is None:
            name = ctx.rng.choice(SURNAMES) + ctx.rng.choice(GIVEN) + ctx.rng.choice(GIVEN)
            user = User(username=username, role=Role.INSPECTOR, jurisdiction=county, full_name=name, uid=_uid(ctx.rng))
            user.set_unusable_password()  # pool members only; the demo logins are the first two per county
            user.save()
        users.append(user)
    return users


def seed(ctx) -> None:
    from enterprises.models import Enterprise, Industry

    rng = ctx.rng
    today = timezone.localtime(ctx.now).date()
    counties = ctx.shared.get("counties") or []
    if not counties:
        ctx.log("enforcement: no counties from the enterprises seeder; nothing to do")
        return
    all_inspectors = ctx.shared.get("inspectors", [])
    heads = ctx.shared.get("section_heads", [])

    # --- inspector pool ------------------------------------------------------------------------
    pools = {}
    for county in counties:
        own = [u for u in all_inspectors if u.jurisdiction_id == county.pk]
        prefix = own[0].username.split("_")[0] if own else county.code
        members = own + _extra_inspectors(ctx, county, prefix, 6)
        used = Industry.objects.filter(enterprises__region__path__startswith=county.path).values("parent__parent__code")
        divisions = list(Industry.objects.filter(level=2, code__in=used).order_by("code"))
        profiles = []
        for i, user in enumerate(members):
            profile, _ = InspectorProfile.objects.get_or_create(
                user=user,
                defaults={
                    "certification_level": LEVELS[i % len(LEVELS)],
                    "certificate_number": f"{county.code[:4]}{rng.randrange(100000, 999999)}",
                },
            )
            profiles.append(profile)
        # every division present in the county is covered by three inspectors (rotating), so a
        # specialist can always be found; seniors also cover the whole manufacturing section.
        offset = rng.randrange(len(profiles))
        for k, division in enumerate(divisions):
            for j in range(3):
                profiles[(offset + k * 3 + j) % len(profiles)].specialties.add(division)
        for profile in profiles:
            if profile.certification_level == CertificationLevel.SENIOR:
                profile.specialties.add(*Industry.objects.filter(level=1, code="C"))
        pools[county.pk] = profiles
        enterprises = list(Enterprise.objects.filter(region__path__startswith=county.path).order_by("id"))
        for profile in rng.sample(profiles, 2):
            if enterprises:
                ConflictOfInterest.objects.get_or_create(
                    inspector=profile,
                    enterprise=rng.choice(enterprises),
                    defaults={"reason": rng.choice(CONFLICT_REASONS), "declared_at": ctx.now - timedelta(days=200)},
                )

    # --- 18 months of past inspections in every county (so not everyone is due) -------------------
    county = counties[0]
    history_events = []
    for county_obj in counties:
        enterprises = list(Enterprise.objects.filter(region__path__startswith=county_obj.path).order_by("id"))
        profiles = pools[county_obj.pk]
        for ent in enterprises:
            # Risk-based targeting: the registered grade, and more visits where trouble shows.
            visits = {"red": 6, "orange": 2, "blue": 0}.get(ent.risk_grade, 1)
            visits += poisson(rng, 1.5 * intensity(ctx, ent.pk, HISTORY_DAYS // 2))
            for _ in range(visits):
                days_ago = rng.randrange(1, HISTORY_DAYS)
                day = today - timedelta(days=days_ago)
                # Outcomes follow the enterprise's latent propensity on that day (enterprises/risk/demo.py).
                k = intensity(ctx, ent.pk, days_ago)
                outcome = rng.choices(
                    [Outcome.NO_PROBLEM, Outcome.RECTIFICATION, Outcome.PENALTY, Outcome.SUSPENSION],
                    [55, 30 * math.sqrt(k), 5 * k, 1.2 * k],
                )[0]
                seniors = [p for p in profiles if p.certification_level != CertificationLevel.JUNIOR]
                lead = rng.choice(seniors)
                other = rng.choice([p for p in profiles if p is not lead])
                ins = Inspection.objects.create(
                    enterprise=ent,
                    date=day,
                    status=InspectionStatus.COMPLETED,
                    outcome=outcome,
                    leader=lead.user,
                    public_summary=str(Outcome(outcome).label),
                    completed_at=ctx.now - timedelta(days=(today - day).days),
                    rectification_deadline=day + timedelta(days=30) if outcome != Outcome.NO_PROBLEM else None,
                    penalty_amount=rng.choice([10000, 20000, 30000, 50000]) if outcome == Outcome.PENALTY else None,
                    uid=_uid(rng),
                )
                ins.team.set([lead.user, other.user])
                if outcome != Outcome.NO_PROBLEM:
                    text, where = rng.choice(FINDINGS)
                    InspectionFinding.objects.create(inspection=ins, description=text, location=where)
                kind = {
                    Outcome.NO_PROBLEM: CreditEventKind.INSPECTION_CLEAN,
                    Outcome.PENALTY: CreditEventKind.PENALTY,
                    Outcome.SUSPENSION: CreditEventKind.SUSPENSION,
                }.get(outcome)
                if kind:
                    history_events.append(
                        CreditEvent(
                            enterprise=ent,
                            kind=kind,
                            occurred_on=day,
                            description=f"执法检查：{Outcome(outcome).label}",
                            source_key=f"inspection:{ins.pk}",
                        )
                    )
        # accidents and monitoring anomalies, rare
        for ent in enterprises:
            days_ago = rng.randrange(10, HISTORY_DAYS)
            k = intensity(ctx, ent.pk, days_ago)
            roll = rng.random() / k
            kind = None
            if roll < 0.02:
                kind = CreditEventKind.ACCIDENT_GENERAL
            elif roll < 0.025:
                kind = CreditEventKind.ACCIDENT_LARGER
            elif roll < 0.06:
                kind = CreditEventKind.MONITORING_ANOMALY
            if kind:
                history_events.append(
                    CreditEvent(
                        enterprise=ent,
                        kind=kind,
                        occurred_on=today - timedelta(days=days_ago),
                        description=str(kind.label),
                        source_key=f"demo:{kind}:{ent.pk}",
                    )
                )
    CreditEvent.objects.bulk_create(history_events)

    # --- credit history: month by month over the demo history ---------------------------------
    for months_back in range(HISTORY_DAYS // 30, 0, -1):
        services.credit_recompute(today=today - timedelta(days=30 * months_back))
    enterprises = list(Enterprise.objects.filter(region__path__startswith=county.path).order_by("id"))
    head = next((h for h in heads if h.jurisdiction_id == county.pk), None)
    worst = sorted(enterprises, key=lambda e: e.credit_events.filter(kind__startswith="accident").count(), reverse=True)
    if worst:
        listing = services.listing_add(
            enterprise=worst[0],
            reason="发生生产安全事故后迟报、瞒报，拒不执行停产整顿决定",
            user=None,
            listed_on=today - timedelta(days=400),
        )
        listing.decided_by = head
        listing.save(update_fields=["decided_by"])
        services.repair_apply(
            listing=listing,
            user=None,
            statement="已完成全部整改，主要负责人已重新培训考核合格，承诺今后依法生产。",
            today=today,
        )
    services.credit_recompute(today=today)

    # --- this quarter's plan, drawn, a few inspections done with documents ---------------------
    quarter_start = today.replace(month=((today.month - 1) // 3) * 3 + 1, day=1)
    quarter_end = (quarter_start + timedelta(days=95)).replace(day=1) - timedelta(days=1)
    plan = services.plan_create(
        user=head,
        name=f"{county.name}{quarter_start.year}年第{(quarter_start.month - 1) // 3 + 1}季度“双随机”执法检查",
        jurisdiction=county,
        period_start=quarter_start,
        period_end=quarter_end,
        items=[
            {
                "basis": "《中华人民共和国安全生产法》第四十一条",
                "content": "安全风险分级管控和隐患排查治理",
                "method": "现场检查、查阅资料",
            },
            {
                "basis": "《中华人民共和国安全生产法》第二十八条",
                "content": "从业人员安全生产教育和培训",
                "method": "查阅培训档案、抽考",
            },
            {"basis": "《危险化学品安全管理条例》", "content": "危险化学品储存与重大危险源管理", "method": "现场检查"},
        ],
        strata=[
            {"label": "重大、较大风险", "risk": ["red", "orange"], "ratio": "0.3"},
            {"label": "信用C、D级", "credit": ["C", "D"], "ratio": "0.3"},
            {"label": "其他企业", "ratio": "0.05"},
        ],
        team_size=2,
        require_specialty=True,
    )
    plan.uid = _uid(rng)
    plan.save(update_fields=["uid"])
    draw = services.draw_plan(plan=plan, user=head, seed=f"{rng.getrandbits(128):032x}")
    inspections = list(draw.inspections.order_by("id"))
    for ins in inspections:
        ins.uid = _uid(rng)
    Inspection.objects.bulk_update(inspections, ["uid"])
    scripted = [
        (Outcome.NO_PROBLEM, [], None),
        (Outcome.RECTIFICATION, [FINDINGS[0], FINDINGS[2]], None),
        (Outcome.PENALTY, [FINDINGS[3]], 30000),
    ]
    for ins, (outcome, findings, amount) in zip(inspections, scripted, strict=False):
        member = ins.team.order_by("pk").first()
        services.inspection_complete(
            inspection=ins,
            user=member,
            outcome=outcome,
            checklist=[
                {"item": item["content"], "result": "fail" if findings and i == 0 else "pass", "note": ""}
                for i, item in enumerate(plan.items)
            ],
            findings=[{"description": d, "location": w} for d, w in findings],
            inspected_on=min(today, quarter_end),
            rectification_deadline=today + timedelta(days=30) if findings else None,
            penalty_amount=amount,
            legal_basis="《中华人民共和国安全生产法》第一百零一条" if amount else "",
            internal_notes="企业配合检查" if not findings else "需跟踪复查",
        )
        services.document_issue(inspection=ins, doc_type=DocumentType.ONSITE_RECORD, user=member)
        if outcome in (Outcome.RECTIFICATION, Outcome.PENALTY):
            services.document_issue(inspection=ins, doc_type=DocumentType.RECTIFICATION_ORDER, user=member)
        if outcome == Outcome.PENALTY:
            services.document_issue(inspection=ins, doc_type=DocumentType.PENALTY_DECISION, user=member)
    Inspection.objects.filter(draw=draw, status=InspectionStatus.COMPLETED).update(completed_at=ctx.now)
    documents = list(Document.objects.order_by("id"))
    for doc in documents:
        doc.uid = _uid(rng)
        doc.issued_at = ctx.now
    Document.objects.bulk_update(documents, ["uid", "issued_at"])
    services.credit_recompute(today=today)
    ctx.shared["enforcement_plan"] = plan
    ctx.log(
        f"enforcement: {InspectorProfile.objects.count()} inspectors in the pool, "
        f"{Inspection.objects.count()} inspections, plan “{plan.name}” drawn ({draw.selected_count} enterprises), "
        f"{Document.objects.count()} documents, {InspectionPlan.objects.count()} plan(s)"
    )
