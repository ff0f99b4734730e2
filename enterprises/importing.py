"""Upsert enterprises by USCC from CSV/XLSX (the incremental sync from market-regulation exports).

Rows are validated one by one (a bad row is reported with its row number and reason and never
stops the good ones) and written in bulk per chunk. Columns that a file does not have are left
alone; masked phone numbers (an export of this platform) never overwrite real ones. Running the
same file twice reports everything unchanged the second time.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, JSONField, Value, When
from django.utils import timezone, translation

from enterprises import uscc
from enterprises.choices import HighRiskSector, OperatingStatus, RiskGrade, Scale, StandardisationLevel
from enterprises.columns import header_key
from enterprises.models import Enterprise, EnterpriseChange, Industry, join_former_names
from regulator.audit import record_event
from regulator.fields import EncryptedTextField
from regulator.models import Park, Region
from regulator.security.masking import mask_value

CHUNK = 2000
PHONE_FIELDS = ("principal_phone", "safety_officer_phone", "safety_manager_phone")
TEXT_FIELDS = {
    "name": 200,
    "legal_representative": 64,
    "principal_name": 64,
    "safety_officer_name": 64,
    "safety_manager_name": 64,
    "address": 255,
}
# Fields compared and written by the import (derived former_names_text follows former_names).
MODEL_FIELDS = [
    "name",
    "former_names",
    *TEXT_FIELDS.keys() - {"name"},
    *PHONE_FIELDS,
    "region_id",
    "park_id",
    "industry_id",
    "high_risk_sector",
    "scale",
    "employees",
    "standardisation_level",
    "is_key",
    "operating_status",
    "risk_grade",
    "longitude",
    "latitude",
]
TRUE = {"是", "1", "true", "yes", "y", "t", "重点", "√"}
FALSE = {"否", "0", "false", "no", "n", "f", "", "非重点", "×"}


class RowError(Exception):
    pass


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # (row number, uscc, reason)
    unknown_columns: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged + len(self.rejected)

    def as_dict(self) -> dict:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": len(self.rejected),
        }


def _choice_map(choices, extra: dict[str, str] | None = None) -> dict[str, str]:
    mapping = {}
    for value, label in choices:
        mapping[str(value).lower()] = value
        for lang in ("zh-hans", "en"):
            with translation.override(lang):
                mapping[str(label).lower()] = value
    for alias, value in (extra or {}).items():
        mapping[alias.lower()] = value
    return mapping


def _maps():
    return {
        "scale": _choice_map(Scale.choices, {"大": "large", "中": "medium", "小": "small", "微": "micro"}),
        "operating_status": _choice_map(
            OperatingStatus.choices, {"在营": "operating", "存续": "operating", "停产": "suspended", "注销": "closed"}
        ),
        "risk_grade": _choice_map(
            RiskGrade.choices,
            {"红": "red", "橙": "orange", "黄": "yellow", "蓝": "blue", "重大风险": "red", "较大风险": "orange"}
            | {"一般风险": "yellow", "低风险": "blue", "": ""},
        ),
        "high_risk_sector": _choice_map(HighRiskSector.choices, {"危化": "chemicals", "危化品": "chemicals"}),
        "standardisation_level": _choice_map(
            StandardisationLevel.choices, {"1": "1", "2": "2", "3": "3", "无": "", "": ""}
        ),
    }


# --- reading files ---------------------------------------------------------------------------
#
# Both readers stream: memory stays flat whatever the file's size. Limits (settings.IMPORT_MAX_*)
# raise ImportRefused with a Chinese message; the importer runs in one transaction, so a file
# refused halfway through leaves nothing behind.


class ImportRefused(ValidationError):
    """The file as a whole is refused (too big, too many rows, a zip bomb): nothing is imported."""


def _limits():
    from django.conf import settings

    return {
        "bytes": settings.IMPORT_MAX_FILE_BYTES,
        "rows": settings.IMPORT_MAX_ROWS,
        "columns": settings.IMPORT_MAX_COLUMNS,
        "cell": settings.IMPORT_MAX_CELL_CHARS,
        "unzipped": settings.IMPORT_MAX_XLSX_UNCOMPRESSED_BYTES,
        "shared_strings": settings.IMPORT_MAX_XLSX_SHARED_STRINGS_BYTES,
    }


def _mib(n: int) -> str:
    return f"{n / 1024 / 1024:.0f} MB"


def _check_file_size(path: Path, limits: dict) -> None:
    size = path.stat().st_size
    if size > limits["bytes"]:
        raise ImportRefused(f"文件过大：{_mib(size)}，上限 {_mib(limits['bytes'])}，请拆分后导入")


def _limited_rows(rows: Iterator, limits: dict) -> Iterator[list]:
    """Rows with the row, column and cell-size limits applied as they stream by."""
    for number, row in enumerate(rows, start=1):  # the spreadsheet's line number (1 = the header)
        if number - 1 > limits["rows"]:
            raise ImportRefused(f"数据行数超过上限 {limits['rows']} 行，请拆分后导入（未导入任何数据）")
        row = list(row)
        if len(row) > limits["columns"]:
            if any(c not in (None, "") for c in row[limits["columns"] :]):
                raise ImportRefused(f"第{number}行的列数超过上限 {limits['columns']} 列（未导入任何数据）")
            row = row[: limits["columns"]]
        for cell in row:
            if isinstance(cell, str) and len(cell) > limits["cell"]:
                raise ImportRefused(
                    f"第{number}行有单元格超过 {limits['cell']} 个字符，文件可能已损坏（未导入任何数据）"
                )
        yield row


def _detect_encoding(path: Path) -> tuple[str, int]:
    """(encoding, line count) in one streaming pass: UTF-8 if every byte decodes, else GB18030."""
    import codecs

    for encoding in ("utf-8-sig", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        lines = 0
        try:
            with path.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    decoder.decode(chunk)
                    lines += chunk.count(b"\n")
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding, lines
    raise ImportRefused("文件编码无法识别（请使用 UTF-8 或 GB18030）")


def _bounded_lines(fh, max_chars: int) -> Iterator[str]:
    """Lines of a text stream, refusing one longer than ``max_chars`` before it is held whole."""
    while True:
        line = fh.readline(max_chars + 1)
        if not line:
            return
        if len(line) > max_chars and not line.endswith("\n"):
            raise ImportRefused(f"文件中有一行超过 {max_chars} 个字符，不是有效的表格文件（未导入任何数据）")
        yield line


def _read_csv(path: Path) -> tuple[list, Iterator[list], int]:
    limits = _limits()
    _check_file_size(path, limits)
    encoding, lines = _detect_encoding(path)
    if lines - 1 > limits["rows"] * 2:  # quoted newlines inflate the count: only a gross excess here
        raise ImportRefused(f"数据行数超过上限 {limits['rows']} 行，请拆分后导入（未导入任何数据）")
    max_line = limits["columns"] * (limits["cell"] + 3)

    def rows():
        with path.open("r", encoding=encoding, newline="") as fh:
            reader = csv.reader(_bounded_lines(fh, max_line))
            try:
                yield from reader
            except csv.Error as exc:
                raise ImportRefused(f"CSV 格式错误（第{reader.line_num}行）：{exc}（未导入任何数据）") from exc

    stream = _limited_rows(rows(), limits)
    header = next(stream, [])
    return header, stream, max(lines - 1, 0)


def _check_xlsx_archive(path: Path, limits: dict) -> None:
    """Refuse a zip bomb before openpyxl inflates it (declared sizes bind: zipfile stops there)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImportRefused("不是有效的 XLSX 文件（无法作为 Excel 工作簿打开）") from exc
    total = sum(m.file_size for m in members)
    if total > limits["unzipped"]:
        raise ImportRefused(
            f"XLSX 解压后 {_mib(total)}，超过上限 {_mib(limits['unzipped'])}，文件可能是压缩炸弹（未导入任何数据）"
        )
    shared = sum(m.file_size for m in members if m.filename.lower().endswith("sharedstrings.xml"))
    if shared > limits["shared_strings"]:
        raise ImportRefused(
            f"XLSX 的共享字符串表 {_mib(shared)}，超过上限 {_mib(limits['shared_strings'])}（未导入任何数据）"
        )


