"""Risk features of enterprises at a point in time, as one pandas DataFrame row per enterprise.

Everything dynamic is computed from rows strictly before ``as_of`` (the "no leakage" rule), so the
same code builds the monthly training snapshots and today's grading input. The event tables are
read once per call with a few queries (never one query per enterprise) and aggregated in numpy:
``extract_snapshots`` reads them once for all snapshot dates.

Other apps' models are imported inside functions: the registry app must not import them at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from django.db import connection
from django.utils import timezone

from enterprises.risk.factors import FEATURE_NAMES, FEATURES, feature_label  # noqa: F401 (re-exported)

WINDOW_DAYS = 180  # behaviour window before as_of
RECENT_DAYS = 30  # a recent trend next to the long window
LABEL_DAYS = 90  # a serious event within this many days after as_of is a positive label
TIMELINESS_HOURS = 24  # a channel is "timely" when it delivered data in the last day before as_of

NEVER = np.iinfo(np.int64).max  # a timestamp that has not happened (open hazard, unacknowledged alert)
NS_PER_DAY = 86_400 * 10**9

SCALE_ORDINAL = {"micro": 0, "small": 1, "medium": 2, "large": 3}
CREDIT_ORDINAL = {"A": 0, "B": 1, "C": 2, "D": 3}
DEFAULT_CREDIT = 1  # no credit record yet: treated as B (基本守信)

LABEL = "label"


def _ns(values) -> np.ndarray:
    """Timestamps (ISO text from the database, or datetimes; None = never) -> int64 ns since the epoch."""
    stamps = pd.DatetimeIndex(pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601"))
    out = stamps.as_unit("ns").asi8.copy()
    out[stamps.isna()] = NEVER
    return out


def _days(values) -> np.ndarray:
    """Dates (ISO text or dates; None = never) -> int64 days since the epoch; NEVER for None."""
    stamps = pd.DatetimeIndex(pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601"))
    out = stamps.as_unit("ns").asi8 // NS_PER_DAY
    out[stamps.isna()] = NEVER
    return out


def _as_ns(moment: datetime) -> int:
    return int(pd.Timestamp(moment).tz_convert("UTC").value)


def _as_day(moment: datetime) -> int:
    """The local calendar day of a moment (dates in the database are local dates)."""
    local = timezone.localtime(moment).date()
    return int(np.datetime64(local, "D").astype(np.int64))


def _rows(qs, fields: list[str]) -> list[tuple]:
    """The rows of a values_list query through a raw cursor: no model or dict per row.

    Date and time columns come back as ISO text: the driver's per-value datetime objects cost
    more than the query (3M timestamps: 16 s), pandas parses the text in bulk.
    """
    from django.db.models import DateField, TextField
    from django.db.models.functions import Cast

    casts, names = {}, []
    for name in fields:
        field = qs.model._meta.get_field(name.split("__")[0]) if "__" not in name else None
        if field is not None and isinstance(field, DateField):  # DateTimeField is a DateField too
            casts[f"{name}_iso"] = Cast(name, output_field=TextField())
            names.append(f"{name}_iso")
        else:
            names.append(name)
    sql, params = qs.annotate(**casts).values_list(*names).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _frame(qs, fields: list[str]) -> pd.DataFrame:
    return pd.DataFrame.from_records(_rows(qs, fields), columns=fields)


@dataclass
class Events:
    """Everything needed for any as_of in [start, end): registry plus behaviour rows, as numpy arrays."""

    registry: pd.DataFrame  # index: enterprise id
    index: pd.Index  # enterprise ids, the row order of every output frame
    hazards: dict
    alerts: dict
    inspections: dict
    accidents: dict
    credit: pd.DataFrame  # enterprise position, at (ns), grade ordinal; sorted by at
    credit_fallback: np.ndarray  # current grade ordinal for enterprises without any history, else -1
    devices: dict
    status_changes: pd.DataFrame  # device position, enterprise position, at (ns), online (bool); sorted by at
    channels_per_ent: np.ndarray
    aggregates: pd.DataFrame  # enterprise position, channel id, minute (ns)


def _positions(index: pd.Index, ids) -> np.ndarray:
    return index.get_indexer(pd.Index(np.asarray(ids, dtype=np.int64)))


def load_events(enterprises, start: datetime, end: datetime) -> Events:
    """Read registry and behaviour rows needed for snapshots with as_of in [start, end].

    ``enterprises``: a queryset of Enterprise. ``end`` may be after as_of (labels need the future).
    """
    from alerts.models import Alert
    from devices.models import Channel, Device, DeviceStatusChange, ReadingAggregate
    from enforcement.models import CreditEvent, CreditScore, CreditScoreChange, Inspection
    from enterprises.models import HazardousSubstance, MajorHazardInstallation
    from hazards.models import Hazard, HazardTransition

    ids_qs = enterprises.order_by().values("pk")
    registry = _frame(
        enterprises.order_by("pk"),
        ["id", "high_risk_sector", "scale", "employees", "is_key", "standardisation_level"],
    ).set_index("id")
    index = registry.index
    n = len(index)
    lo = start - timedelta(days=WINDOW_DAYS + 1)

    mh = _frame(MajorHazardInstallation.objects.filter(enterprise__in=ids_qs).order_by(), ["enterprise_id", "grade"])
    subs = _frame(
        HazardousSubstance.objects.filter(installation__enterprise__in=ids_qs).order_by(),
        ["installation__enterprise_id"],
    )
    registry["major_hazard_count"] = np.bincount(_positions(index, mh["enterprise_id"]), minlength=n)
    level = np.zeros(n)
    if len(mh):
        np.maximum.at(level, _positions(index, mh["enterprise_id"]), 5 - mh["grade"].to_numpy())
    registry["major_hazard_level"] = level
    registry["substance_count"] = np.bincount(_positions(index, subs["installation__enterprise_id"]), minlength=n)

    # Hazards reported before the end and not closed before the earliest window.
    hz = _frame(
        Hazard.objects.filter(enterprise__in=ids_qs, reported_at__lt=end).exclude(closed_at__lt=lo).order_by(),
        ["id", "enterprise_id", "reported_at", "closed_at", "due_date", "grade", "closed_on_time"],
    )
    dismissed = dict(
        _rows(
            HazardTransition.objects.filter(
                hazard__enterprise__in=ids_qs, to_status="dismissed", hazard__reported_at__lt=end
            ).order_by(),
            ["hazard_id", "at"],
        )
    )
    hazards = {
        "ent": _positions(index, hz["enterprise_id"]),
        "reported": _ns(hz["reported_at"]),
        "closed": _ns(hz["closed_at"]),
        "dismissed": _ns(hz["id"].map(dismissed)),
        "due": _days(hz["due_date"]),
        "major": (hz["grade"] == "major").to_numpy(),
        "late": (hz["closed_on_time"] == False).to_numpy(),  # noqa: E712 (None is "not closed")
        "extensions": _extensions(ids_qs, hz["id"], end),
    }

    al = _frame(
        Alert.objects.filter(enterprise__in=ids_qs, raised_at__gte=lo, raised_at__lt=end).order_by(),
        ["enterprise_id", "raised_at", "level", "ack_due_at", "acknowledged_at"],
    )
    alerts = {
        "ent": _positions(index, al["enterprise_id"]),
        "raised": _ns(al["raised_at"]),
        "level": al["level"].to_numpy(dtype=np.int64),
        "ack_due": _ns(al["ack_due_at"]),
        "acked": _ns(al["acknowledged_at"]),
    }

    ins = _frame(
        Inspection.objects.filter(
            enterprise__in=ids_qs, status="completed", date__gte=lo.date(), date__lt=end.date() + timedelta(days=1)
        ).order_by(),
        ["enterprise_id", "date", "outcome"],
    )
    inspections = {
        "ent": _positions(index, ins["enterprise_id"]),
        "day": _days(ins["date"]),
        "penalty": ins["outcome"].isin(["penalty", "suspension"]).to_numpy(),
        "rectification": (ins["outcome"] == "rectification").to_numpy(),
    }

    acc = _frame(
        CreditEvent.objects.filter(
            enterprise__in=ids_qs,
            kind__startswith="accident",
            occurred_on__gte=lo.date(),
            occurred_on__lt=end.date() + timedelta(days=1),
        ).order_by(),
        ["enterprise_id", "occurred_on"],
    )
    accidents = {"ent": _positions(index, acc["enterprise_id"]), "day": _days(acc["occurred_on"])}

    cc = _frame(
        CreditScoreChange.objects.filter(enterprise__in=ids_qs, at__lt=end).order_by(),
        ["enterprise_id", "at", "new_grade"],
    )
    credit = pd.DataFrame(
        {
            "ent": _positions(index, cc["enterprise_id"]),
            "at": _ns(cc["at"]),
            "grade": cc["new_grade"].map(CREDIT_ORDINAL).fillna(DEFAULT_CREDIT).to_numpy(dtype=np.int64),
        }
    ).sort_values("at", kind="stable")
    # Enterprises without any credit history: their current grade is the only information there is.
    current = _frame(CreditScore.objects.filter(enterprise__in=ids_qs).order_by(), ["enterprise_id", "grade"])
    fallback = np.full(n, -1, dtype=np.int64)
    if len(current):
        pos = _positions(index, current["enterprise_id"])
        fallback[pos] = current["grade"].map(CREDIT_ORDINAL).fillna(DEFAULT_CREDIT).to_numpy(dtype=np.int64)
    if len(credit):
        fallback[np.unique(credit["ent"].to_numpy())] = -1

    dv = _frame(Device.objects.filter(enterprise__in=ids_qs).order_by(), ["id", "enterprise_id", "created_at"])
    device_index = pd.Index(dv["id"].to_numpy(dtype=np.int64))
    devices = {"ent": _positions(index, dv["enterprise_id"]), "created": _ns(dv["created_at"])}
    sc = _frame(
        DeviceStatusChange.objects.filter(device__enterprise__in=ids_qs, at__lt=end).order_by(),
        ["device_id", "at", "new"],
    )
    dev_pos = device_index.get_indexer(pd.Index(sc["device_id"].to_numpy(dtype=np.int64)))
    status_changes = pd.DataFrame(
        {
            "dev": dev_pos,
            "ent": devices["ent"][dev_pos] if len(sc) else np.zeros(0, dtype=np.int64),
            "at": _ns(sc["at"]),
            "online": (sc["new"] == "online").to_numpy(),
        }
    ).sort_values("at", kind="stable")
    ch = _frame(
        Channel.objects.filter(device__enterprise__in=ids_qs, enabled=True, device__enabled=True)
        .exclude(register_type="coil")
        .order_by(),
        ["device__enterprise_id"],
    )
    channels_per_ent = np.bincount(_positions(index, ch["device__enterprise_id"]), minlength=n)
    ag = _frame(
        ReadingAggregate.objects.filter(
            channel__device__enterprise__in=ids_qs,
            channel__enabled=True,
            minute__gte=start - timedelta(hours=TIMELINESS_HOURS),
            minute__lt=end,
            count__gt=0,
        ).order_by(),
        ["channel__device__enterprise_id", "channel_id", "minute"],
    )
    aggregates = pd.DataFrame(
        {
            "ent": _positions(index, ag["channel__device__enterprise_id"]),
            "channel": ag["channel_id"].to_numpy(dtype=np.int64),
            "minute": _ns(ag["minute"]),
        }
    )
    return Events(
        registry=registry,
        index=index,
        hazards=hazards,
        alerts=alerts,
        inspections=inspections,
        accidents=accidents,
        credit=credit,
        credit_fallback=fallback,
        devices=devices,
        status_changes=status_changes,
        channels_per_ent=channels_per_ent,
        aggregates=aggregates,
    )


def _extensions(ids_qs, hazard_ids: pd.Series, end: datetime) -> pd.DataFrame:
    """Approved deadline extensions (hazard position, decided at, the deadline before), by decision time.

    ``Hazard.due_date`` is today's deadline; at an earlier as_of, an extension decided later had
    not happened yet and the old deadline applied.
    """
    from hazards.models import ExtensionRequest

    ext = _frame(
        ExtensionRequest.objects.filter(
            hazard__enterprise__in=ids_qs, status="approved", decided_at__isnull=False, hazard__reported_at__lt=end
        ).order_by(),
        ["hazard_id", "decided_at", "old_deadline"],
    )
    position = pd.Index(hazard_ids.to_numpy(dtype=np.int64)).get_indexer(ext["hazard_id"].to_numpy(dtype=np.int64))
    frame = pd.DataFrame({"hazard": position, "decided": _ns(ext["decided_at"]), "old_due": _days(ext["old_deadline"])})
    return frame[frame["hazard"] >= 0].sort_values("decided", kind="stable")


def _due_at(h: dict, t: int) -> np.ndarray:
    """Each hazard's deadline as it stood at ``t``: before the first extension decided at or after t."""
    due = h["due"]
    later = h["extensions"][h["extensions"]["decided"].to_numpy() >= t]
    if not len(later):
        return due
    first = later.drop_duplicates("hazard", keep="first")
    due = due.copy()
    due[first["hazard"].to_numpy()] = first["old_due"].to_numpy()
    return due


