"""Daphne's resident memory before and after an anonymous 200 MB multipart POST to the login page.

Usage: python bench/body_cap.py [--mb 200] [--chunked]. Starts its own Daphne on a free port (the
settings of the environment; SQLite is enough: the body is refused before any view runs) and prints
VmRSS (MiB) before, at the peak, and a few seconds after, with the answer's status line.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"Daphne did not listen on {port} within {timeout} s")


def post(port: int, size: int, chunked: bool, path: str = "/accounts/login/") -> str:
    boundary = "----bench"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="f"; filename="x.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    total = len(head) + size + len(tail)
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Content-Type: multipart/form-data; boundary={boundary}",
        "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}",
        "",
        "",
    ]
    block = b"x" * (1024 * 1024)
    with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
        s.sendall("\r\n".join(lines).encode())

        def frame(data: bytes) -> bytes:
            return b"%x\r\n%s\r\n" % (len(data), data) if chunked else data

        try:
            s.sendall(frame(head))
            sent = 0
            while sent < size:
                piece = block[: min(len(block), size - sent)]
                s.sendall(frame(piece))
                sent += len(piece)
            s.sendall(frame(tail))
            if chunked:
                s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused early: the server closed while we were still sending
        try:
            return s.recv(200).split(b"\r\n", 1)[0].decode(errors="replace")
        except (ConnectionResetError, TimeoutError) as exc:
            return f"<no answer: {exc}>"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--chunked", action="store_true")
    args = parser.parse_args()
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "regulator.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_port(port)
        post(port, 1024, False)  # warm up: the first request imports the views
        before = rss_mib(proc.pid)
        peak = [before]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], rss_mib(proc.pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        status = post(port, args.mb * 1024 * 1024, args.chunked)
        time.sleep(3)
        done.set()
        sampler.join()
        after = rss_mib(proc.pid)
        mode = "chunked" if args.chunked else "Content-Length"
        print(f"{args.mb} MB multipart POST ({mode}) to /accounts/login/: {status}")
        print(f"Daphne VmRSS before {before:.0f} MiB, peak {peak[0]:.0f} MiB, 3 s after {after:.0f} MiB")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)


if __name__ == "__main__":
    main()