def _read_xlsx(path: Path) -> tuple[list, Iterator[list], int]:
    from openpyxl import load_workbook

    limits = _limits()
    _check_file_size(path, limits)
    _check_xlsx_archive(path, limits)
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a malformed workbook
        raise ImportRefused(f"XLSX 文件无法读取：{type(exc).__name__}") from exc
    ws = wb.worksheets[0]
    declared = ws.max_row or 1  # from the sheet's <dimension>, when it has one
    if declared - 1 > limits["rows"]:
        wb.close()
        raise ImportRefused(f"数据行数超过上限 {limits['rows']} 行，请拆分后导入（未导入任何数据）")

    def rows():
        try:
            # One row and one column past the limits, so that _limited_rows sees the excess.
            yield from ws.iter_rows(values_only=True, max_row=limits["rows"] + 2, max_col=limits["columns"] + 1)
        except Exception as exc:  # the sheet is parsed lazily: bad XML, a zip member failing its CRC
            raise ImportRefused(f"XLSX 文件已损坏，无法读取：{type(exc).__name__}（未导入任何数据）") from exc
        finally:
            wb.close()

    stream = _limited_rows(rows(), limits)
    header = list(next(stream, []) or [])
    return header, stream, max(declared - 1, 0)


def read_table(path: str | Path) -> tuple[list, Iterator[list], int]:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(path)
    if suffix in (".csv", ".txt"):
        return _read_csv(path)
    raise ValidationError(f"不支持的文件类型：{suffix}（支持 .csv 和 .xlsx）")


