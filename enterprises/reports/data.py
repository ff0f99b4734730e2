"""The content of the monthly supervision report, as plain tables the XLSX and PDF writers lay out.

``build_monthly_report(region, month, user=...)`` reads everything once:

- the indicators of the month and of the previous month, the distributions and one row per child
  region, all from ``enterprises.indicators.compute`` (the dashboard's numbers, so the report and
  the dashboard never disagree);
- the top risks: the 20 enterprises with the highest risk score (the risk profile's score, then
  ``Enterprise.risk_grade`` for enterprises without a profile), with the profile's top reasons;
- the overdue items at the report's reference moment (the end of the month, or now for the
  current month): open hazards past their effective (possibly extended) deadline, and open alerts
  past their acknowledgement or response deadline.

``user=None`` means the system (the management command, the beat task): no scoping beyond the
region subtree. A park manager's report is limited to the park.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Case, Count, F, IntegerField, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from enterprises.choices import RiskGrade
from enterprises.models import Enterprise
from regulator.models import Park, Region
from regulator.scoping import scope

TOP_RISKS = 20
TOP_REASONS = 3
# Enough for any real county; a larger backlog is cut with a note (the hazard and alert lists have them all).
MAX_OVERDUE_ROWS = 2000

MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")
GRADE_RANK = {RiskGrade.RED: 0, RiskGrade.ORANGE: 1, RiskGrade.YELLOW: 2, RiskGrade.BLUE: 3}


class ReportInputError(ValueError):
    """A month or region the report cannot be made for; the message is for the user."""


def parse_month(text: str, *, today: date | None = None) -> date:
    """'2026-10' -> date(2026, 10, 1); refuses malformed and future months (the current one is fine)."""
    match = MONTH_RE.match((text or "").strip())
    if not match:
        raise ReportInputError(_("月份格式应为 YYYY-MM，例如 2026-10"))
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12 or year < 2000:
        raise ReportInputError(_("无效的月份：%(month)s") % {"month": text})
    first = date(year, month, 1)
    today = today or timezone.localdate()
    if first > today.replace(day=1):
        raise ReportInputError(_("不能生成未来月份的报告：%(month)s") % {"month": text})
    return first


def last_month(today: date | None = None) -> date:
    today = today or timezone.localdate()
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


def month_end(first: date) -> date:
    return first.replace(day=calendar.monthrange(first.year, first.month)[1])


def month_label(first: date) -> str:
    return _("%(year)d年%(month)d月") % {"year": first.year, "month": first.month}


@dataclass
class Column:
    label: str
    # text | int | float | percent (a fraction, 0.25 = 25 %) | date | datetime
    kind: str = "text"
    # Characters: the spreadsheet's column width; the PDF shares the page width in proportion.
    width: float = 12


@dataclass
class Table:
    key: str
    title: str
    columns: list[Column]
    rows: list[list] = field(default_factory=list)
    note: str = ""
    empty_text: str = ""


@dataclass
class MonthlyReport:
    region: Region
    park: Park | None
    month: date
    start: date
    end: date
    generated_at: datetime
    reference_at: datetime
    tables: list[Table]
    indicators: dict

    @property
    def jurisdiction_label(self) -> str:
        return f"{self.region.name}（{self.region.code}）" + (f" · {self.park.name}" if self.park else "")

    @property
    def place(self) -> str:
        return self.park.name if self.park else self.region.name

    @property
    def month_label(self) -> str:
        return month_label(self.month)

    @property
    def title(self) -> str:
        return _("%(place)s安全生产监管月度报告（%(month)s）") % {"place": self.place, "month": self.month_label}

    def table(self, key: str) -> Table:
        return next(t for t in self.tables if t.key == key)

    def meta_rows(self) -> list[tuple[str, str]]:
        fmt = "%Y-%m-%d %H:%M"
        return [
            (_("辖区"), self.jurisdiction_label),
            (_("报告月份"), self.month_label),
            (_("统计区间"), f"{self.start:%Y-%m-%d} — {self.end:%Y-%m-%d}"),
            (_("逾期事项截至"), timezone.localtime(self.reference_at).strftime(fmt)),
            (_("生成时间"), timezone.localtime(self.generated_at).strftime(fmt)),
        ]


class SystemUser:
    """The system as a user of ``enterprises.indicators.compute``: sees every enterprise of the region
    (the management command and the beat task; the region subtree is the only limit)."""

    pk = id = None
    is_authenticated = is_active = is_superuser = True
    is_regulator = is_park_manager = is_enterprise_user = is_mlps_admin = False
    jurisdiction_id = park_id = None
    username = "system"


SYSTEM = SystemUser()

# The drill-down columns: the key indicators (the summary sheet has them all), in this order.
CHILD_INDICATORS = (
    "enterprises_total",
    "enterprises_connected",
    "device_online_rate",
    "hazards_found",
    "major_hazards_found",
    "rectification_rate",
    "on_time_rate",
    "listed_major_hazards",
    "inspections_done",
    "inspection_completion_rate",
    "alerts_total",
    "ack_in_time_rate",
)


def build_monthly_report(region: Region, month: date, *, user=None, now: datetime | None = None) -> MonthlyReport:
    """The whole report for ``region``'s subtree and the calendar ``month`` (its first day).

    ``user`` scopes every query (None: the system); a park manager's report is limited to their park.
    Raises ``PermissionDenied`` for a user who may not see the region (see ``indicators.compute``).
    """
    now = now or timezone.now()
    park = user.park if user is not None and user.is_park_manager and not user.is_superuser else None
    start, end = month, month_end(month)
    next_month_start = timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min))
    reference_at = min(now, next_month_start)

    from enterprises.indicators import compute

    indicators = compute(region, start, end, user=user or SYSTEM, today=timezone.localdate(now))
    enterprises = _enterprises(region, user, park)
    tables = [
        _summary_table(indicators),
        _distribution_table(indicators, enterprises),
        _top_risk_table(enterprises),
        _overdue_hazard_table(enterprises, reference_at),
        _overdue_alert_table(enterprises, reference_at),
        _children_table(indicators),
    ]
    return MonthlyReport(
        region=region,
        park=park,
        month=month,
        start=start,
        end=end,
        generated_at=now,
        reference_at=reference_at,
        tables=tables,
        indicators=indicators,
    )


def _enterprises(region: Region, user, park: Park | None):
    qs = Enterprise.objects.filter(region__path__startswith=region.path)
    if park is not None:
        qs = qs.filter(park=park)
    return qs if user is None else scope(qs, user)


# --- indicators ---------------------------------------------------------------------------------


def _number(value):
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _indicator_kind(item: dict) -> str:
    """Counts are whole numbers; rates ("%", already x100), days and minutes have decimals."""
    values = [item.get(k) for k in ("value", "previous", "change")]
    return "float" if any(isinstance(v, float) for v in values) else "int"


class _Typed:
    """A cell whose kind differs from its column's (indicator rows mix counts, rates and days)."""

    __slots__ = ("value", "kind")

    def __init__(self, value, kind):
        self.value, self.kind = value, kind

    def __repr__(self):
        return f"_Typed({self.value!r}, {self.kind!r})"


