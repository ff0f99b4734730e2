"""Peak RSS of validating one uploaded image, each case in a fresh process.

Run: python bench/upload_memory.py. Prints, per case, the RSS after Django set-up (base), the
peak RSS while validating (the high-water mark is reset first) and the difference, and the outcome.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, os, sys
sys.path.insert(0, os.environ["BENCH_ROOT"])
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "regulator.settings")
import django
django.setup()
from django.core.files.uploadedfile import SimpleUploadedFile
try:
    from regulator.uploads import validate_image as check
except ImportError:  # before the shared validator existed
    from hazards.photos import process as check
from regulator.errors import InvalidInput
data = open(sys.argv[1], "rb").read()
upload = SimpleUploadedFile(os.path.basename(sys.argv[1]), data)
del data
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
# Django's set-up peaks above what one validation needs: reset the high-water mark first
# (Linux: "5" > clear_refs), so VmHWM afterwards is the peak of the validation alone.
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")
base = status("VmRSS")
try:
    check(upload)
    outcome = "accepted"
except InvalidInput as exc:
    outcome = "refused: " + exc.message
peak = status("VmHWM")
print(json.dumps({"base_kib": base, "peak_kib": peak, "outcome": outcome}))
"""


def make(path: Path, fmt: str, size: tuple[int, int]) -> None:
    from PIL import Image

    # A gradient, so the file is small enough for the byte limit but not a trivial solid colour.
    img = Image.linear_gradient("L").resize(size).convert("RGB")
    img.save(path, fmt, **({"quality": 80} if fmt == "JPEG" else {"compress_level": 1}))


def main() -> None:
    cases = [
        ("40 Mpx PNG (7700x5190)", "PNG", (7700, 5190)),
        ("40 Mpx JPEG (7700x5190)", "JPEG", (7700, 5190)),
        ("24 Mpx JPEG (6000x4000)", "JPEG", (6000, 4000)),
        ("12 Mpx JPEG (4000x3000)", "JPEG", (4000, 3000)),
        ("12 Mpx PNG (4000x3000)", "PNG", (4000, 3000)),
    ]
    env = {**os.environ, "BENCH_ROOT": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        for label, fmt, size in cases:
            path = Path(tmp) / f"img.{fmt.lower()}"
            make(path, fmt, size)
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(path)], env=env, cwd=ROOT, capture_output=True, text=True
            )
            if out.returncode:
                print(label, "failed:", out.stderr.strip().splitlines()[-1])
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            mib = 1024
            print(
                f"{label:26} file {path.stat().st_size / 2**20:5.1f} MiB  base {r['base_kib'] / mib:6.1f} MiB  "
                f"peak {r['peak_kib'] / mib:6.1f} MiB  +{(r['peak_kib'] - r['base_kib']) / mib:6.1f} MiB  "
                f"{r['outcome']}"
            )


if __name__ == "__main__":
    main()