# --- validating one row ----------------------------------------------------------------------


class RowCleaner:
    """Turns one raw row (dict of column key -> cell) into model field values, or raises RowError."""

    def __init__(self):
        self.regions_by_code = {r.code: r for r in Region.objects.all()}
        self.regions_by_name: dict[str, list[Region]] = {}
        for region in self.regions_by_code.values():
            self.regions_by_name.setdefault(region.name, []).append(region)
        self.parks_by_code = {p.code: p for p in Park.objects.select_related("region")}
        self.parks_by_name = {p.name: p for p in self.parks_by_code.values()}
        self.parks_by_id = {p.pk: p for p in self.parks_by_code.values()}
        self.industries = {i.code: i for i in Industry.objects.all()}
        self.maps = _maps()

    @staticmethod
    def _text(value) -> str:
        if value is None:
            return ""
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value).strip()

    def clean(self, raw: dict) -> tuple[str, dict, bool]:
        """(uscc, fields, creatable): ``fields`` holds only what the row says; creatable = has what a new row needs."""
        text = {k: self._text(v) for k, v in raw.items()}
        if not text.get("uscc"):
            raise RowError("缺少统一社会信用代码")
        try:
            code = uscc.validate(text["uscc"])
        except ValidationError as exc:
            raise RowError("；".join(exc.messages)) from exc
        out: dict = {}
        for name, limit in TEXT_FIELDS.items():
            if name in text:
                if len(text[name]) > limit:
                    raise RowError(f"{name} 超过 {limit} 个字符")
                if name == "name" and not text[name]:
                    raise RowError("企业名称不能为空")
                out[name] = text[name]
        if "former_names" in text:
            names = text["former_names"].replace(";", "；").replace(",", "；").replace("，", "；").split("；")
            out["former_names"] = [n.strip() for n in names if n.strip()]
        for name in PHONE_FIELDS:
            if name in text:
                phone = text[name].replace(" ", "").replace("-", "")
                if "*" in phone:
                    continue  # a masked export value: never overwrite the real number
                if len(phone) > 32 or (phone and not phone.lstrip("+").isdigit()):
                    raise RowError(f"电话号码格式不正确：{text[name]}")
                out[name] = phone
        self._region_and_park(text, out)
        if text.get("industry_code"):
            industry = self.industries.get(text["industry_code"])
            if industry is None:
                raise RowError(f"行业代码“{text['industry_code']}”不存在于 GB/T 4754-2017")
            out["industry_id"] = industry.pk
            out["_industry_sector"] = industry.high_risk_sector
        for name, mapping in self.maps.items():
            if name in text:
                value = mapping.get(text[name].lower())
                if value is None:
                    raise RowError(f"{name} 的取值“{text[name]}”无法识别")
                out[name] = value
        if text.get("employees", "") != "":
            try:
                employees = int(Decimal(text["employees"]))
            except (InvalidOperation, ValueError) as exc:
                raise RowError(f"从业人数“{text['employees']}”不是整数") from exc
            if employees < 0:
                raise RowError("从业人数不能为负数")
            out["employees"] = employees
        if "is_key" in text:
            flag = text["is_key"].lower()
            if flag not in TRUE | FALSE:
                raise RowError(f"重点企业的取值“{text['is_key']}”应为 是/否")
            out["is_key"] = flag in TRUE
        self._coordinates(text, out)
        creatable = "name" in out and "region_id" in out and "industry_id" in out
        return code, out, creatable

    def _region_and_park(self, text: dict, out: dict) -> None:
        region = None
        if text.get("region_code"):
            region = self.regions_by_code.get(text["region_code"])
            if region is None:
                raise RowError(f"区划代码“{text['region_code']}”不存在")
        elif text.get("region_name"):
            candidates = self.regions_by_name.get(text["region_name"], [])
            if len(candidates) != 1:
                raise RowError(f"区划“{text['region_name']}”{'不存在' if not candidates else '重名，请填写区划代码'}")
            region = candidates[0]
        if region is not None:
            out["region_id"] = region.pk
            out["_region_path"] = region.path
        park = None
        if text.get("park_code"):
            park = self.parks_by_code.get(text["park_code"])
            if park is None:
                raise RowError(f"园区编码“{text['park_code']}”不存在")
        elif text.get("park_name"):
            park = self.parks_by_name.get(text["park_name"])
            if park is None:
                raise RowError(f"园区“{text['park_name']}”不存在")
        if park is not None:
            if region is not None and not region.path.startswith(park.region.path):
                raise RowError(f"园区“{park.name}”不在区划“{region.name}”内")
            out["park_id"] = park.pk
        elif "park_code" in text or "park_name" in text:
            out["park_id"] = None

    @staticmethod
    def _coordinates(text: dict, out: dict) -> None:
        coords = {}
        for name, bound in (("longitude", 180), ("latitude", 90)):
            if text.get(name, "") != "":
                try:
                    value = Decimal(text[name]).quantize(Decimal("0.000001"))
                except InvalidOperation as exc:
                    raise RowError(f"{name}“{text[name]}”不是数字") from exc
                if abs(value) > bound:
                    raise RowError(f"{name}“{text[name]}”超出范围")
                coords[name] = value
        if len(coords) == 1:
            raise RowError("经度和纬度需同时填写")
        out.update(coords)


