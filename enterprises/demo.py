"""Demo data of the registry: a Suzhou region tree, parks, enterprises, licences, major hazards, users.

Draws only from ``ctx.rng`` and ``ctx.now`` so a seed gives the same county every time. Rows are
bulk-created in chunks (the encrypted phone fields are sealed by ``pre_save`` inside
``bulk_create``), so ``--enterprises 100000`` runs in minutes, not hours.
"""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth.models import Permission
from django.db.models import Case, DateTimeField, Value, When
from guardian.shortcuts import assign_perm

from enterprises import geo, uscc
from enterprises.choices import alpha_for_people, grade_for_r
from enterprises.importing import bulk_insert
from enterprises.models import (
    Enterprise,
    EnterpriseChange,
    HazardousSubstance,
    Industry,
    Licence,
    MajorHazardInstallation,
    join_former_names,
)
from regulator.choices import EnterpriseRole, ParkKind, RegionLevel, Role
from regulator.models import Park, Region, User

CHUNK = 2000

PROVINCE = ("320000", "江苏省")
CITY = ("320500", "苏州市")
# county code, name, short name, login prefix, (lon min, lon max, lat min, lat max), townships
COUNTIES = [
    (
        "320581",
        "常熟市",
        "常熟",
        "cs",
        (120.62, 120.95, 31.58, 31.80),
        [
            "虞山街道",
            "常福街道",
            "琴川街道",
            "莫城街道",
            "碧溪街道",
            "东南街道",
            "梅李镇",
            "海虞镇",
            "古里镇",
            "支塘镇",
        ],
    ),
    (
        "320582",
        "张家港市",
        "张家港",
        "zjg",
        (120.40, 120.75, 31.78, 32.00),
        ["杨舍镇", "塘桥镇", "金港街道", "锦丰镇", "乐余镇", "凤凰镇", "南丰镇", "大新镇"],
    ),
    (
        "320585",
        "太仓市",
        "太仓",
        "tc",
        (121.00, 121.25, 31.47, 31.63),
        ["城厢镇", "沙溪镇", "浏河镇", "浮桥镇", "璜泾镇", "双凤镇"],
    ),
]
# park code, name, kind, county index, township index (the park lies in that township)
PARKS = [
    ("CS-XCL", "江苏常熟新材料产业园", ParkKind.CHEMICAL, 0, 6),
    ("ZJG-YZJ", "江苏扬子江国际化学工业园", ParkKind.CHEMICAL, 1, 2),
    ("TC-GKQ", "太仓港经济技术开发区化工区", ParkKind.CHEMICAL, 2, 4),
]

BRANDS = [
    "华盛",
    "永利",
    "新宇",
    "恒达",
    "金鼎",
    "瑞丰",
    "海翔",
    "天成",
    "宏远",
    "振华",
    "东方",
    "联发",
    "锦江",
    "明辉",
    "盛泰",
    "安泰",
    "中天",
    "鑫源",
    "长江",
    "江南",
    "华昌",
    "国泰",
    "沙钢",
    "隆昌",
    "澄星",
    "飞翔",
    "立信",
    "汇丰",
    "嘉宝",
    "德威",
    "宝丽",
    "利华",
    "通达",
    "博润",
    "晨光",
    "九龙",
    "凯盛",
    "润泽",
    "富强",
    "兴业",
    "东华",
    "新海",
    "星辰",
    "三友",
    "正和",
    "力德",
    "亚邦",
    "惠泽",
    "扬子",
    "港城",
    "虞丰",
    "琴湖",
    "尚湖",
    "梅园",
    "古里",
    "沙洲",
    "暨阳",
    "娄江",
    "浏河",
    "郑和",
]
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金"
    "石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红文斌宇浩凯鹏飞波辉俊峰亮"
    "宁琳雪梅海燕晨阳欣怡子涵一鸣思远嘉诚振东建华卫东"
)