def cell_value(cell):
    return cell.value if isinstance(cell, _Typed) else cell


def cell_kind(cell, column: Column) -> str:
    return cell.kind if isinstance(cell, _Typed) else column.kind


def _summary_table(indicators: dict) -> Table:
    table = Table(
        key="summary",
        title=_("主要指标"),
        columns=[
            Column(_("指标"), width=24),
            Column(_("本月"), "float", 12),
            Column(_("上月"), "float", 12),
            Column(_("变化"), "float", 12),
            Column(_("单位"), width=8),
            Column(_("口径说明"), width=44),
        ],
        note=_("变化 = 本月 − 上月，比率的变化为百分点；实时指标（如设备在线率）只有当月报告有值。"),
    )
    for item in indicators.get("indicators", []):
        kind = _indicator_kind(item)
        value, previous, change = (_number(item.get(k)) for k in ("value", "previous", "change"))
        table.rows.append(
            [
                item.get("label") or item.get("key"),
                _Typed(value, kind),
                _Typed(previous, kind),
                _Typed(change, kind),
                item.get("unit") or "",
                item.get("help") or "",
            ]
        )
    return table


def _distribution_labels() -> dict[str, dict]:
    unrated = {"": _("未评级"), "none": _("未评级"), "None": _("未评级")}
    labels: dict[str, dict] = {
        "credit_grade": dict(unrated),
        "risk_grade": {str(v): str(lbl) for v, lbl in RiskGrade.choices} | unrated,
        "alerts_by_level": {},
    }
    # Other apps' labels are read lazily: the registry app does not import them at import time.
    from alerts.choices import AlertLevel
    from enforcement.choices import CreditGrade

    labels["credit_grade"] |= {str(v): str(lbl) for v, lbl in CreditGrade.choices}
    labels["alerts_by_level"] = {str(v): str(lbl) for v, lbl in AlertLevel.choices}
    return labels


# Distributions the indicators sample (from the monthly snapshots) rather than count from events.
SAMPLED_DISTRIBUTIONS = ("credit_grade", "risk_grade")