# --- writing ---------------------------------------------------------------------------------


def _comparable(enterprise: Enterprise, name: str):
    value = getattr(enterprise, name)
    if isinstance(value, Decimal):
        return value.normalize()
    if name in PHONE_FIELDS:
        return value or ""
    return value


class EnterpriseImporter:
    def __init__(self, *, user=None, progress: bool | None = None, stream=None):
        self.user = user
        self.progress = progress
        self.stream = stream or sys.stderr
        self.report = ImportReport()
        self.cleaner = RowCleaner()
        self.seen: dict[str, int] = {}
        self.enc_fields = [f for f in Enterprise._meta.concrete_fields if isinstance(f, EncryptedTextField)]

    def run(self, path: str | Path) -> ImportReport:
        """Import one file in one transaction: refused as a whole (ImportRefused), nothing is written."""
        try:
            with transaction.atomic():
                return self._run(path)
        except ImportRefused as exc:
            self.report = ImportReport()  # the counts of the rolled-back chunks are void
            record_event(
                event="enterprise.import_refused",
                user=self.user,
                outcome="failure",
                detail={"file": Path(path).name, "reason": "；".join(exc.messages)},
            )
            raise

    def _run(self, path: str | Path) -> ImportReport:
        header, rows, total = read_table(path)
        keys = [header_key(h) for h in header]
        self.report.unknown_columns = [str(h) for h, k in zip(header, keys, strict=False) if k is None and h]
        if "uscc" not in keys:
            raise ValidationError("文件缺少“统一社会信用代码”列")
        from tqdm import tqdm

        disable = (total < 2000) if self.progress is None else not self.progress
        bar = tqdm(total=total, unit="行", desc="导入企业", disable=disable, file=self.stream)
        chunk: list[tuple[int, dict]] = []
        for number, cells in enumerate(rows, start=2):
            if cells is None or all(c is None or str(c).strip() == "" for c in cells):
                bar.update(1)
                continue
            raw = {key: cells[i] if i < len(cells) else None for i, key in enumerate(keys) if key}
            chunk.append((number, raw))
            if len(chunk) >= CHUNK:
                self._process(chunk)
                bar.update(len(chunk))
                chunk = []
        if chunk:
            self._process(chunk)
            bar.update(len(chunk))
        bar.close()
        record_event(
            event="enterprise.imported",
            user=self.user,
            detail={"file": Path(path).name, **self.report.as_dict()},
        )
        return self.report

    def _reject(self, number: int, code: str, reason: str) -> None:
        self.report.rejected.append((number, code, reason))

    def _process(self, chunk: list[tuple[int, dict]]) -> None:
        cleaned: list[tuple[int, str, dict, bool]] = []
        for number, raw in chunk:
            try:
                code, fields, creatable = self.cleaner.clean(raw)
            except RowError as exc:
                self._reject(number, str(raw.get("uscc") or ""), str(exc))
                continue
            if code in self.seen:
                self._reject(number, code, f"与第{self.seen[code]}行的统一社会信用代码重复")
                continue
            self.seen[code] = number
            cleaned.append((number, code, fields, creatable))
        if not cleaned:
            return
        try:
            with transaction.atomic():
                self._write(cleaned)
        except IntegrityError:
            # Someone else wrote one of these codes meanwhile: fall back to row by row.
            for item in cleaned:
                try:
                    with transaction.atomic():
                        self._write([item])
                except IntegrityError as exc:
                    self._reject(item[0], item[1], f"写入失败：{exc}")

    def _write(self, cleaned) -> None:
        existing = {
            e.uscc: e
            for e in Enterprise.objects.filter(uscc__in=[c for _n, c, _f, _cr in cleaned]).select_related("region")
        }
        to_create: list[Enterprise] = []
        to_update: list[tuple[Enterprise, dict]] = []
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        now = timezone.now()
        for number, code, fields, creatable in cleaned:
            region_path = fields.pop("_region_path", None)
            sector = fields.pop("_industry_sector", None)
            current = existing.get(code)
            if current is None:
                if not creatable:
                    required = (("企业名称", "name"), ("区划", "region_id"), ("行业代码", "industry_id"))
                    missing = [label for label, key in required if key not in fields]
                    self._reject(number, code, f"新企业缺少必填项：{'、'.join(missing)}")
                    continue
                if "high_risk_sector" not in fields:
                    fields["high_risk_sector"] = sector or ""
                enterprise = Enterprise(uscc=code, **fields)
                enterprise.former_names_text = join_former_names(enterprise.former_names)
                to_create.append(enterprise)
                counts["created"] += 1
                continue
            if region_path is None and "park_id" in fields and fields["park_id"] is not None:
                # The park must lie in the (unchanged) region of the enterprise.
                park = self.cleaner.parks_by_id[fields["park_id"]]
                if park and not current.region.path.startswith(park.region.path):
                    self._reject(number, code, f"园区“{park.name}”不在区划“{current.region.name}”内")
                    continue
            if (
                "industry_id" in fields
                and "high_risk_sector" not in fields
                and fields["industry_id"] != current.industry_id
            ):
                fields["high_risk_sector"] = sector or ""
            diff = {}
            for name, value in fields.items():
                old = _comparable(current, name)
                new = value.normalize() if isinstance(value, Decimal) else value
                if old != new:
                    diff[name] = (old, value)
            if "name" in diff and "former_names" not in fields:
                old_name = current.name
                if old_name not in (current.former_names or []):
                    diff["former_names"] = (current.former_names, [*(current.former_names or []), old_name])
            if not diff:
                counts["unchanged"] += 1
                continue
            for name, (_old, value) in diff.items():
                setattr(current, name, value)
            current.former_names_text = join_former_names(current.former_names)
            current.updated_at = now
            to_update.append((current, diff))
            counts["updated"] += 1
        if to_create:
            bulk_insert(Enterprise, to_create)
            created = Enterprise.objects.filter(uscc__in=[e.uscc for e in to_create]).values_list("uscc", "pk")
            ids = dict(created)
            for e in to_create:
                e.pk = ids[e.uscc]
        if to_update:
            self._bulk_update(to_update)
        self._log(to_create, to_update)
        for key, value in counts.items():
            setattr(self.report, key, getattr(self.report, key) + value)

    def _bulk_update(self, to_update) -> None:
        enc_names = {f.attname for f in self.enc_fields}
        plain = sorted({n for _e, diff in to_update for n in diff if n not in enc_names} | {"former_names_text"})
        objs = [e for e, _d in to_update]
        Enterprise.objects.bulk_update(objs, [*plain, "updated_at"] if plain else ["updated_at"], batch_size=500)
        # bulk_update does not run pre_save, so encrypted fields are sealed here and written as ciphertext.
        for enc_field in self.enc_fields:
            changed = [e for e, diff in to_update if enc_field.attname in diff]
            for start in range(0, len(changed), 500):
                batch = changed[start : start + 500]
                whens = [When(pk=e.pk, then=Value(enc_field.pre_save(e, False))) for e in batch]
                Enterprise.objects.filter(pk__in=[e.pk for e in batch]).update(**{enc_field.attname: Case(*whens)})

    def _log(self, created: list[Enterprise], updated: list[tuple[Enterprise, dict]]) -> None:
        user_id = self.user.pk if self.user is not None and self.user.pk else None
        at = timezone.now()
        rows = [(e.pk, "created", f"导入建档：{e.name}", {}) for e in created]
        for e, diff in updated:
            changes = {}
            for name, (old, new) in diff.items():
                label = str(Enterprise._meta.get_field(name.removesuffix("_id")).verbose_name)
                if name in PHONE_FIELDS:
                    field = Enterprise._meta.get_field(name)
                    old, new = mask_value(field, old), mask_value(field, new)
                changes[name.removesuffix("_id")] = {"label": label, "old": _jsonable(old), "new": _jsonable(new)}
            summary = "导入更新：" + "、".join(c["label"] for c in changes.values())
            rows.append((e.pk, "updated", summary[:255], changes))
        source = EnterpriseChange.Source.IMPORT
        if connection.vendor == "postgresql":
            # The timeline rows need no model instances: straight into COPY.
            from psycopg.types.json import Jsonb

            table = connection.ops.quote_name(EnterpriseChange._meta.db_table)
            columns = "enterprise_id, at, user_id, source, action, summary, changes"
            with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for enterprise_id, action, summary, changes in rows:
                    copy.write_row([enterprise_id, at, user_id, source, action, summary, Jsonb(changes)])
            return
        EnterpriseChange.objects.bulk_create(
            [
                EnterpriseChange(
                    enterprise_id=eid, at=at, user_id=user_id, source=source, action=action, summary=summary, changes=ch
                )
                for eid, action, summary, ch in rows
            ],
            batch_size=1000,
        )