# (weight, industry code prefixes, words for the name, sector of licences)
INDUSTRY_MIX = [
    (
        40,
        ["2614", "2613", "2611", "2612", "2619", "2651", "2652", "2661", "2662", "2669"],
        ["化工", "精细化工", "化学"],
    ),
    (8, ["2641", "2642", "2643", "2645"], ["涂料", "化工", "颜料"]),
    (5, ["2631", "2621"], ["农化", "化工"]),
    (5, ["2511", "2521"], ["石化", "能源"]),
    (4, ["2710"], ["制药", "医药化工"]),
    (6, ["3110", "3120", "3130", "3140", "3211", "3216", "3252", "3391", "3392"], ["钢铁", "冶金", "金属材料", "铸造"]),
    (5, ["5941", "5942", "5949"], ["仓储", "物流", "储运"]),
    (4, ["5162", "5169", "5265", "4512"], ["石化贸易", "化工贸易", "能源", "燃气"]),
    (5, ["4710", "4790", "4812", "4852", "4910", "4920"], ["建设工程", "建筑安装", "建工"]),
    (1, ["1011", "1019"], ["矿业", "石料"]),
    (
        17,
        ["34", "38", "17", "39", "29", "33", "35", "22"],
        ["机械", "电气", "纺织", "电子", "塑胶", "金属制品", "装备", "纸业"],
    ),
]

SUBSTANCES = [
    # name, CAS, class, critical quantity Q (t) — GB 18218-2018 table 1 / table 2
    ("氯", "7782-50-5", "specific", "5"),
    ("氨", "7664-41-7", "specific", "10"),
    ("环氧乙烷", "75-21-8", "specific", "10"),
    ("硫化氢", "7783-06-4", "specific", "5"),
    ("液化石油气", "68476-85-7", "W2", "50"),
    ("氢", "1333-74-0", "W2", "5"),
    ("甲醇", "67-56-1", "W5.3", "500"),
    ("苯", "71-43-2", "W5.3", "50"),
    ("甲苯", "108-88-3", "W5.3", "500"),
    ("乙醇", "64-17-5", "W5.3", "500"),
    ("汽油", "86290-81-5", "W5.3", "200"),
    ("丙烯", "115-07-1", "W2", "10"),
]
ROADS = ["长江路", "沿江路", "新港路", "华山路", "海虞北路", "通港路", "青年路"]
UNITS = ["罐区", "储罐区", "生产装置", "仓库", "合成装置", "精馏装置", "液氯储存区", "氨储罐区"]


def _person(rng) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def _phone(rng) -> str:
    return (
        rng.choice(["138", "139", "137", "135", "151", "152", "158", "180", "189", "133"])
        + f"{rng.randrange(10**8):08d}"
    )


def _org_code(base8: str) -> str:
    """GB 11714 organisation code: 8 characters + check (weights 3,7,9,10,5,8,4,2; mod 11)."""
    weights = [3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(ch) * w for ch, w in zip(base8, weights, strict=True))
    check = 11 - total % 11
    return base8 + ("X" if check == 10 else "0" if check == 11 else str(check))


def _company_name(rng, short: str, words: list[str], seen: set[str]) -> str:
    """Place + 字号 + industry word + company form; a longer 字号 when the short one is taken."""
    form = rng.choice(["有限公司", "有限公司", "股份有限公司"])
    brand = rng.choice(BRANDS)
    for attempt in range(50):
        name = f"{short}{brand}{rng.choice(words)}{form}"
        if name not in seen:
            seen.add(name)
            return name
        brand = rng.choice(BRANDS) + (rng.choice(BRANDS) if attempt > 5 else "")
    name = f"{short}{brand}{rng.choice(words)}（{len(seen)}）{form}"
    seen.add(name)
    return name


def _coordinate(rng, value: float) -> Decimal:
    """Draws once from ``rng`` as the old uniform-in-a-box coordinates did, so later draws stay the same."""
    rng.random()
    return Decimal(str(round(value, 6)))


