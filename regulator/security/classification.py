"""Data classification (数据分类分级): every model field gets one of 8 categories and a level.

The 8 categories follow the seed's 《安全生产数据分类分级指南》 (4.3.1: 基础信息, 监测数据, 隐患记录
... 8 大类) and the levels are public < internal < sensitive < core. A field's classification is
resolved from, most specific first:

1. ``ClassificationOverride`` rows (editable by the security admin in the admin, audited);
2. ``FIELD_OVERRIDES`` below (``"app_label.Model.field"``);
3. a ``data_classification`` dict on the model class, which other apps use to declare their own
   fields without touching this module::

       class Device(models.Model):
           data_classification = {"__model__": ("monitoring", "internal"), "ip_address": ("monitoring", "sensitive")}

4. field-name rules (phones, ID numbers, secrets, process parameters...), which only raise a level;
5. per-model and per-app defaults.

An ``EncryptedTextField`` is at least ``sensitive``. ``manage.py classification_report`` prints
the whole registry and flags core fields stored in clear.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from django.apps import apps
from django.db import models
from django.utils.translation import gettext_lazy as _


class Category(models.TextChoices):
    BASIC = "basic", _("基础信息")
    MONITORING = "monitoring", _("监测数据")
    HAZARD = "hazard", _("隐患记录")
    ENFORCEMENT = "enforcement", _("执法数据")
    CREDIT = "credit", _("信用数据")
    ALARM = "alarm", _("报警数据")
    IDENTITY = "identity", _("用户与权限")
    SYSTEM = "system", _("系统与审计")


class Level(models.TextChoices):
    PUBLIC = "public", _("公开")
    INTERNAL = "internal", _("内部")
    SENSITIVE = "sensitive", _("敏感")
    CORE = "core", _("核心")


LEVEL_RANK = {Level.PUBLIC: 0, Level.INTERNAL: 1, Level.SENSITIVE: 2, Level.CORE: 3}

APP_DEFAULTS: dict[str, tuple[str, str]] = {
    "enterprises": (Category.BASIC, Level.INTERNAL),
    "hazards": (Category.HAZARD, Level.INTERNAL),
    "enforcement": (Category.ENFORCEMENT, Level.INTERNAL),
    "devices": (Category.MONITORING, Level.INTERNAL),
    "alerts": (Category.ALARM, Level.INTERNAL),
    "regulator": (Category.SYSTEM, Level.INTERNAL),
    "auth": (Category.IDENTITY, Level.INTERNAL),
    "guardian": (Category.IDENTITY, Level.INTERNAL),
    "authtoken": (Category.IDENTITY, Level.CORE),
    "sessions": (Category.SYSTEM, Level.CORE),
    "admin": (Category.SYSTEM, Level.INTERNAL),
    "contenttypes": (Category.SYSTEM, Level.PUBLIC),
}

MODEL_DEFAULTS: dict[str, tuple[str, str]] = {
    "regulator.User": (Category.IDENTITY, Level.INTERNAL),
    "regulator.PasswordHistory": (Category.IDENTITY, Level.CORE),
    "regulator.TOTPDevice": (Category.IDENTITY, Level.CORE),
    "regulator.LoginLock": (Category.SYSTEM, Level.INTERNAL),
    "regulator.AuditEntry": (Category.SYSTEM, Level.SENSITIVE),
    "regulator.Region": (Category.BASIC, Level.PUBLIC),
    "regulator.Park": (Category.BASIC, Level.PUBLIC),
    "regulator.Notification": (Category.SYSTEM, Level.INTERNAL),
    "regulator.ClassificationOverride": (Category.SYSTEM, Level.INTERNAL),
    "enterprises.Industry": (Category.BASIC, Level.PUBLIC),
    "enforcement.CreditRule": (Category.CREDIT, Level.PUBLIC),
    "enforcement.CreditEvent": (Category.CREDIT, Level.INTERNAL),
    "enforcement.CreditScore": (Category.CREDIT, Level.INTERNAL),
    "enforcement.CreditScoreChange": (Category.CREDIT, Level.INTERNAL),
    "enforcement.DishonestyListing": (Category.CREDIT, Level.PUBLIC),
    "enforcement.RepairApplication": (Category.CREDIT, Level.INTERNAL),
    "hazards.SelfInspection": (Category.HAZARD, Level.INTERNAL),
}

FIELD_OVERRIDES: dict[str, tuple[str, str]] = {
    "regulator.User.password": (Category.IDENTITY, Level.CORE),
    "regulator.User.phone": (Category.IDENTITY, Level.SENSITIVE),
    "regulator.User.id_number": (Category.IDENTITY, Level.SENSITIVE),
    "regulator.TOTPDevice.secret": (Category.IDENTITY, Level.CORE),
    "enterprises.Enterprise.uscc": (Category.BASIC, Level.PUBLIC),
    "enterprises.Enterprise.name": (Category.BASIC, Level.PUBLIC),
    "enterprises.MajorHazardInstallation.process_parameters": (Category.BASIC, Level.CORE),
}

# (regex on the field name, minimum level): names say what a column holds, whatever the app.
NAME_RULES: list[tuple[re.Pattern, str]] = [
    (re.compile(r"(^|_)(password|secret|private_key|token|api_key|key_hash)$"), Level.CORE),
    (re.compile(r"process_param"), Level.CORE),
    (re.compile(r"(^|_)(id_number|id_card|idcard|identity_number)$"), Level.SENSITIVE),
    (re.compile(r"(^|_)(phone|mobile|telephone|tel)$"), Level.SENSITIVE),
    (re.compile(r"(^|_)email$"), Level.SENSITIVE),
    (re.compile(r"(^|_)(ip_address|source_ip|host)$"), Level.INTERNAL),
]


@dataclass(frozen=True)
class Classification:
    category: str
    level: str
    source: str

    @property
    def category_label(self) -> str:
        return str(Category(self.category).label)

    @property
    def level_label(self) -> str:
        return str(Level(self.level).label)

    @property
    def needs_masking(self) -> bool:
        return LEVEL_RANK[self.level] >= LEVEL_RANK[Level.SENSITIVE]


def _max_level(a: str, b: str) -> str:
    return a if LEVEL_RANK[a] >= LEVEL_RANK[b] else b


_db_cache: dict = {"at": 0.0, "rows": {}}
DB_CACHE_SECONDS = 30


def _db_overrides() -> dict[str, tuple[str, str]]:
    if time.monotonic() - _db_cache["at"] > DB_CACHE_SECONDS:
        from django.db import DatabaseError

        from regulator.models import ClassificationOverride

        try:
            rows = {
                o.field_path: (o.category, o.level)
                for o in ClassificationOverride.objects.all().only("field_path", "category", "level")
            }
        except DatabaseError:  # table not migrated yet (first migrate, checks)
            rows = {}
        _db_cache.update(at=time.monotonic(), rows=rows)
    return _db_cache["rows"]


def invalidate_cache() -> None:
    _db_cache["at"] = 0.0


def field_path(field) -> str:
    return f"{field.model._meta.label}.{field.name}"


def _field_from_path(path: str):
    app_label, model_name, field_name = path.split(".")
    return apps.get_model(app_label, model_name)._meta.get_field(field_name)


def classify(field) -> Classification:
    """The effective classification of a model field (a Field or ``"app.Model.field"``)."""
    from regulator.fields import EncryptedTextField

    if isinstance(field, str):
        field = _field_from_path(field)
    model = field.model
    path = field_path(field)
    db = _db_overrides()
    if path in db:
        return Classification(*db[path], source="override (admin)")
    if path in FIELD_OVERRIDES:
        return Classification(*FIELD_OVERRIDES[path], source="override (code)")
    declared = getattr(model, "data_classification", None) or {}
    if field.name in declared:
        return Classification(*declared[field.name], source="declared by model")
    if "__model__" in declared:
        category, level = declared["__model__"]
        source = "model default (declared)"
    elif model._meta.label in MODEL_DEFAULTS:
        category, level = MODEL_DEFAULTS[model._meta.label]
        source = "model default"
    else:
        category, level = APP_DEFAULTS.get(model._meta.app_label, (Category.SYSTEM, Level.INTERNAL))
        source = "app default"
    for pattern, minimum in NAME_RULES:
        if pattern.search(field.name):
            raised = _max_level(level, minimum)
            if raised != level:
                level, source = raised, f"name rule ({pattern.pattern})"
            break
    if isinstance(field, EncryptedTextField) and LEVEL_RANK[level] < LEVEL_RANK[Level.SENSITIVE]:
        level, source = Level.SENSITIVE, "encrypted field"
    return Classification(category, level, source)


def registry():
    """Every concrete field of every installed model with its classification, for reports."""
    from regulator.fields import EncryptedTextField

    rows = []
    for model in apps.get_models():
        if model._meta.proxy:
            continue
        for field in model._meta.concrete_fields:
            c = classify(field)
            rows.append(
                {
                    "path": field_path(field),
                    "model": model,
                    "field": field,
                    "verbose_name": str(field.verbose_name),
                    "classification": c,
                    "encrypted": isinstance(field, EncryptedTextField),
                }
            )
    return rows


def unencrypted_core_fields():
    """Core text fields stored in clear (passwords and tokens are hashed, so they are exempt)."""
    exempt = {"regulator.User.password", "regulator.PasswordHistory.password", "sessions.Session.session_data"}
    hashed = re.compile(r"(_hash|_digest|password)$")
    problems = []
    for row in registry():
        field = row["field"]
        if (
            row["classification"].level == Level.CORE
            and not row["encrypted"]
            and isinstance(field, models.CharField | models.TextField)
            and row["path"] not in exempt
            and not hashed.search(field.name)
            and field.model._meta.app_label not in ("authtoken", "sessions")
        ):
            problems.append(row["path"])
    return problems