def _distribution_table(indicators: dict, enterprises) -> Table:
    """The indicators' distributions. Grades of a past month come from the snapshots' samples; a month
    without snapshots has none, so the grades as they are now are shown instead, and said so."""
    names = {
        "credit_grade": _("信用等级"),
        "risk_grade": _("风险等级"),
        "alerts_by_level": _("报警级别"),
    }
    labels = _distribution_labels()
    period = indicators.get("period") or {}
    unsampled = not period.get("live") and period.get("mode") == "live"
    note = _("信用等级、风险等级为月内采样的企业数；报警级别为本月报警次数。")
    if period.get("live"):
        note = _("信用等级、风险等级为当前企业数；报警级别为本月报警次数。")
    elif unsampled:
        note = _("该月没有指标快照，信用等级、风险等级为报告生成时的企业数；报警级别为本月报警次数。")
    table = Table(
        key="distributions",
        title=_("等级分布"),
        columns=[
            Column(_("分类"), width=16),
            Column(_("等级"), width=22),
            Column(_("数量"), "int", 10),
            Column(_("占比"), "percent", 10),
        ],
        note=note,
    )
    distributions = dict(indicators.get("distributions") or {})
    if unsampled:
        distributions |= _current_grades(enterprises, distributions)
    ordered = [k for k in names if k in distributions] + [k for k in distributions if k not in names]
    for key in ordered:
        counts = distributions[key] or {}
        total = sum(v for v in counts.values() if _number(v) is not None)
        name = str(names.get(key, key))
        if unsampled and key in SAMPLED_DISTRIBUTIONS:
            name = _("%(name)s（生成时）") % {"name": name}
        for grade, count in counts.items():
            label = labels.get(key, {}).get(str(grade), str(grade))
            table.rows.append([name, label, count, count / total if total else None])
    return table


def _current_grades(enterprises, like: dict) -> dict:
    """Enterprises by current risk and credit grade, keyed like the indicators' distributions."""
    result = {}
    for key, field_name in (("risk_grade", "risk_grade"), ("credit_grade", "credit__grade")):
        counts = dict(enterprises.values_list(field_name).annotate(n=Count("pk")).order_by())
        keys = [k for k in (like.get(key) or {}) if k != "none"]
        if not keys:
            keys = list(RiskGrade.values) if key == "risk_grade" else ["A", "B", "C", "D"]
        row = {k: counts.pop(k, 0) for k in keys}
        row["none"] = sum(counts.values())
        result[key] = row
    return result


def _children_table(indicators: dict) -> Table:
    items = {i["key"]: i for i in indicators.get("indicators", [])}
    labels = indicators.get("labels") or {}
    keys = [k for k in CHILD_INDICATORS if k in items] or list(items)[: len(CHILD_INDICATORS)]
    children = indicators.get("children") or []
    by_enterprise = indicators.get("children_kind") == "enterprise"
    if by_enterprise:
        columns = [Column(_("企业名称"), width=24), Column(_("统一社会信用代码"), width=20)]
        ids = [c["enterprise"]["id"] for c in children if c.get("kind") == "enterprise"]
        uscc = dict(Enterprise.objects.filter(pk__in=ids).values_list("pk", "uscc"))
    else:
        columns = [Column(_("区划"), width=14), Column(_("代码"), width=11)]
        uscc = {}
    for key in keys:
        item = items[key]
        unit = item.get("unit") or ""
        label = str(labels.get(key) or item.get("label") or key) + (f"（{unit}）" if unit else "")
        columns.append(Column(label, _indicator_kind(item), 9))
    table = Table(
        key="children",
        title=_("企业指标") if by_enterprise else _("下级区划"),
        columns=columns,
        note=_("本月数值；“本级”为直接登记在本区划的企业。") if not by_enterprise else _("本月数值，每家企业一行。"),
        empty_text=_("没有下级区划或企业。"),
    )
    for child in children:
        values = child.get("indicators") or {}
        if child.get("kind") == "enterprise":
            ent = child.get("enterprise") or {}
            head = [ent.get("name", ""), uscc.get(ent.get("id"), "")]
        else:
            region = child.get("region") or {}
            head = [region.get("name", ""), region.get("code", "")]
        table.rows.append([*head, *(_number(values.get(k)) for k in keys)])
    return table


# --- top risks ----------------------------------------------------------------------------------


def _has_risk_profile() -> bool:
    return any(getattr(f, "related_name", None) == "risk_profile" for f in Enterprise._meta.related_objects)