def bulk_insert(model, objs: list, batch_size: int = 1000) -> None:
    """Insert new rows: COPY on PostgreSQL (several times faster than a big INSERT), bulk_create elsewhere.

    Values go through each field's ``pre_save`` and ``get_db_prep_save`` exactly as an INSERT
    would, so defaults, auto_now and the SM4 sealing of encrypted fields all apply. Primary keys
    are not returned: callers look new rows up by a natural key.
    """
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs, batch_size=batch_size)
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    # Plain columns are passed as they are; only fields that transform on save take the slow path.
    prepared = [
        isinstance(f, EncryptedTextField | JSONField)
        or getattr(f, "auto_now", False)
        or getattr(f, "auto_now_add", False)
        for f in fields
    ]
    plan = [(f, f.attname, slow) for f, slow in zip(fields, prepared, strict=True)]
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for obj in objs:
            copy.write_row(
                [
                    f.get_db_prep_save(f.pre_save(obj, True), connection) if slow else obj.__dict__[attname]
                    for f, attname, slow in plan
                ]
            )


def _jsonable(value):
    if isinstance(value, Decimal):
        return str(value)
    return value


def import_enterprises(path, *, user=None, progress: bool | None = None, stream=None) -> ImportReport:
    return EnterpriseImporter(user=user, progress=progress, stream=stream).run(path)
