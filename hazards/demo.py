"""Demo data of the hazard closed loop: 18 months of hazards in every state (some overdue, some
major under listed supervision), drawn month by month from each enterprise's latent risk
propensity (enterprises/risk/demo.py), chemical-industry checklists and their runs.

History is written directly with back-dated timestamps (the services stamp "now"); everything is
drawn from ``ctx.rng`` and ``ctx.now`` so a seed always gives the same data.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from enterprises.models import Enterprise, Industry
from enterprises.risk.demo import HISTORY_DAYS, intensity, poisson
from hazards.choices import CheckResult, HazardStatus, RunStatus
from hazards.models import (
    ChecklistAnswer,
    ChecklistItem,
    ChecklistRun,
    ChecklistTemplate,
    ExtensionRequest,
    Hazard,
    HazardTransition,
)
from regulator.choices import REGULATOR_ROLES, EnterpriseRole, Role
from regulator.models import User

DEFECTS = [
    ("equipment", "可燃气体报警器未按期检定", "罐区"),
    ("equipment", "储罐呼吸阀锈蚀卡涩", "罐区"),
    ("equipment", "压力表超期未校验", "反应釜区"),
    ("electrical", "防爆区域使用非防爆电器", "装置区"),
    ("electrical", "配电柜未可靠接地", "配电室"),
    ("fire", "消防通道被物料占用", "仓库"),
    ("fire", "灭火器压力不足", "车间"),
    ("storage", "危化品仓库超量储存", "危化品仓库"),
    ("storage", "禁忌物料混存", "危化品仓库"),
    ("process", "SIS联锁被摘除未审批", "中控室"),
    ("process", "工艺操作规程未及时修订", "中控室"),
    ("operation", "动火作业票证填写不全", "检修现场"),
    ("operation", "受限空间作业未检测气体", "检修现场"),
    ("management", "特种作业人员证书过期", "安全管理"),
    ("management", "应急演练记录缺失", "安全管理"),
    ("environment", "装置区照明不足", "装置区"),
]
MEASURES = ["更换并重新检定", "立即清理并设置警示标识", "停用整改后恢复", "修订制度并组织培训", "委托专业单位维修"]
MONTHLY_HAZARDS = 0.35  # hazards per enterprise-month at intensity 1
MAJOR_SHARE = 0.035  # share of major hazards at intensity 1
SOURCES = ["self_check"] * 6 + ["inspection"] * 3 + ["spot_check", "third_party", "device_alert", "public_report"]

CHECKLISTS = [
    (
        "危险化学品企业日常安全检查表",
        30,
        [
            ("可燃/有毒气体检测报警器完好、按期检定", "GB/T 50493-2019", "equipment"),
            ("重大危险源安全包保责任人公示并履职", "应急管理部令第40号", "management"),
            ("储罐液位、温度、压力远传与超限报警正常", "GB 18218-2018", "equipment"),
            ("SIS/联锁投用正常，摘除有审批", "AQ 3035-2010", "process"),
            ("特殊作业票证齐全（动火、受限空间等）", "GB 30871-2022", "operation"),
            ("禁忌物料分区分类储存，未超量", "GB 15603-2022", "storage"),
            ("防爆区域电气设备符合防爆要求", "GB 50058-2014", "electrical"),
            ("消防通道畅通，消防设施完好", "GB 50016-2014", "fire"),
        ],
    ),
    (
        "重大危险源专项周检表",
        7,
        [
            ("重大危险源在线监测数据上传正常", "GB 17681", "equipment"),
            ("紧急切断阀可正常动作", "GB 50160-2008", "equipment"),
            ("现场应急物资配备齐全", "GB 30077-2013", "management"),
        ],
    ),
]


def _uid(rng) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def seed(ctx) -> None:
    rng, now = ctx.rng, ctx.now
    today = timezone.localdate(now)
    templates = _checklists(ctx)
    enterprise_users = list(ctx.shared.get("enterprise_users", []))
    if not enterprise_users:
        enterprise_users = list(User.objects.filter(role=Role.ENTERPRISE_USER).order_by("id"))
    regulators = list(User.objects.filter(role__in=list(REGULATOR_ROLES)).order_by("id"))
    by_region = {}
    for r in regulators:
        by_region.setdefault(r.jurisdiction_id, []).append(r)

    enterprises = list(Enterprise.objects.select_related("region").order_by("id"))
    if not enterprises:
        ctx.log("hazards: no enterprises, nothing to seed")
        return
    # Enterprises with demo logins get a rich history; a share of the rest get a few hazards each.
    from guardian.models import UserObjectPermission

    login_ids = {
        int(pk)
        for pk in UserObjectPermission.objects.filter(
            user__in=enterprise_users, permission__codename="view_enterprise"
        ).values_list("object_pk", flat=True)
    }
    users_by_ent: dict[int, dict[str, User]] = {}
    for row in UserObjectPermission.objects.filter(
        user__in=enterprise_users, permission__codename="view_enterprise"
    ).select_related("user"):
        users_by_ent.setdefault(int(row.object_pk), {})[row.user.enterprise_role] = row.user

    hazards, steps_for = [], []
    for ent in enterprises:
        # Month by month, as many hazards as the enterprise's latent propensity then makes likely.
        ages = []
        for month in range(HISTORY_DAYS // 30):
            count = poisson(rng, MONTHLY_HAZARDS * intensity(ctx, ent.pk, month * 30 + 15))
            ages.extend(month * 30 + rng.randrange(0, 30) for _ in range(count))
        if ent.pk in login_ids:  # the demo logins get a rich history whatever their propensity
            ages.extend(rng.randrange(0, 420) for _ in range(max(0, 18 - len(ages))))
        if not ages:
            continue
        staff = users_by_ent.get(ent.pk, {})
        inspectors = _inspectors_for(ent, by_region)
        for age in sorted(ages, reverse=True):
            hazard, steps = _hazard(rng, now, today, ent, staff, inspectors, age, intensity(ctx, ent.pk, age))
            hazards.append(hazard)
            steps_for.append(steps)
    for start in range(0, len(hazards), 1000):
        Hazard.objects.bulk_create(hazards[start : start + 1000])
    if any(h.pk is None for h in hazards):
        ids = dict(Hazard.objects.values_list("uid", "pk"))
        for h in hazards:
            h.pk = ids[h.uid]
    transitions, extensions = [], []
    for hazard, steps in zip(hazards, steps_for, strict=True):
        for step in steps:
            if step[0] == "extension":
                extensions.append(ExtensionRequest(hazard=hazard, **step[1]))
            else:
                action, from_status, to_status, user, at, comment = step
                transitions.append(
                    HazardTransition(
                        hazard=hazard,
                        action=action,
                        from_status=from_status,
                        to_status=to_status,
                        user=user,
                        at=at,
                        comment=comment,
                    )
                )
    HazardTransition.objects.bulk_create(transitions, batch_size=2000)
    ExtensionRequest.objects.bulk_create(extensions, batch_size=2000)
    _runs(ctx, templates, [e for e in enterprises if e.pk in login_ids], users_by_ent)
    counts = {s: sum(1 for h in hazards if h.status == s) for s in HazardStatus.values}
    overdue = sum(
        1 for h in hazards if h.status in ("reported", "confirmed", "rectifying") and h.due_date and h.due_date < today
    )
    ctx.log(
        f"hazards: {len(hazards)} hazards ({', '.join(f'{k} {v}' for k, v in counts.items())}; overdue {overdue}; "
        f"listed {sum(1 for h in hazards if h.listed)}), {len(templates)} checklist templates"
    )


def _inspectors_for(ent, by_region):
    codes = [c for c in ent.region.path.strip("/").split("/") if c]
    from regulator.models import Region

    ids = list(Region.objects.filter(code__in=codes).values_list("pk", flat=True))
    return [u for rid in ids for u in by_region.get(rid, []) if u.role == Role.INSPECTOR] or [
        u for rid in ids for u in by_region.get(rid, [])
    ]


def _hazard(rng, now, today, ent, staff, inspectors, age_days, k=1.0):
    """One hazard with a coherent back-dated history; returns (hazard, timeline steps).

    ``k`` is the enterprise's risk intensity at the time (enterprises/risk/demo.py): riskier
    enterprises find more major hazards, finish late more often and leave more hazards open.
    """
    category, text, place = rng.choice(DEFECTS)
    source = rng.choice(SOURCES)
    reported_at = now - timedelta(days=age_days, hours=rng.randrange(0, 10), minutes=rng.randrange(0, 60))
    major = rng.random() < min(0.3, MAJOR_SHARE * k)
    inspector = rng.choice(inspectors) if inspectors else None
    officer = staff.get(EnterpriseRole.SAFETY_OFFICER)
    manager = staff.get(EnterpriseRole.SAFETY_MANAGER)
    regulator_found = source in ("inspection", "spot_check") and inspector is not None
    finder = inspector if regulator_found else officer
    deciders = inspector if major else (manager or inspector)
    h = Hazard(
        uid=_uid(rng),
        enterprise=ent,
        description=f"{text}",
        location=f"{place}{rng.randrange(1, 9)}号",
        category=category,
        grade="major" if major else "ordinary",
        major_level=rng.choice([1, 2, 3]) if major else None,
        source=source,
        source_ref="",
        found_by=finder,
        found_at=reported_at - timedelta(hours=rng.randrange(0, 5)),
        reported_at=reported_at,
        status=HazardStatus.REPORTED,
    )
    steps = [("report", "", "reported", finder, reported_at, "")]
    # Older hazards have mostly gone through the loop; recent ones are spread over the states.
    r = rng.random()
    if age_days > 90:
        closed_share = max(0.8, 0.93 - 0.02 * k)
        target = "closed" if r < closed_share else ("dismissed" if r < closed_share + 0.04 else "rectifying")
    elif age_days > 20:
        target = ["closed", "submitted", "rectifying", "rectifying", "confirmed", "dismissed"][int(r * 6)]
    else:
        target = ["reported", "confirmed", "rectifying", "submitted", "closed"][int(r * 5)]
    t = reported_at
    if target == "reported":
        return h, steps
    t += timedelta(hours=rng.randrange(2, 48))
    if target == "dismissed":
        h.status, h.dismissed_reason = HazardStatus.DISMISSED, "经核实不构成隐患"
        steps.append(("dismiss", "reported", "dismissed", inspector or manager, t, h.dismissed_reason))
        return h, steps
    h.status, h.confirmed_at = HazardStatus.CONFIRMED, t
    steps.append(("confirm", "reported", "confirmed", inspector if regulator_found else (manager or inspector), t, ""))
    if target == "confirmed":
        h.deadline = h.due_date = timezone.localdate(t) + timedelta(days=rng.randrange(10, 40))
        return h, steps
    t += timedelta(hours=rng.randrange(4, 72))
    days = rng.randrange(20, 90) if major else rng.randrange(5, 30)
    h.measures = rng.choice(MEASURES)
    h.funds = Decimal(rng.randrange(5, 500) * (1000 if major else 100))
    h.responsible_person = officer.full_name if officer and officer.full_name else "车间主任"
    h.deadline = h.due_date = timezone.localdate(t) + timedelta(days=days)
    h.emergency_plan = "落实临时管控措施，编制专项应急处置方案" if major else ""
    h.status = HazardStatus.RECTIFYING
    steps.append(("start_rectification", "confirmed", "rectifying", officer, t, ""))
    if major and rng.random() < 0.6 and inspector is not None:
        h.listed, h.listed_at, h.listed_by, h.supervisor = True, t + timedelta(days=1), inspector, inspector
        h.supervision_due = h.due_date
        steps.append(("list_supervision", "rectifying", "rectifying", inspector, h.listed_at, "重大隐患挂牌督办"))
    if rng.random() < 0.2:
        new_due = h.due_date + timedelta(days=rng.randrange(7, 30))
        ask = t + timedelta(days=max(1, days // 2))
        approved = rng.random() < 0.75
        steps.append(("request_extension", "rectifying", "rectifying", officer, ask, "设备采购周期长"))
        decided = ask + timedelta(days=1)
        steps.append(
            (
                "extension",
                {
                    "requested_by": officer,
                    "requested_at": ask,
                    "old_deadline": h.due_date,
                    "new_deadline": new_due,
                    "reason": "设备采购周期长",
                    "status": "approved" if approved else "refused",
                    "decided_by": deciders,
                    "decided_at": decided,
                    "decision_comment": "同意" if approved else "理由不充分",
                },
            )
        )
        steps.append(
            ("decide_extension", "rectifying", "rectifying", deciders, decided, "同意" if approved else "不同意")
        )
        if approved:
            h.due_date = new_due
    if target == "rectifying":
        return h, steps
    late = rng.random() < min(0.7, 0.1 * k)
    done_day = (
        h.due_date + timedelta(days=rng.randrange(1, 10))
        if late
        else h.due_date - timedelta(days=rng.randrange(0, max(1, days - 1)))
    )
    submitted = timezone.make_aware(timezone.datetime.combine(done_day, timezone.datetime.min.time())) + timedelta(
        hours=rng.randrange(8, 18)
    )
    submitted = min(submitted, now - timedelta(hours=1))
    h.status, h.submitted_at = HazardStatus.SUBMITTED, submitted
    h.rectification_note, h.cost_spent = "已按整改措施完成整改", (h.funds or Decimal(0)) * Decimal("0.9")
    steps.append(("submit_rectification", "rectifying", "submitted", officer, submitted, h.rectification_note))
    if target == "submitted":
        return h, steps
    closed = min(submitted + timedelta(days=rng.randrange(1, 6)), now - timedelta(minutes=10))
    h.status, h.closed_at, h.closed_by = HazardStatus.CLOSED, closed, deciders
    h.closed_on_time = timezone.localdate(submitted) <= h.due_date
    steps.append(("verify", "submitted", "closed", deciders, closed, "验收合格"))
    return h, steps


def _checklists(ctx) -> list[ChecklistTemplate]:
    industry = (
        Industry.objects.filter(code="26").first()
        or Industry.objects.filter(high_risk_sector="chemicals").order_by("level", "code").first()
    )
    creator = User.objects.filter(role=Role.REGULATOR_ADMIN).order_by("id").first()
    created = ctx.now - timedelta(days=400)
    templates = []
    for name, cycle, items in CHECKLISTS:
        template = ChecklistTemplate.objects.create(
            name=name, industry=industry, cycle_days=cycle, created_by=creator, created_at=created
        )
        ChecklistItem.objects.bulk_create(
            ChecklistItem(template=template, order=n, text=text, basis=basis, category=cat)
            for n, (text, basis, cat) in enumerate(items, start=1)
        )
        templates.append(template)
    return templates


def _runs(ctx, templates, enterprises, users_by_ent) -> None:
    """Completed runs for the demo enterprises: the first is up to date, the others fall behind."""
    rng, now = ctx.rng, ctx.now
    for n, ent in enumerate(enterprises):
        officer = users_by_ent.get(ent.pk, {}).get(EnterpriseRole.SAFETY_OFFICER)
        if officer is None or not ent.industry.code.startswith("26"):
            continue
        for template in templates:
            lag = 5 if n == 0 else template.cycle_days + rng.randrange(3, 20)
            completed = now - timedelta(days=lag)
            run = ChecklistRun.objects.create(
                template=template,
                enterprise=ent,
                run_by=officer,
                started_at=completed - timedelta(minutes=40),
                completed_at=completed,
                status=RunStatus.COMPLETED,
                next_due=timezone.localdate(completed) + timedelta(days=template.cycle_days),
            )
            ChecklistAnswer.objects.bulk_create(
                ChecklistAnswer(run=run, item=item, result=CheckResult.PASS, answered_at=completed)
                for item in template.items.all()
            )