def format_contribution(value) -> str:
    if not isinstance(value, int | float):
        return ""
    return f"{value:+.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else f"{value:+d}"


def _plain(value) -> str:
    """1.0 -> '1', 0.256 -> '0.26': factor values as a person writes them."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)


def top_reasons(factors, limit: int = TOP_REASONS) -> str:
    """The factors that push the score up most, e.g. '逾期隐患 3 项（+12）；重大危险源一级（+10）'."""
    rows = [f for f in factors or [] if isinstance(f, dict) and _number(f.get("contribution")) is not None]
    rows = [f for f in rows if f["contribution"] > 0]
    rows.sort(key=lambda f: -f["contribution"])
    parts = []
    for factor in rows[:limit]:
        label = factor.get("label") or factor.get("key", "")
        value = factor.get("value")
        shown = str(label) if value is None or value == "" or isinstance(value, bool) else f"{label}：{_plain(value)}"
        parts.append(f"{shown}（{format_contribution(factor['contribution'])}）")
    return "；".join(parts)


def _top_risk_table(enterprises) -> Table:
    table = Table(
        key="top_risks",
        title=_("重点风险企业"),
        columns=[
            Column(_("排名"), "int", 6),
            Column(_("企业名称"), width=30),
            Column(_("统一社会信用代码"), width=21),
            Column(_("所在区划"), width=16),
            Column(_("所在园区"), width=18),
            Column(_("风险等级"), width=14),
            Column(_("风险分值"), "float", 9),
            Column(_("主要风险因素"), width=44),
        ],
        note=_("按风险分值从高到低的前 %(n)d 家企业（无风险画像的企业按风险等级排在其后）。") % {"n": TOP_RISKS},
        empty_text=_("本辖区没有企业。"),
    )
    grade_rank = Case(
        *(When(risk_grade=grade, then=Value(rank)) for grade, rank in GRADE_RANK.items()),
        default=Value(len(GRADE_RANK)),
        output_field=IntegerField(),
    )
    qs = enterprises.select_related("region", "park").annotate(grade_rank=grade_rank)
    if _has_risk_profile():
        qs = qs.select_related("risk_profile").order_by(
            F("risk_profile__score").desc(nulls_last=True), "grade_rank", "name", "id"
        )
    else:
        qs = qs.order_by("grade_rank", "name", "id")
    for rank, ent in enumerate(qs[:TOP_RISKS], start=1):
        profile = getattr(ent, "risk_profile", None) if _has_risk_profile() else None
        grade = (profile.grade if profile else "") or ent.risk_grade
        table.rows.append(
            [
                rank,
                ent.name,
                ent.uscc,
                ent.region.name,
                ent.park.name if ent.park_id else "",
                str(RiskGrade(grade).label) if grade in RiskGrade.values else _("未评级"),
                round(float(profile.score), 1) if profile and profile.score is not None else None,
                top_reasons(profile.factors) if profile else "",
            ]
        )
    return table


# --- overdue items ------------------------------------------------------------------------------


def _overdue_hazard_table(enterprises, reference_at: datetime) -> Table:
    """Hazards open at ``reference_at`` and past their effective deadline by then.

    "Open at the reference" is read from the milestones, so a past month's report still lists a
    hazard that was overdue when the month closed and was rectified later (its current state is
    shown): open now, or submitted for verification / closed only after the reference.
    """
    from hazards.choices import OVERDUE_STATES, HazardStatus
    from hazards.models import Hazard

    ref_date = timezone.localtime(reference_at).date()
    table = Table(
        key="overdue_hazards",
        title=_("逾期隐患"),
        columns=[
            Column(_("企业名称"), width=28),
            Column(_("隐患编号"), width=14),
            Column(_("隐患描述"), width=36),
            Column(_("隐患等级"), width=16),
            Column(_("整改期限"), "date", 12),
            Column(_("逾期天数"), "int", 9),
            Column(_("挂牌督办"), width=20),
            Column(_("整改责任人"), width=12),
            Column(_("当前状态"), width=16),
        ],
        note=_(
            "截至 %(date)s 仍未整改完毕（未提交验收）、且已超过有效整改期限（含批准的延期）的隐患；"
            "逾期天数计至 %(date)s。之后已整改的隐患仍列出，并注明当前状态。"
        )
        % {"date": f"{ref_date:%Y-%m-%d}"},
        empty_text=_("没有逾期隐患。"),
    )
    finished = (HazardStatus.SUBMITTED, HazardStatus.CLOSED)
    open_at_reference = (
        Q(status__in=OVERDUE_STATES)
        | Q(status__in=finished, submitted_at__gte=reference_at)
        | Q(status=HazardStatus.CLOSED, submitted_at__isnull=True, closed_at__gte=reference_at)
    )
    qs = (
        Hazard.objects.filter(enterprise__in=enterprises.values("pk"))
        .filter(open_at_reference, due_date__lt=ref_date, reported_at__lt=reference_at)
        .select_related("enterprise")
        .order_by("due_date", "-listed", "id")
    )
    hazards, total = _first_rows(qs)
    for hazard in hazards:
        if hazard.listed:
            listed = _("是") + (
                f"（{_('督办期限')} {hazard.supervision_due:%Y-%m-%d}）" if hazard.supervision_due else ""
            )
        else:
            listed = _("否")
        state = str(hazard.get_status_display())
        if hazard.status == HazardStatus.CLOSED and hazard.closed_at:
            state += f"（{timezone.localtime(hazard.closed_at):%Y-%m-%d}）"
        table.rows.append(
            [
                hazard.enterprise.name,
                hazard.code,
                hazard.description,
                hazard.grade_label,
                hazard.due_date,
                (ref_date - hazard.due_date).days,
                listed,
                hazard.responsible_person,
                state,
            ]
        )
    _note_cut(table, total)
    return table


def _overdue_alert_table(enterprises, reference_at: datetime) -> Table:
    """Alerts that at ``reference_at`` were past their acknowledgement deadline unacknowledged, or past
    their response deadline without the required response; handled later ones are still listed."""
    from alerts.choices import ANNUNCIATED_STATES, REQUIRED_RESPONSE, UNACKED_STATES, AlertLevel, ResponseKind
    from alerts.models import Alert

    table = Table(
        key="overdue_alerts",
        title=_("超时未处置报警"),
        columns=[
            Column(_("企业名称"), width=26),
            Column(_("报警内容"), width=32),
            Column(_("级别"), width=14),
            Column(_("报警时间"), "datetime", 17),
            Column(_("超时事项"), width=22),
            Column(_("期限"), "datetime", 17),
            Column(_("超时(小时)"), "float", 10),
            Column(_("当前状态"), width=14),
        ],
        note=_(
            "截至统计时点已超过确认期限仍未确认、或超过响应期限仍未响应的报警；超时时长计至统计时点。"
            "之后已处置的报警仍列出，并注明当前状态。"
        ),
        empty_text=_("没有超时未处置的报警。"),
    )
    responding_levels = [level for level, kind in REQUIRED_RESPONSE.items() if kind]
    # Unacknowledged at the reference: still unacknowledged (and annunciating), or acknowledged later.
    unacked = Q(ack_due_at__lte=reference_at) & (Q(state__in=UNACKED_STATES) | Q(acknowledged_at__gte=reference_at))
    unresponded = Q(level__in=responding_levels, response_due_at__lte=reference_at) & (
        Q(responded_at__isnull=True, state__in=ANNUNCIATED_STATES) | Q(responded_at__gte=reference_at)
    )
    qs = (
        Alert.objects.filter(enterprise__in=enterprises.values("pk"))
        .filter(unacked | unresponded, raised_at__lt=reference_at)
        .select_related("enterprise")
        .order_by("raised_at", "id")
    )
    alerts, total = _first_rows(qs)
    for alert in alerts:
        was_unacked = alert.ack_due_at <= reference_at and (
            alert.state in UNACKED_STATES or (alert.acknowledged_at and alert.acknowledged_at >= reference_at)
        )
        if was_unacked:
            what, due = _("超时未确认"), alert.ack_due_at
        else:
            kind = REQUIRED_RESPONSE.get(alert.level)
            what = _("超时未响应（%(kind)s）") % {"kind": ResponseKind(kind).label}
            due = alert.response_due_at
        table.rows.append(
            [
                alert.enterprise.name,
                alert.message,
                str(AlertLevel(alert.level).label),
                alert.raised_at,
                what,
                due,
                round((reference_at - due).total_seconds() / 3600, 1),
                str(alert.get_state_display()),
            ]
        )
    _note_cut(table, total)
    return table


def _first_rows(qs) -> tuple[list, int]:
    """Up to MAX_OVERDUE_ROWS rows and the total, counted only when there are more."""
    rows = list(qs[: MAX_OVERDUE_ROWS + 1])
    if len(rows) <= MAX_OVERDUE_ROWS:
        return rows, len(rows)
    return rows[:MAX_OVERDUE_ROWS], qs.count()


def _note_cut(table: Table, total: int) -> None:
    if total > len(table.rows):
        table.note += " " + _("共 %(total)d 条，仅列出前 %(shown)d 条。") % {"total": total, "shown": len(table.rows)}