def _uid(rng) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _password(rng, username: str) -> str:
    words = ["Taihu", "Yushan", "Qinchuan", "Shanghu", "Changjiang", "Meili", "Guli", "Haiyu", "Loujiang", "Shazhou"]
    while True:
        pw = f"{rng.choice(words)}-{rng.randrange(1000, 10000)}"
        if username.lower() not in pw.lower():
            return pw


def _region(code, name, level, parent=None) -> Region:
    obj, _ = Region.objects.get_or_create(code=code, defaults={"name": name, "level": level, "parent": parent})
    return obj


def _user(ctx, username, role, description, **extra) -> User:
    password = _password(ctx.rng, username)
    user = User.objects.filter(username=username).first()
    if user is None:
        user = User(username=username, role=role, uid=_uid(ctx.rng), **extra)
        user.set_password(password)
        user.save()
    ctx.logins.append((username, password, description))
    return user


def _give_reveal_perm(users) -> None:
    """Regulator staff may reveal masked contact data (each reveal is audited)."""
    perm = Permission.objects.get(content_type__app_label="regulator", codename="reveal_sensitive")
    for user in users:
        user.user_permissions.add(perm)


def _give_admin_perms(user: User) -> None:
    perms = Permission.objects.filter(
        content_type__app_label="enterprises",
        codename__in=[
            f"{action}_{model}"
            for action in ("view", "add", "change")
            for model in ("enterprise", "licence", "majorhazardinstallation", "hazardoussubstance")
        ]
        + ["view_enterprisechange", "view_industry"],
    )
    user.user_permissions.add(*perms)


