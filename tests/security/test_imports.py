"""Issue 16 item 8: imports stream, are capped, refuse a zip bomb before opening it, and are atomic.

Before the fix a 3 MB XLSX whose shared strings expand to 1.28 GB peaked at 3.6 GB (openpyxl
loads the shared-string table whole, even in read-only mode), CSV files were read into memory
whole, and nothing capped rows, columns or cells. The bombs are built here, not committed.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

from enterprises import importing
from enterprises.importing import ImportRefused, import_enterprises, read_table
from enterprises.models import Enterprise
from regulator.models import AuditEntry
from tests import factories as f

ROOT = Path(__file__).resolve().parents[2]
HEADER = ["统一社会信用代码", "企业名称", "区划代码", "行业代码"]


SST_CONTENT_TYPE = (
    b'<Override PartName="/xl/sharedStrings.xml" '
    b'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
)
SST_RELATIONSHIP = (
    b'<Relationship Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" '
    b'Target="sharedStrings.xml" Id="rIdBomb"/>'
)


def make_shared_strings_bomb(path: Path, expanded_bytes: int, *, string_chars: int = 1000) -> Path:
    """A small XLSX whose xl/sharedStrings.xml inflates to ``expanded_bytes`` (written in chunks)."""
    wb = Workbook()
    ws = wb.active
    ws.append(HEADER)
    ws.append(["x", "y", "z", "w"])
    plain = path.with_suffix(".plain.xlsx")
    wb.save(plain)
    unit = f"<si><t>{'A' * string_chars}</t></si>".encode()
    count = max(expanded_bytes // len(unit), 1)
    head = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="{count}" '
        f'uniqueCount="{count}">'
    ).encode()
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/sharedStrings.xml":
                continue
            if item.filename == "[Content_Types].xml" and b"sharedStrings" not in data:
                data = data.replace(b"</Types>", SST_CONTENT_TYPE + b"</Types>")
            if item.filename == "xl/_rels/workbook.xml.rels" and b"sharedStrings" not in data:
                data = data.replace(b"</Relationships>", SST_RELATIONSHIP + b"</Relationships>")
            dst.writestr(item, data)
        info = zipfile.ZipInfo("xl/sharedStrings.xml")
        info.compress_type = zipfile.ZIP_DEFLATED
        with dst.open(info, "w", force_zip64=True) as out:
            out.write(head)
            block = unit * 1024
            for _ in range(count // 1024):
                out.write(block)
            out.write(unit * (count % 1024))
            out.write(b"</sst>")
    plain.unlink()
    return path


def _csv_file(path: Path, rows, header=HEADER) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _valid_rows(world, n: int, start: int = 7000):
    industry = f.industry()
    return [[f.make_uscc(start + i), f"导入测试企业{i}", world.regions["county"].code, industry.code] for i in range(n)]


def test_shared_strings_bomb_is_refused_before_it_is_opened(world, tmp_path, settings):
    settings.IMPORT_MAX_XLSX_SHARED_STRINGS_BYTES = 1024 * 1024
    path = make_shared_strings_bomb(tmp_path / "bomb.xlsx", 8 * 1024 * 1024)
    assert path.stat().st_size < 200_000  # small on disk
    before = Enterprise.objects.count()
    with pytest.raises(ImportRefused) as caught:
        import_enterprises(path)
    assert "共享字符串" in caught.value.messages[0]
    assert Enterprise.objects.count() == before
    assert AuditEntry.objects.filter(event="enterprise.import_refused", outcome="failure").exists()


def test_total_expanded_size_is_capped(world, tmp_path, settings):
    settings.IMPORT_MAX_XLSX_UNCOMPRESSED_BYTES = 2 * 1024 * 1024
    path = make_shared_strings_bomb(tmp_path / "bomb.xlsx", 4 * 1024 * 1024)
    with pytest.raises(ImportRefused) as caught:
        read_table(path)
    assert "压缩炸弹" in caught.value.messages[0]


def test_not_a_zip_is_a_clear_refusal(tmp_path):
    path = tmp_path / "fake.xlsx"
    path.write_bytes(b"<html>not a workbook</html>")
    with pytest.raises(ImportRefused) as caught:
        read_table(path)
    assert "XLSX" in caught.value.messages[0]


BOMB_RSS_SCRIPT = """
import json, resource, sys
import django
django.setup()
from django.core.exceptions import ValidationError
from enterprises.importing import read_table
outcome = "read"
try:
    header, rows, total = read_table(sys.argv[1])
    for _ in rows:
        pass
except ValidationError as exc:
    outcome = exc.messages[0]
# Linux keeps ru_maxrss across fork+exec (the parent's size at fork counts), so the peak of this
# process image is VmHWM; ru_maxrss is printed too.
hwm = None
try:
    with open("/proc/self/status") as fh:
        hwm = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
except OSError:
    pass
maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_kib": hwm or maxrss, "maxrss_kib": maxrss, "outcome": outcome}))
"""


def run_bomb_in_subprocess(path: Path, timeout: float = 240) -> dict:
    """Peak RSS of a fresh process that reads ``path`` the way the import does."""
    env = {**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "regulator.settings"}
    done = subprocess.run(
        [sys.executable, "-c", BOMB_RSS_SCRIPT, str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_bomb_memory_stays_flat_in_a_real_process(tmp_path):
    """200 MB of shared strings (default limits): refused at well under 300 MiB peak RSS.
    Before the fix the same process read it all (~1 GiB+ peak; bench/import_bomb.py has figures)."""
    path = make_shared_strings_bomb(tmp_path / "bomb.xlsx", 200 * 1024 * 1024)
    result = run_bomb_in_subprocess(path)
    assert "共享字符串" in result["outcome"] or "压缩炸弹" in result["outcome"], result
    assert result["peak_kib"] < 300 * 1024, result


def test_row_cap_refuses_the_whole_file_even_after_chunks_were_written(world, tmp_path, settings, monkeypatch):
    settings.IMPORT_MAX_ROWS = 25
    monkeypatch.setattr(importing, "CHUNK", 10)  # two chunks are written before row 26 is seen
    path = _csv_file(tmp_path / "many.csv", _valid_rows(world, 30))
    before = Enterprise.objects.count()
    with pytest.raises(ImportRefused) as caught:
        import_enterprises(path)
    assert "25" in caught.value.messages[0] and "未导入任何数据" in caught.value.messages[0]
    assert Enterprise.objects.count() == before


def test_row_cap_on_xlsx(world, tmp_path, settings):
    settings.IMPORT_MAX_ROWS = 5
    wb = Workbook(write_only=True)
    ws = wb.create_sheet()
    ws.append(HEADER)
    for row in _valid_rows(world, 8):
        ws.append(row)
    path = tmp_path / "many.xlsx"
    wb.save(path)
    with pytest.raises(ImportRefused):
        import_enterprises(path)
    assert not Enterprise.objects.filter(name__startswith="导入测试企业").exists()


def test_a_file_under_the_caps_still_imports(world, tmp_path, settings):
    settings.IMPORT_MAX_ROWS = 30
    report = import_enterprises(_csv_file(tmp_path / "ok.csv", _valid_rows(world, 30)))
    assert report.created == 30


def test_csv_file_size_is_capped(world, tmp_path, settings):
    settings.IMPORT_MAX_FILE_BYTES = 100_000
    rows = [[f.make_uscc(1), "x" * 100, "", ""] for _ in range(2000)]
    with pytest.raises(ImportRefused) as caught:
        import_enterprises(_csv_file(tmp_path / "big.csv", rows))
    assert "文件过大" in caught.value.messages[0]


def test_a_giant_line_is_refused_without_being_held_whole(world, tmp_path):
    path = tmp_path / "line.csv"
    path.write_text(",".join(HEADER) + "\n" + "A" * 5_000_000, encoding="utf-8")
    with pytest.raises(ImportRefused) as caught:
        import_enterprises(path)
    assert "超过" in caught.value.messages[0]


def test_cell_and_column_caps(world, tmp_path, settings):
    settings.IMPORT_MAX_CELL_CHARS = 50
    settings.IMPORT_MAX_COLUMNS = 6
    long_cell = _csv_file(tmp_path / "cell.csv", [[f.make_uscc(2), "名" * 60, "", ""]])
    with pytest.raises(ImportRefused) as caught:
        import_enterprises(long_cell)
    assert "第2行" in caught.value.messages[0] and "50" in caught.value.messages[0]
    wide = _csv_file(tmp_path / "wide.csv", [[f.make_uscc(3), "x", "", "", "", "", "", "extra"]])
    with pytest.raises(ImportRefused) as caught:
        import_enterprises(wide)
    assert "列数" in caught.value.messages[0]


def test_the_command_reports_the_refusal_in_chinese(world, tmp_path, settings):
    from django.core.management import CommandError, call_command

    settings.IMPORT_MAX_XLSX_SHARED_STRINGS_BYTES = 1024 * 1024
    path = make_shared_strings_bomb(tmp_path / "bomb.xlsx", 4 * 1024 * 1024)
    with pytest.raises(CommandError, match="共享字符串"):
        call_command("import_enterprises", str(path), "--no-progress")


def test_a_corrupt_sheet_is_a_clear_refusal_not_a_traceback(world, tmp_path):
    """openpyxl parses the sheet lazily, while rows stream: a broken sheet fails there."""
    good = tmp_path / "good.xlsx"
    wb = Workbook()
    wb.active.append(HEADER)
    for row in _valid_rows(world, 3):
        wb.active.append(row)
    wb.save(good)
    bad = tmp_path / "bad.xlsx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data[: len(data) // 2]  # cut in the middle of the XML
            dst.writestr(item, data)
    with pytest.raises(ImportRefused) as caught:
        import_enterprises(bad)
    assert "损坏" in caught.value.messages[0]
    assert not Enterprise.objects.filter(name__startswith="导入测试企业").exists()
