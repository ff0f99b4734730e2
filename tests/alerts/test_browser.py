"""The banner and board in a real (headless) Chromium behind Daphne: the WebSocket connects under the
CSP, a new alert flashes the banner and the board row in its level colour with a countdown, the
"enable sound" control is offered (autoplay blocked), and acknowledging from the page works.

Needs PostgreSQL, Redis and chromium; marked e2e.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import subprocess
import time
import urllib.request

import pytest

from tests.alerts.e2e_support import _port_open, e2e_redis_url, free_port, session_key, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class Page:
    """The smallest Chrome DevTools Protocol client we need: evaluate, set a cookie, navigate."""

    def __init__(self, ws):
        self.ws = ws
        self.ids = itertools.count(1)
        self.console: list[str] = []

    async def call(self, method: str, **params):
        msg_id = next(self.ids)
        await self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), 20))
            if msg.get("method") in ("Runtime.consoleAPICalled", "Log.entryAdded", "Runtime.exceptionThrown"):
                self.console.append(json.dumps(msg.get("params"), ensure_ascii=False)[:400])
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    async def js(self, expression: str):
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def until(self, expression: str, timeout: float = 15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = await self.js(expression)
            if value:
                return value
            await asyncio.sleep(0.2)
        raise AssertionError(f"timed out waiting for {expression}; console: {self.console[-5:]}")


@pytest.fixture
def chromium(tmp_path):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--autoplay-policy=user-gesture-required",
            f"--remote-debugging-port={port}",
            f"--user-data-dir={tmp_path / 'chrome'}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: _port_open("127.0.0.1", port), 30, "chromium's debugging port")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_banner_and_board_flash_count_down_and_acknowledge(world, gas, processes, chromium, settings):
    from alerts import services
    from alerts.models import Alert

    # This process pushes through the same Redis as Daphne.
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {"hosts": [e2e_redis_url()]}}
    }
    start, logdir = processes
    web = free_port()
    start("daphne", *_daphne(web))
    wait_for(lambda: _port_open("127.0.0.1", web), 30, "daphne")
    key = session_key(world.inspector)
    targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{chromium}/json/list", timeout=10).read())  # noqa: S310
    page_ws = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")

    async def scenario():
        from websockets.asyncio.client import connect

        async with connect(page_ws, max_size=None) as ws:
            page = Page(ws)
            await page.call("Runtime.enable")
            await page.call("Log.enable")
            await page.call("Network.enable")
            await page.call(
                "Network.setCookie", name="sessionid", value=key, domain="127.0.0.1", path="/", httpOnly=True
            )
            await page.call("Page.navigate", url=f"http://127.0.0.1:{web}/alerts/")
            await page.until(
                "document.querySelector('.ab-conn') && document.querySelector('.ab-conn').dataset.state === 'online'"
            )
            assert await page.js("document.getElementById('alert-banner').hidden") is True
            # Either autoplay is blocked and the "enable sound" control shows, or sound is already on
            # (headless Chromium may allow it): exactly one of the two is visible.
            assert await page.js(
                "document.querySelector('.ab-enable-sound').hidden !== document.querySelector('.ab-sound-on').hidden"
            )

            pk = await asyncio.to_thread(_raise_alert, world, gas)
            await page.until(f"!!document.querySelector('#alert-board tr[data-alert-id=\"{pk}\"]')")
            banner = await page.until(
                "!document.getElementById('alert-banner').hidden && document.getElementById('alert-banner').className"
            )
            assert "flash" in banner and "lvl-2" in banner
            row = await page.js(f"document.querySelector('#alert-board tr[data-alert-id=\"{pk}\"]').className")
            assert "flash" in row and "lvl-2" in row
            countdown = await page.until("document.querySelector('#alert-banner .ab-countdown').textContent.trim()")
            assert ":" in countdown
            # A click is a user gesture: sound becomes available, and the tone loop runs for the alert.
            await page.js("(b => b.hidden || b.click())(document.querySelector('.ab-enable-sound'))")
            await page.until(
                "document.querySelector('.ab-enable-sound').hidden && !document.querySelector('.ab-sound-on').hidden"
            )
            await page.until("document.getElementById('alert-banner').dataset.tone === '2'")
            # Acknowledge from the banner (POST with the CSRF token): the light and the tone stop.
            await page.js("document.querySelector('#alert-banner .ab-ack').click()")
            await page.until("document.getElementById('alert-banner').hidden", timeout=15)
            assert await page.js("document.getElementById('alert-banner').dataset.tone") == "0"
            csp = [c for c in page.console if "Content Security Policy" in c]
            assert not csp, csp
            return pk

    pk = asyncio.run(scenario())
    alert = Alert.objects.get(pk=pk)
    assert alert.state == "active_ack" and alert.acknowledged_by == world.inspector
    assert services  # imported for _raise_alert's side


def _raise_alert(world, gas) -> int:
    from django.db import connection

    from alerts import services

    try:
        return services.alert_raise(
            enterprise=world.here,
            device=gas.device,
            channel=gas.channel,
            kind="high",
            level=2,
            message="GT-101 罐区可燃气体 高报：30%LEL ≥ 20%LEL",
            value=30,
            limit=20,
            unit="%LEL",
        ).pk
    finally:
        connection.close()


def _daphne(port: int) -> list[str]:
    import sys
    from pathlib import Path

    return [
        str(Path(sys.executable).parent / "daphne"),
        "-b",
        "127.0.0.1",
        "-p",
        str(port),
        "regulator.asgi:application",
    ]