def _count(ent: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(ent[mask], minlength=n).astype(np.float64)


def features_at(ev: Events, as_of: datetime) -> pd.DataFrame:
    """One row per enterprise: the registry plus behaviour strictly before ``as_of``."""
    n = len(ev.index)
    t = _as_ns(as_of)
    t0 = t - WINDOW_DAYS * NS_PER_DAY
    day = _as_day(as_of)
    day0 = day - WINDOW_DAYS
    reg = ev.registry
    out = pd.DataFrame(index=ev.index)
    out.index.name = "enterprise_id"
    out["high_risk_sector"] = (reg["high_risk_sector"] != "").astype(float)
    out["chemicals"] = reg["high_risk_sector"].isin(["chemicals", "hazardous_storage"]).astype(float)
    out["major_hazard_count"] = reg["major_hazard_count"].astype(float)
    out["major_hazard_level"] = reg["major_hazard_level"].astype(float)
    out["substance_count"] = reg["substance_count"].astype(float)
    out["scale"] = reg["scale"].map(SCALE_ORDINAL).fillna(1).astype(float)
    out["log_employees"] = np.log1p(reg["employees"].astype(float))
    out["is_key"] = reg["is_key"].astype(float)
    out["no_standardisation"] = (reg["standardisation_level"] == "").astype(float)

    h = ev.hazards
    reported_before = h["reported"] < t
    in_window = reported_before & (h["reported"] >= t0)
    open_ = reported_before & (h["closed"] >= t) & (h["dismissed"] >= t)
    out["hazards_found"] = _count(h["ent"], in_window, n)
    out["hazards_found_recent"] = _count(h["ent"], reported_before & (h["reported"] >= t - RECENT_DAYS * NS_PER_DAY), n)
    out["major_hazards_found"] = _count(h["ent"], in_window & h["major"], n)
    out["hazards_open"] = _count(h["ent"], open_, n)
    out["hazards_overdue"] = _count(h["ent"], open_ & (_due_at(h, t) < day), n)
    out["major_hazards_open"] = _count(h["ent"], open_ & h["major"], n)
    out["hazards_closed_late"] = _count(h["ent"], (h["closed"] < t) & (h["closed"] >= t0) & h["late"], n)

    a = ev.alerts
    aw = (a["raised"] < t) & (a["raised"] >= t0)
    out["alerts_level1"] = _count(a["ent"], aw & (a["level"] == 1), n)
    out["alerts_level2"] = _count(a["ent"], aw & (a["level"] == 2), n)
    out["alerts_other"] = _count(a["ent"], aw & (a["level"] >= 3), n)
    # Past its acknowledgement deadline before as_of and not acknowledged by then.
    late = aw & (a["ack_due"] < t) & (a["acked"] > a["ack_due"])
    out["alerts_late_ack"] = _count(a["ent"], late, n)

    credit = np.full(n, DEFAULT_CREDIT, dtype=np.float64)
    known = ev.credit[ev.credit["at"].to_numpy() < t]
    if len(known):
        last = known.drop_duplicates("ent", keep="last")
        credit[last["ent"].to_numpy()] = last["grade"].to_numpy()
    fallback = ev.credit_fallback >= 0
    credit[fallback] = ev.credit_fallback[fallback]
    out["credit_grade"] = credit

    i = ev.inspections
    iw = (i["day"] < day) & (i["day"] >= day0)
    out["inspections"] = _count(i["ent"], iw, n)
    out["penalties"] = _count(i["ent"], iw & i["penalty"], n)
    out["rectification_orders"] = _count(i["ent"], iw & i["rectification"], n)
    acc = ev.accidents
    out["accidents"] = _count(acc["ent"], (acc["day"] < day) & (acc["day"] >= day0), n)

    d = ev.devices
    existing = d["created"] < t
    device_count = _count(d["ent"], existing, n)
    out["has_devices"] = (device_count > 0).astype(float)
    sc = ev.status_changes[ev.status_changes["at"].to_numpy() < t]
    offline_rate = np.zeros(n)
    if len(sc):
        last = sc.drop_duplicates("dev", keep="last")
        last = last[existing[last["dev"].to_numpy()]]
        known_count = np.bincount(last["ent"].to_numpy(), minlength=n)
        online = np.bincount(last["ent"].to_numpy(), weights=last["online"].to_numpy(dtype=float), minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            offline_rate = np.where(known_count > 0, 1.0 - online / np.maximum(known_count, 1), 0.0)
    out["device_offline_rate"] = offline_rate
    ag = ev.aggregates
    recent = ag[(ag["minute"].to_numpy() < t) & (ag["minute"].to_numpy() >= t - TIMELINESS_HOURS * 3600 * 10**9)]
    timely = recent.drop_duplicates("channel")["ent"].to_numpy()
    timely_count = np.bincount(timely, minlength=n).astype(float)
    channels = ev.channels_per_ent.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        untimely = np.where(
            (channels > 0) & (device_count > 0), 1.0 - np.minimum(timely_count, channels) / channels, 0.0
        )
    out["data_untimely_rate"] = untimely
    return out[FEATURE_NAMES]


def labels_at(ev: Events, as_of: datetime) -> pd.Series:
    """1 when a serious event follows in [as_of, as_of + LABEL_DAYS): a major hazard, a level-1 alert, a penalty."""
    n = len(ev.index)
    t = _as_ns(as_of)
    t1 = t + LABEL_DAYS * NS_PER_DAY
    day = _as_day(as_of)
    h, a, i = ev.hazards, ev.alerts, ev.inspections
    events = (
        _count(h["ent"], (h["reported"] >= t) & (h["reported"] < t1) & h["major"], n)
        + _count(a["ent"], (a["raised"] >= t) & (a["raised"] < t1) & (a["level"] == 1), n)
        + _count(i["ent"], (i["day"] >= day) & (i["day"] < day + LABEL_DAYS) & i["penalty"], n)
    )
    return pd.Series((events > 0).astype(np.int64), index=ev.index, name=LABEL)


def default_enterprises():
    """Graded enterprises: every one in the registry except closed ones."""
    from enterprises.models import Enterprise

    return Enterprise.objects.exclude(operating_status="closed")


def extract_features(enterprises=None, as_of: datetime | None = None) -> pd.DataFrame:
    """Features of ``enterprises`` (a queryset; default: all not closed) at ``as_of`` (default: now)."""
    as_of = as_of or timezone.now()
    enterprises = default_enterprises() if enterprises is None else enterprises
    return features_at(load_events(enterprises, as_of, as_of), as_of)


def extract_snapshots(as_ofs: list[datetime], enterprises=None, *, with_labels: bool = True) -> pd.DataFrame:
    """Features (and labels) of every enterprise at every as_of, stacked; columns ``as_of`` and ``enterprise_id``."""
    if not as_ofs:
        return pd.DataFrame(columns=["as_of", "enterprise_id", *FEATURE_NAMES, LABEL])
    enterprises = default_enterprises() if enterprises is None else enterprises
    end = max(as_ofs) + (timedelta(days=LABEL_DAYS) if with_labels else timedelta(0))
    ev = load_events(enterprises, min(as_ofs), end)
    frames = []
    for as_of in sorted(as_ofs):
        frame = features_at(ev, as_of)
        if with_labels:
            frame[LABEL] = labels_at(ev, as_of)
        frame.insert(0, "as_of", pd.Timestamp(as_of))
        frames.append(frame.reset_index())
    return pd.concat(frames, ignore_index=True)


def month_starts(first: datetime, last: datetime) -> list[datetime]:
    """Local midnights of the 1st of each month in [first, last]."""
    tz = timezone.get_current_timezone()
    local = timezone.localtime(first, tz)
    year, month = local.year, local.month
    if (local.day, local.hour, local.minute, local.second, local.microsecond) != (1, 0, 0, 0, 0):
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    out = []
    while True:
        moment = timezone.make_aware(datetime(year, month, 1), tz)
        if moment > last:
            return out
        out.append(moment)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
