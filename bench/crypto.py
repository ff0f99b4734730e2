"""Crypto benchmark: SM4-GCM throughput, per-field cost, and the dossier page with encrypted fields.

    .venv/bin/python bench/crypto.py [--repeat 200]

Prints:
- SM4-GCM encrypt and decrypt throughput on 1 KiB and 64 KiB buffers (OpenSSL via cryptography);
- per-field seal + open of a 16-byte phone and a 2 KiB process-parameter text (KeyRing);
- SM3 hashes per second (the audit chain) and one PBKDF2-HMAC-SM3 password hash;
- SM2 sign / verify (gmssl arithmetic);
- the enterprise dossier page (enterprises:detail through the test client, SQLite in a temp dir)
  with 3 encrypted phones and 10 major hazard installations whose process parameters are
  encrypted, against the same page with those fields empty (nothing to decrypt):
  the difference is the encryption overhead per page (target <= 5 ms).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(fn, n):
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def ms(samples):
    return statistics.median(samples) * 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-crypto-")
    os.environ["DATA_DIR"] = tmp
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
    os.environ.pop("REDIS_URL", None)
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "regulator.settings")
    import django

    django.setup()
    from django.conf import settings

    settings.ALLOWED_HOSTS = ["testserver"]

    from regulator.crypto import keyring, sm3, sm4_gcm_decrypt, sm4_gcm_encrypt

    key = bytes(range(16))
    print("== SM4-GCM throughput (cryptography / OpenSSL)")
    for size in (1024, 64 * 1024):
        data = os.urandom(size)
        n = max(50, 20_000_000 // size)
        start = time.perf_counter()
        for _ in range(n):
            blob = sm4_gcm_encrypt(key, data, b"aad")
        enc = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(n):
            sm4_gcm_decrypt(key, blob, b"aad")
        dec = time.perf_counter() - start
        print(
            f"  {size:>6} B buffers: encrypt {size * n / enc / 1e6:7.1f} MB/s, decrypt {size * n / dec / 1e6:7.1f} MB/s"
        )

    print("== per-field cost (KeyRing.seal + open, SM4-GCM with table|row|column AAD)")
    ring = keyring()
    aad = b"enterprises_enterprise|0b3f0e6e-1c1e-4a43-9c2b-4a4c8b1c3e11|principal_phone"
    for label, text in (("phone 11 chars", "13812345678"), ("process params 2 KiB", "温度180℃;压力2.5MPa;" * 110)):
        n = 20_000
        start = time.perf_counter()
        for _ in range(n):
            token = ring.seal(text, aad)
        seal = (time.perf_counter() - start) / n
        start = time.perf_counter()
        for _ in range(n):
            ring.open(token, aad)
        opened = (time.perf_counter() - start) / n
        print(f"  {label:<22} seal {seal * 1e6:6.1f} us, open {opened * 1e6:6.1f} us")

    n = 100_000
    payload = b"x" * 256
    start = time.perf_counter()
    for _ in range(n):
        sm3(payload)
    print(f"== SM3 on 256 B: {n / (time.perf_counter() - start):,.0f} hashes/s")

    from regulator.security.hashers import PBKDF2SM3PasswordHasher

    hasher = PBKDF2SM3PasswordHasher()
    start = time.perf_counter()
    hasher.encode("Anquan-Jianguan-2026", hasher.salt())
    print(
        f"== PBKDF2-HMAC-SM3, {hasher.iterations:,} iterations: {(time.perf_counter() - start) * 1000:.0f} ms per hash"
    )

    from regulator import signing

    data = b"draw result " * 100
    sig = signing.sign_payload(data)
    sign_t = timed(lambda: signing.sign_payload(data), 20)
    verify_t = timed(lambda: signing.verify_payload(data, sig), 20)
    print(f"== SM2-SM3 (gmssl arithmetic): sign {ms(sign_t):.1f} ms, verify {ms(verify_t):.1f} ms")

    dossier(args.repeat)


def dossier(repeat):
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.test import Client

    from enterprises.models import Enterprise, MajorHazardInstallation
    from regulator.choices import Role
    from tests import factories as f

    regions = f.region_tree()
    encrypted = f.enterprise(regions["county"], name="加密企业")
    plain = f.enterprise(regions["county"], name="对照企业")
    for ent, phone, params in ((encrypted, "1381234567", "温度180℃;压力2.5MPa;" * 20), (plain, "", "")):
        ent.principal_phone = phone and phone + "1"
        ent.safety_officer_phone = phone and phone + "2"
        ent.safety_manager_phone = phone and phone + "3"
        ent.save()
        for i in range(10):
            MajorHazardInstallation.objects.create(enterprise=ent, name=f"储罐区{i}", process_parameters=params)
    inspector = f.user("bench_inspector", Role.INSPECTOR, jurisdiction=regions["county"])
    client = Client()
    client.force_login(inspector)
    from django.urls import reverse

    def page(pk):
        response = client.get(reverse("enterprises:detail", args=[pk]))
        assert response.status_code == 200, response.status_code
        return response

    body = page(encrypted.pk).content.decode()
    shown = "1381234567" in body or "138****5671" in body
    for _ in range(10):
        page(encrypted.pk)
        page(plain.pk)
    enc_t, plain_t = [], []
    for _ in range(repeat):  # interleaved so drift hits both equally
        enc_t += timed(lambda: page(encrypted.pk), 1)
        plain_t += timed(lambda: page(plain.pk), 1)

    # The decrypt work alone: 3 phones + 10 process parameters opened from fresh rows.
    def open_all():
        e = Enterprise.objects.get(pk=encrypted.pk)
        _ = (e.principal_phone, e.safety_officer_phone, e.safety_manager_phone)
        for m in MajorHazardInstallation.objects.filter(enterprise=e):
            _ = m.process_parameters

    def load_only():
        e = Enterprise.objects.get(pk=encrypted.pk)
        list(MajorHazardInstallation.objects.filter(enterprise=e))

    open_t = timed(open_all, repeat)
    load_t = timed(load_only, repeat)
    print("== dossier page (enterprises:detail, SQLite, median of", repeat, "interleaved runs)")
    print(f"  with 13 encrypted values:  {ms(enc_t):6.2f} ms   (phones shown on page: {shown})")
    print(f"  same page, fields empty:   {ms(plain_t):6.2f} ms")
    print(f"  page overhead:             {ms(enc_t) - ms(plain_t):6.2f} ms  (target <= 5 ms)")
    decrypt = ms(open_t) - ms(load_t)
    print(f"  decrypting the 13 values:  {decrypt:6.3f} ms  (load+open {ms(open_t):.2f} vs load {ms(load_t):.2f} ms)")


if __name__ == "__main__":
    main()
