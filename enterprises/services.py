"""Every write to the registry: enterprises, licences, major hazard installations and their substances.

Each service validates, writes, records an ``EnterpriseChange`` (the dossier timeline, with field
diffs and the door it came through) and an audit entry, all in one transaction. Views, the API,
the admin and the import command call these and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal, InvalidOperation

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from enterprises import uscc
from enterprises.models import (
    Enterprise,
    EnterpriseChange,
    HazardousSubstance,
    Licence,
    MajorHazardInstallation,
)
from regulator import scoping
from regulator.audit import record_event
from regulator.fields import EncryptedTextField, unreadable_fields
from regulator.security.masking import mask_value, read_field

Source = EnterpriseChange.Source

# Fields a user may set on an enterprise (the rest is derived or managed elsewhere).
ENTERPRISE_FIELDS = [
    "uscc",
    "name",
    "former_names",
    "legal_representative",
    "principal_name",
    "principal_phone",
    "safety_officer_name",
    "safety_officer_phone",
    "safety_manager_name",
    "safety_manager_phone",
    "address",
    "region",
    "park",
    "longitude",
    "latitude",
    "industry",
    "scale",
    "employees",
    "standardisation_level",
    "is_key",
    "high_risk_sector",
    "operating_status",
    "risk_grade",
]
LICENCE_FIELDS = ["licence_type", "number", "scope", "issued_on", "expires_on"]
INSTALLATION_FIELDS = [
    "name",
    "code",
    "people_within_500m",
    "process_parameters",
    "custodian_main",
    "custodian_technical",
    "custodian_operational",
]
SUBSTANCE_FIELDS = ["name", "cas_number", "substance_class", "actual_quantity", "critical_quantity", "beta"]


# --- helpers ---------------------------------------------------------------------------------


def _is_encrypted(model, name: str) -> bool:
    return isinstance(model._meta.get_field(name), EncryptedTextField)


def _display(obj, name: str):
    """A JSON-friendly, human-readable value of one field for the change timeline."""
    field = obj._meta.get_field(name)
    if isinstance(field, EncryptedTextField):
        return mask_value(field, read_field(obj, name))
    value = getattr(obj, name)
    if value is None:
        return None
    if field.is_relation:
        return str(value)
    if field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if isinstance(value, Decimal):
        return str(value.normalize()) if value == value.to_integral() else str(value)
    if isinstance(value, list | dict | bool | int | float | str):
        return value
    return str(value)


def _comparable(obj, name: str):
    field = obj._meta.get_field(name)
    if field.is_relation:
        return getattr(obj, field.attname)
    if isinstance(field, EncryptedTextField):
        # An undecryptable value compares as 不可用: unchanged unless the user replaces it.
        return read_field(obj, name) or ""
    value = getattr(obj, name)
    if isinstance(value, Decimal):
        return value.normalize()
    return value


def _snapshot(obj, fields: Iterable[str]) -> dict:
    return {name: _comparable(obj, name) for name in fields}


def _diff(obj, before: dict, fields: Iterable[str]) -> dict:
    changes = {}
    for name in fields:
        if _comparable(obj, name) != before.get(name):
            field = obj._meta.get_field(name)
            old = before.get(name)
            changes[name] = {
                "label": str(field.verbose_name),
                "old": _display_value(obj, name, old),
                "new": _display(obj, name),
            }
    return changes


def _display_value(obj, name: str, comparable):
    """Display a value captured by ``_snapshot`` (FKs were captured as ids)."""
    field = obj._meta.get_field(name)
    if comparable is None:
        return None
    if isinstance(field, EncryptedTextField):
        return mask_value(field, comparable)
    if field.is_relation:
        target = field.related_model.objects.filter(pk=comparable).first()
        return str(target) if target else comparable
    if field.choices:
        return str(dict(field.flatchoices).get(comparable, comparable))
    if isinstance(comparable, Decimal):
        return str(comparable)
    if isinstance(comparable, date):
        return comparable.isoformat()
    return comparable


def _check_region_writable(user, region) -> None:
    """Regulator staff write only inside their jurisdiction; ``user=None`` is the system (import)."""
    if user is None or user.is_superuser:
        return
    if not user.is_regulator:
        raise PermissionDenied(_("只有监管部门人员可以维护企业档案"))
    if region is not None and region.pk not in scoping.jurisdiction_region_ids(user):
        raise ValidationError({"region": _("所选区划不在您的辖区内")})


def _check_enterprise_writable(user, enterprise: Enterprise) -> None:
    if user is None or user.is_superuser:
        return
    if not user.is_regulator:
        raise PermissionDenied(_("只有监管部门人员可以维护企业档案"))
    if not scoping.scope(Enterprise.objects.filter(pk=enterprise.pk), user).exists():
        raise PermissionDenied(_("该企业不在您的辖区内"))


def _log_change(*, enterprise, user, source, action, summary, changes=None) -> EnterpriseChange:
    return EnterpriseChange.objects.create(
        enterprise=enterprise,
        user=user if user is not None and user.pk else None,
        source=source,
        action=action,
        summary=summary[:255],
        changes=changes or {},
    )


def _apply(obj, data: dict, allowed: list[str]) -> None:
    unknown = set(data) - set(allowed)
    if unknown:
        raise ValidationError(_("不允许修改的字段：%(f)s") % {"f": "、".join(sorted(unknown))})
    for name, value in data.items():
        setattr(obj, name, value)


def _normalise_enterprise_data(data: dict) -> dict:
    data = dict(data)
    if "uscc" in data:
        try:
            data["uscc"] = uscc.validate(data["uscc"] or "")
        except ValidationError as exc:
            raise ValidationError({"uscc": exc.messages}) from exc
    if "former_names" in data:
        names = data["former_names"] or []
        if isinstance(names, str):
            names = names.replace(";", "；").replace("，", "；").replace(",", "；").split("；")
        data["former_names"] = [str(n).strip() for n in names if str(n).strip()]
    for key in ("name", "address", "legal_representative", "principal_name", "safety_officer_name"):
        if isinstance(data.get(key), str):
            data[key] = data[key].strip()
    for key in ("principal_phone", "safety_officer_phone", "safety_manager_phone"):
        if key in data:
            data[key] = (data[key] or "").strip().replace(" ", "").replace("-", "")
    if data.get("park") == "":
        data["park"] = None
    return data


# --- enterprises -----------------------------------------------------------------------------


@transaction.atomic
def enterprise_create(*, user, data: dict, source: str = Source.UI) -> Enterprise:
    data = _normalise_enterprise_data(data)
    _check_region_writable(user, data.get("region"))
    enterprise = Enterprise()
    _apply(enterprise, data, ENTERPRISE_FIELDS)
    if "high_risk_sector" not in data and enterprise.industry_id:
        enterprise.high_risk_sector = enterprise.industry.high_risk_sector
    enterprise.full_clean()
    enterprise.save()
    _log_change(
        enterprise=enterprise,
        user=user,
        source=source,
        action="created",
        summary=_("建档：%(name)s") % {"name": enterprise.name},
    )
    record_event(
        event="enterprise.created", user=user, obj=enterprise, detail={"source": source, "uscc": enterprise.uscc}
    )
    return enterprise


@transaction.atomic
def enterprise_update(*, enterprise: Enterprise, user, data: dict, source: str = Source.UI) -> Enterprise:
    enterprise = (
        Enterprise.objects.select_for_update(of=("self",))
        .select_related("region", "park", "industry")
        .get(pk=enterprise.pk)
    )
    _check_enterprise_writable(user, enterprise)
    data = _normalise_enterprise_data(data)
    if "region" in data and data["region"] is not None and data["region"].pk != enterprise.region_id:
        _check_region_writable(user, data["region"])
    before = _snapshot(enterprise, ENTERPRISE_FIELDS)
    old_name = enterprise.name
    _apply(enterprise, data, ENTERPRISE_FIELDS)
    if "industry" in data and "high_risk_sector" not in data and enterprise.industry_id != before["industry"]:
        enterprise.high_risk_sector = enterprise.industry.high_risk_sector
    if enterprise.name != old_name and old_name not in (enterprise.former_names or []) and "former_names" not in data:
        # A renamed enterprise keeps its old name searchable (曾用名).
        enterprise.former_names = [*(enterprise.former_names or []), old_name]
    enterprise.full_clean(exclude=unreadable_fields(enterprise))
    changes = _diff(enterprise, before, ENTERPRISE_FIELDS)
    if not changes:
        return enterprise
    enterprise.save()
    labels = "、".join(c["label"] for c in changes.values())
    _log_change(
        enterprise=enterprise,
        user=user,
        source=source,
        action="updated",
        summary=_("修改：%(fields)s") % {"fields": labels},
        changes=changes,
    )
    record_event(
        event="enterprise.updated",
        user=user,
        obj=enterprise,
        detail={"source": source, "fields": sorted(changes)},
    )
    return enterprise


# --- licences --------------------------------------------------------------------------------


@transaction.atomic
def licence_create(*, enterprise: Enterprise, user, data: dict, source: str = Source.UI) -> Licence:
    _check_enterprise_writable(user, enterprise)
    licence = Licence(enterprise=enterprise)
    _apply(licence, data, LICENCE_FIELDS)
    licence.full_clean()
    licence.save()
    _log_change(
        enterprise=enterprise,
        user=user,
        source=source,
        action="licence_added",
        summary=_("新增许可证：%(l)s，有效期至 %(d)s") % {"l": licence, "d": licence.expires_on},
    )
    record_event(event="licence.created", user=user, obj=licence, detail={"source": source})
    return licence


@transaction.atomic
def licence_update(*, licence: Licence, user, data: dict, source: str = Source.UI) -> Licence:
    licence = Licence.objects.select_for_update(of=("self",)).select_related("enterprise").get(pk=licence.pk)
    _check_enterprise_writable(user, licence.enterprise)
    before = _snapshot(licence, LICENCE_FIELDS)
    _apply(licence, data, LICENCE_FIELDS)
    licence.full_clean()
    changes = _diff(licence, before, LICENCE_FIELDS)
    if not changes:
        return licence
    licence.save()
    _log_change(
        enterprise=licence.enterprise,
        user=user,
        source=source,
        action="licence_updated",
        summary=_("修改许可证 %(l)s：%(f)s") % {"l": licence, "f": "、".join(c["label"] for c in changes.values())},
        changes=changes,
    )
    record_event(event="licence.updated", user=user, obj=licence, detail={"source": source, "fields": sorted(changes)})
    return licence


@transaction.atomic
def licence_delete(*, licence: Licence, user, source: str = Source.UI) -> None:
    _check_enterprise_writable(user, licence.enterprise)
    label = str(licence)
    enterprise = licence.enterprise
    record_event(event="licence.deleted", user=user, obj=licence, detail={"source": source})
    licence.delete()
    _log_change(
        enterprise=enterprise,
        user=user,
        source=source,
        action="licence_deleted",
        summary=_("删除许可证：%(l)s") % {"l": label},
    )


# --- major hazard installations --------------------------------------------------------------


def _build_substance(installation, data: dict) -> HazardousSubstance:
    substance = HazardousSubstance(installation=installation)
    unknown = set(data) - set(SUBSTANCE_FIELDS) - {"id"}
    if unknown:
        raise ValidationError(_("不允许的危险化学品字段：%(f)s") % {"f": "、".join(sorted(unknown))})
    for name in SUBSTANCE_FIELDS:
        if name in data:
            setattr(substance, name, data[name])
    for name in ("actual_quantity", "critical_quantity", "beta"):
        value = getattr(substance, name)
        if value in ("", None):
            setattr(substance, name, None)
            continue
        try:
            setattr(substance, name, Decimal(str(value)))
        except InvalidOperation as exc:
            raise ValidationError({name: _("“%(v)s”不是有效的数字") % {"v": value}}) from exc
    if substance.beta is None:
        substance.beta = HazardousSubstance.default_beta(substance.substance_class, substance.name)
    substance.full_clean(exclude=["installation"])
    return substance


def installation_recompute(installation: MajorHazardInstallation) -> MajorHazardInstallation:
    """Recompute R and the grade from the stored substances (GB 18218-2018 4.2)."""
    r_value, grade, _s = installation.compute(list(installation.substances.all()))
    if installation.r_value != r_value or installation.grade != grade:
        installation.r_value, installation.grade = r_value, grade
        installation.save(update_fields=["r_value", "grade"])
    return installation


def _replace_substances(installation, substances: list[dict]) -> None:
    built = []
    errors = {}
    for index, item in enumerate(substances, start=1):
        try:
            built.append(_build_substance(installation, item))
        except ValidationError as exc:
            errors[f"substances[{index}]"] = exc.messages
    if errors:
        raise ValidationError(errors)
    installation.substances.all().delete()
    HazardousSubstance.objects.bulk_create(built)


@transaction.atomic
def installation_create(
    *, enterprise: Enterprise, user, data: dict, substances: list[dict] | None = None, source: str = Source.UI
) -> MajorHazardInstallation:
    _check_enterprise_writable(user, enterprise)
    installation = MajorHazardInstallation(enterprise=enterprise)
    _apply(installation, data, INSTALLATION_FIELDS)
    installation.full_clean()
    installation.save()
    if substances:
        _replace_substances(installation, substances)
    installation_recompute(installation)
    _log_change(
        enterprise=enterprise,
        user=user,
        source=source,
        action="hazard_added",
        summary=_("新增重大危险源：%(n)s（%(g)s，R=%(r)s）")
        % {"n": installation.name, "g": installation.get_grade_display(), "r": installation.r_value},
    )
    record_event(event="major_hazard.created", user=user, obj=installation, detail={"source": source})
    return installation


@transaction.atomic
def installation_update(
    *,
    installation: MajorHazardInstallation,
    user,
    data: dict,
    substances: list[dict] | None = None,
    source: str = Source.UI,
) -> MajorHazardInstallation:
    """Update the installation; ``substances`` (when given) replaces the whole list. R is recomputed."""
    installation = (
        MajorHazardInstallation.objects.select_for_update(of=("self",))
        .select_related("enterprise")
        .get(pk=installation.pk)
    )
    _check_enterprise_writable(user, installation.enterprise)
    tracked = [*INSTALLATION_FIELDS, "r_value", "grade"]
    before = _snapshot(installation, tracked)
    _apply(installation, data, INSTALLATION_FIELDS)
    installation.full_clean(exclude=unreadable_fields(installation))
    installation.save()
    if substances is not None:
        _replace_substances(installation, substances)
    installation_recompute(installation)
    changes = _diff(installation, before, tracked)
    if substances is not None:
        changes["substances"] = {
            "label": str(_("危险化学品")),
            "old": None,
            "new": [f"{s['name']} {s.get('actual_quantity')}t" for s in substances],
        }
    if changes:
        _log_change(
            enterprise=installation.enterprise,
            user=user,
            source=source,
            action="hazard_updated",
            summary=_("修改重大危险源 %(n)s：%(g)s，R=%(r)s")
            % {"n": installation.name, "g": installation.get_grade_display(), "r": installation.r_value},
            changes=changes,
        )
        record_event(
            event="major_hazard.updated",
            user=user,
            obj=installation,
            detail={"source": source, "fields": sorted(changes)},
        )
    return installation


@transaction.atomic
def installation_delete(*, installation: MajorHazardInstallation, user, source: str = Source.UI) -> None:
    _check_enterprise_writable(user, installation.enterprise)
    enterprise, name = installation.enterprise, installation.name
    record_event(event="major_hazard.deleted", user=user, obj=installation, detail={"source": source})
    installation.delete()
    _log_change(
        enterprise=enterprise,
        user=user,
        source=source,
        action="hazard_deleted",
        summary=_("删除重大危险源：%(n)s") % {"n": name},
    )