def seed(ctx) -> None:
    rng = ctx.rng
    today = ctx.now.date()
    # --- regions and parks ---------------------------------------------------------------
    province = _region(*PROVINCE, RegionLevel.PROVINCE)
    city = _region(*CITY, RegionLevel.CITY, province)
    counties, townships = [], []
    for code, name, _short, _prefix, _box, towns in COUNTIES:
        county = _region(code, name, RegionLevel.COUNTY, city)
        counties.append(county)
        townships.append(
            [_region(f"{code}{i:03d}", town, RegionLevel.TOWNSHIP, county) for i, town in enumerate(towns, start=1)]
        )
    parks = []
    for code, name, kind, county_index, town_index in PARKS:
        park, _ = Park.objects.get_or_create(
            code=code, defaults={"name": name, "kind": kind, "region": townships[county_index][town_index]}
        )
        parks.append(park)
    # Boundaries for the risk map; coordinates come from their own RNG (seeded from the demo seed)
    # so that rejection sampling inside the polygons leaves the shared stream as it was.
    geo.boundaries_load(data=geo.read_geojson(geo.DEMO_BOUNDARIES), source="demo", skip_unknown=True)
    coord_rng = random.Random(f"{ctx.seed}-coordinates")
    shapes = geo.demo_geometries()
    park_centres = {park.pk: geo.random_point_in(shapes[park.region.code], coord_rng) for park in parks}

    # --- users ---------------------------------------------------------------------------
    city_admin = _user(
        ctx,
        "sz_admin",
        Role.REGULATOR_ADMIN,
        "苏州市应急管理局 监管管理员",
        jurisdiction=city,
        full_name="苏州市局管理员",
        is_staff=True,
    )
    _give_admin_perms(city_admin)
    inspectors, section_heads, regulator_admins = [], [], [city_admin]
    for county, (_code, name, _short, prefix, _box, _towns) in zip(counties, COUNTIES, strict=True):
        for n in (1, 2):
            inspectors.append(
                _user(
                    ctx,
                    f"{prefix}_inspector{n}",
                    Role.INSPECTOR,
                    f"{name}应急管理局 执法人员",
                    jurisdiction=county,
                    full_name=_person(rng),
                )
            )
        section_heads.append(
            _user(
                ctx,
                f"{prefix}_head",
                Role.SECTION_HEAD,
                f"{name}应急管理局 科室负责人",
                jurisdiction=county,
                full_name=_person(rng),
            )
        )
        admin_user = _user(
            ctx,
            f"{prefix}_admin",
            Role.REGULATOR_ADMIN,
            f"{name}应急管理局 监管管理员",
            jurisdiction=county,
            full_name=_person(rng),
            is_staff=True,
        )
        _give_admin_perms(admin_user)
        regulator_admins.append(admin_user)
    _give_reveal_perm([*inspectors, *section_heads, *regulator_admins])
    park_managers = []
    for park, (_code, _name, _kind, county_index, _t) in zip(parks, PARKS, strict=True):
        prefix = COUNTIES[county_index][3]
        park_managers.append(
            _user(ctx, f"{prefix}_park", Role.PARK_MANAGER, f"{park.name} 管委会", park=park, full_name=_person(rng))
        )
    system_admin = _user(
        ctx, "sysadmin", Role.SYSTEM_ADMIN, "系统管理员（三权分立）", is_staff=True, full_name="系统管理员"
    )
    security_admin = _user(
        ctx, "secadmin", Role.SECURITY_ADMIN, "安全管理员（三权分立）", is_staff=True, full_name="安全管理员"
    )
    auditor = _user(ctx, "auditor", Role.AUDITOR, "安全审计员（三权分立）", full_name="安全审计员")

    # --- enterprises ---------------------------------------------------------------------
    industries = {i.code: i for i in Industry.objects.all()}
    mix = []
    for weight, prefixes, words in INDUSTRY_MIX:
        pool = [i for code, i in industries.items() if any(code.startswith(p) for p in prefixes) and i.level == 4]
        if not pool:
            pool = [industries[p] for p in prefixes if p in industries]
        mix.append((weight, pool, words))
    weights = [m[0] for m in mix]
    names_seen: set[str] = set()
    enterprises: list[Enterprise] = []
    serial = rng.randrange(10_000_000, 20_000_000)
    for _ in range(ctx.enterprises):
        county_index = rng.choices(range(len(COUNTIES)), weights=[5, 3, 2])[0]
        code, _name, short, _prefix, _box, _towns = COUNTIES[county_index]
        _w, pool, words = rng.choices(mix, weights=weights)[0]
        industry = rng.choice(pool)
        chemical = industry.high_risk_sector in ("chemicals", "hazardous_storage")
        park = parks[county_index] if chemical and rng.random() < 0.7 else None
        region = park.region if park else rng.choice(townships[county_index])
        name = _company_name(rng, short, words, names_seen)
        if park:  # park enterprises sit together around the park's centre
            lon, lat = geo.random_point_in(shapes[region.code], coord_rng, near=park_centres[park.pk], radius=0.015)
        else:
            lon, lat = geo.random_point_in(shapes[region.code], coord_rng)
        serial += 1
        scale = rng.choices(["large", "medium", "small", "micro"], weights=[5, 20, 55, 20])[0]
        employees = {"large": (1000, 5000), "medium": (300, 1000), "small": (20, 300), "micro": (3, 20)}[scale]
        former = [f"{short}{rng.choice(BRANDS)}{rng.choice(words)}厂"] if rng.random() < 0.1 else []
        e = Enterprise(
            uid=_uid(rng),
            uscc=uscc.make(f"91{code}{_org_code(f'{serial % 10**8:08d}')}"),
            name=name,
            former_names=former,
            legal_representative=_person(rng),
            principal_name=_person(rng),
            principal_phone=_phone(rng),
            safety_officer_name=_person(rng),
            safety_officer_phone=_phone(rng),
            safety_manager_name=_person(rng),
            safety_manager_phone=_phone(rng),
            address=f"江苏省苏州市{COUNTIES[county_index][1]}{region.name if region.level == 4 else ''}"
            f"{rng.choice(ROADS)}{rng.randrange(1, 900)}号",
            region=region,
            park=park,
            longitude=_coordinate(rng, lon),
            latitude=_coordinate(rng, lat),
            industry=industry,
            scale=scale,
            employees=rng.randrange(*employees),
            standardisation_level=rng.choices(["", "1", "2", "3"], weights=[30, 5, 25, 40])[0],
            is_key=chemical and scale in ("large", "medium"),
            high_risk_sector=industry.high_risk_sector,
            operating_status=rng.choices(["operating", "construction", "suspended", "closed"], weights=[90, 3, 5, 2])[
                0
            ],
            risk_grade=(
                rng.choices(["orange", "yellow", "blue"], weights=[15, 60, 25])[0]
                if industry.high_risk_sector
                else rng.choices(["yellow", "blue"], weights=[20, 80])[0]
            ),
        )
        e.former_names_text = join_former_names(former)
        enterprises.append(e)
        if len(enterprises) % CHUNK == 0:
            _flush(ctx, enterprises[-CHUNK:], today)
    rest = len(enterprises) % CHUNK
    if rest:
        _flush(ctx, enterprises[-rest:], today)

    # --- enterprise users: the three roles for a few park enterprises with major hazards ------
    with_hazards = (
        list(Enterprise.objects.filter(major_hazards__isnull=False, park__isnull=False).distinct().order_by("id")[:3])
        or enterprises[:3]
    )
    enterprise_users = []
    for n, ent in enumerate(with_hazards, start=1):
        for role, label in (
            (EnterpriseRole.SAFETY_OFFICER, "企业安全专员"),
            (EnterpriseRole.SAFETY_MANAGER, "安全管理人员"),
            (EnterpriseRole.PRINCIPAL, "主要负责人"),
        ):
            short_role = {"safety_officer": "officer", "safety_manager": "manager", "principal": "principal"}[role]
            user = _user(
                ctx,
                f"ent{n}_{short_role}",
                Role.ENTERPRISE_USER,
                f"{ent.name} {label}",
                enterprise_role=role,
                full_name=_person(rng),
            )
            assign_perm("enterprises.view_enterprise", user, ent)
            enterprise_users.append(user)

    ctx.shared.update(
        {
            "province": province,
            "city": city,
            "county": counties[0],
            "counties": counties,
            "townships": townships,
            "parks": parks,
            "enterprises": enterprises,
            "inspectors": inspectors,
            "section_heads": section_heads,
            "regulator_admins": regulator_admins,
            "city_admin": city_admin,
            "park_managers": park_managers,
            "enterprise_users": enterprise_users,
            "mlps": {"system_admin": system_admin, "security_admin": security_admin, "auditor": auditor},
        }
    )
    ctx.log(
        f"enterprises: {len(enterprises)} enterprises in {len(counties)} counties, {len(parks)} parks, "
        f"{Licence.objects.count()} licences, {MajorHazardInstallation.objects.count()} major hazard installations"
    )


