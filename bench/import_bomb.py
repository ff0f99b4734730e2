"""Peak RSS of reading an XLSX "shared strings" bomb the way import_enterprises does.

    .venv/bin/python bench/import_bomb.py [--expanded-mib 1280]

Builds a small XLSX whose xl/sharedStrings.xml inflates to --expanded-mib, then reads it in a
fresh process (read_table + iterate the rows) and prints the outcome and ru_maxrss, next to a
process that only starts Django (the floor).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "regulator.settings")

FLOOR = """
import json, resource, django
django.setup()
import enterprises.importing
print(json.dumps({"maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def main():
    import django

    django.setup()
    from tests.security.test_imports import make_shared_strings_bomb, run_bomb_in_subprocess

    parser = argparse.ArgumentParser()
    parser.add_argument("--expanded-mib", type=int, default=1280)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = make_shared_strings_bomb(Path(tmp) / "bomb.xlsx", args.expanded_mib * 1024 * 1024)
        floor = json.loads(
            subprocess.run([sys.executable, "-c", FLOOR], cwd=ROOT, capture_output=True, text=True, check=True)
            .stdout.strip()
            .splitlines()[-1]
        )
        started = time.monotonic()
        result = run_bomb_in_subprocess(path, timeout=1800)
        elapsed = time.monotonic() - started
        print(f"bomb: {path.stat().st_size / 1024:.0f} KiB on disk, shared strings expand to {args.expanded_mib} MiB")
        print(f"floor (django.setup + importing): peak RSS {floor['maxrss_kib'] / 1024:.0f} MiB")
        print(
            f"read the bomb: peak RSS {result['peak_kib'] / 1024:.0f} MiB (VmHWM; ru_maxrss "
            f"{result['maxrss_kib'] / 1024:.0f} MiB) in {elapsed:.1f} s"
        )
        print(f"outcome: {result['outcome']}")


if __name__ == "__main__":
    main()