def _flush(ctx, batch: list[Enterprise], today) -> None:
    """Write one chunk of enterprises with their licences, installations, substances and timeline."""
    rng = ctx.rng
    bulk_insert(Enterprise, batch)
    if any(e.pk is None for e in batch):  # COPY (PostgreSQL) returns no ids
        ids = dict(Enterprise.objects.filter(uscc__in=[e.uscc for e in batch]).values_list("uscc", "pk"))
        for e in batch:
            e.pk = ids[e.uscc]
    licences, installations, substances_by_uid, changes = [], [], {}, []
    filed_at = {}
    for e in batch:
        # Filed 1.5 to 3.5 years ago, before the demo's 18 months of history (the same draw as
        # ever, so everything seeded after it stays as it was).
        filed_at[e.pk] = ctx.now - timedelta(days=560 + (rng.randrange(30, 1500) - 30) // 2)
        changes.append(
            EnterpriseChange(
                enterprise_id=e.pk,
                at=filed_at[e.pk],
                source=EnterpriseChange.Source.SYSTEM,
                action="created",
                summary=f"建档：{e.name}",
            )
        )
        sector = e.high_risk_sector
        kinds = []
        if sector == "chemicals":
            kinds.append("hazchem_operation" if e.industry.code.startswith("5") else "safety_production")
        elif sector == "hazardous_storage":
            kinds.append("hazchem_operation")
        elif sector in ("metallurgy", "construction", "mining"):
            kinds.append("safety_production")
        elif rng.random() < 0.15:
            kinds.append("other")
        for kind in kinds:
            roll = rng.random()
            if roll < 0.10:
                expires = today + timedelta(days=rng.randrange(1, 90))  # expiring soon
            elif roll < 0.13:
                expires = today - timedelta(days=rng.randrange(1, 120))  # expired
            else:
                expires = today + timedelta(days=rng.randrange(91, 1095))
            prefix = {"safety_production": "(苏)WH安许证字", "hazchem_operation": "苏苏危化经字"}.get(kind, "苏安许")
            licences.append(
                Licence(
                    enterprise_id=e.pk,
                    licence_type=kind,
                    number=f"{prefix}[{e.uscc[8:16]}]",
                    scope="危险化学品生产、储存" if kind == "safety_production" else "危险化学品经营（不带储存）",
                    issued_on=expires - timedelta(days=3 * 365),
                    expires_on=expires,
                )
            )
        if sector == "chemicals" and e.industry.code.startswith("2") and rng.random() < 0.3:
            for n in range(rng.choice((1, 1, 2))):
                inst = MajorHazardInstallation(
                    uid=_uid(rng),
                    enterprise_id=e.pk,
                    name=f"{rng.choice(UNITS)}{n + 1}",
                    code=f"MH-{e.uscc[8:14]}-{n + 1}",
                    people_within_500m=rng.choice([0, 12, 35, 60, 150, 320]),
                    process_parameters=(
                        f"设计压力 {rng.choice(['0.6', '1.0', '1.6', '2.5'])} MPa；设计温度 {rng.randrange(20, 250)} ℃"
                    ),
                    custodian_main=e.principal_name,
                    custodian_technical=_person(rng),
                    custodian_operational=_person(rng),
                )
                subs = []
                for name, cas, klass, critical in rng.sample(SUBSTANCES, rng.choice((1, 2, 3))):
                    q_crit = Decimal(critical)
                    ratio = Decimal(str(round(rng.uniform(0.3, 12), 2)))
                    beta = HazardousSubstance.default_beta(klass, name)
                    subs.append(
                        HazardousSubstance(
                            name=name,
                            cas_number=cas,
                            substance_class=klass,
                            actual_quantity=(q_crit * ratio).quantize(Decimal("0.001")),
                            critical_quantity=q_crit,
                            beta=beta,
                        )
                    )
                weighted = sum((s.beta * s.actual_quantity / s.critical_quantity for s in subs), Decimal("0"))
                inst.r_value = (alpha_for_people(inst.people_within_500m) * weighted).quantize(Decimal("0.001"))
                inst.grade = grade_for_r(inst.r_value)
                installations.append(inst)
                substances_by_uid[inst.uid] = subs
    bulk_insert(Licence, licences)
    bulk_insert(EnterpriseChange, changes)
    Enterprise.objects.filter(pk__in=list(filed_at)).update(  # created_at is auto_now_add on insert
        created_at=Case(*(When(pk=pk, then=Value(at)) for pk, at in filed_at.items()), output_field=DateTimeField())
    )
    if installations:
        bulk_insert(MajorHazardInstallation, installations)
        inst_ids = dict(
            MajorHazardInstallation.objects.filter(uid__in=[i.uid for i in installations]).values_list("uid", "pk")
        )
        subs = []
        risk_updates = {}
        for inst in installations:
            for s in substances_by_uid[inst.uid]:
                s.installation_id = inst_ids[inst.uid]
                subs.append(s)
            if inst.grade <= 2:
                risk_updates[inst.enterprise_id] = "red" if inst.grade == 1 else "orange"
        bulk_insert(HazardousSubstance, subs)
        for grade in ("red", "orange"):
            ids_ = [eid for eid, g in risk_updates.items() if g == grade]
            Enterprise.objects.filter(pk__in=ids_).update(risk_grade=grade, is_key=True)
        Enterprise.objects.filter(pk__in=[i.enterprise_id for i in installations]).update(is_key=True)
