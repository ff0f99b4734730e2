"""The risk map in a real (headless) Chromium: boundaries drawn, clusters and points from the server,
a click on a cluster zooms in and reloads the view, a click on a region drills down, and the page
raises no JavaScript error and no CSP violation.

Needs chromium (skips without it); marked e2e like the alerts browser test. Runs on SQLite or
PostgreSQL through pytest-django's live server (static files served by it).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import urllib.request
from decimal import Decimal

import pytest
from django.core.management import call_command

from enterprises import geo, geo_map
from enterprises.models import Enterprise
from tests import factories as f
from tests.alerts.e2e_support import session_key
from tests.alerts.test_browser import Page, chromium  # noqa: F401 - the browser fixture

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
# Null-safe: right after a navigation the new document may not have the element yet.
READY = "(e => !!e && e.dataset.state === 'ready')(document.getElementById('risk-map'))"


@pytest.fixture
def server(live_server):
    """The live server, usable with MEDIA_URL = None (private media, never served by URL).

    Django's test media handler parses MEDIA_URL at start; None gives it a bytes URL and every
    request fails, so give it a prefix that no request uses.
    """
    from urllib.parse import urlparse

    media = getattr(live_server.thread.httpd.get_app(), "application", None)
    if media is not None and isinstance(getattr(media, "base_url", None), tuple) and media.base_url.path == b"":
        media.base_url = urlparse("/__no_media__/")
    return live_server


def _populate(world, n=80):
    """n enterprises inside 虞山街道's outline, every grade represented."""
    shapes = geo.demo_geometries()
    rng = random.Random(5)
    industry = f.industry()
    grades = ["red", "orange", "yellow", "blue", ""]
    rows = []
    for i in range(n):
        lon, lat = geo.random_point_in(shapes["320581001"], rng)
        rows.append(
            Enterprise(
                uscc=f.make_uscc(),
                name=f"地图测试企业{i:03d}",
                region=world.regions["township"],
                industry=industry,
                longitude=Decimal(f"{lon:.6f}"),
                latitude=Decimal(f"{lat:.6f}"),
                risk_grade=grades[i % len(grades)],
            )
        )
    Enterprise.objects.bulk_create(rows)


def _drop_boundaries() -> None:
    from django.db import connection

    from enterprises.models import RegionBoundary

    try:
        RegionBoundary.objects.all().delete()
    finally:
        connection.close()


def _errors(page: Page) -> list[str]:
    bad = []
    for entry in page.console:
        if "WebSocket connection to" in entry or "/favicon.ico" in entry:
            continue  # the alert banner's socket (the WSGI live server has none) and the browser's icon probe
        if "exceptionDetails" in entry or '"level": "error"' in entry or '"type": "error"' in entry:
            bad.append(entry)
    return bad


def test_map_renders_clusters_zooms_and_drills_without_errors(server, chromium, world, monkeypatch):  # noqa: F811
    call_command("load_boundaries", str(geo.DEMO_BOUNDARIES), "--skip-unknown")
    _populate(world)
    monkeypatch.setattr(geo_map, "POINTS_LIMIT", 20)  # the live server runs in this process
    key = session_key(world.city_admin)
    targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{chromium}/json/list", timeout=10).read())  # noqa: S310
    page_ws = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
    base = server.url
    shapes, rng = geo.demo_geometries(), random.Random(1)
    while True:  # a spot in 常熟市 away from the markers (they are all in 虞山街道)
        spot = geo.random_point_in(shapes["320581"], rng)
        if not geo.contains(shapes["320581001"], *spot):
            break

    async def scenario():
        from websockets.asyncio.client import connect

        async with connect(page_ws, max_size=None) as ws:
            page = Page(ws)
            for domain in ("Runtime", "Log", "Network", "Page"):
                await page.call(f"{domain}.enable")
            await page.call(
                "Emulation.setDeviceMetricsOverride", width=1280, height=1000, deviceScaleFactor=1, mobile=False
            )
            await page.call("Network.setCookie", name="sessionid", value=key, url=base, httpOnly=True)
            await page.call("Page.navigate", url=f"{base}/map/")
            await page.until(
                READY,
                timeout=30,
            )
            state = await page.js(
                "(() => { const el = document.getElementById('risk-map'); const c = echarts.getInstanceByDom(el);"
                " const o = c.getOption(); return {clusters: +el.dataset.clusters, points: +el.dataset.points,"
                " total: +el.dataset.total, regions: o.geo[0].map, canvas: !!el.querySelector('canvas'),"
                " summary: document.getElementById('rm-summary').textContent,"
                " red: document.querySelector('[data-grade-count=red]').textContent}; })()"
            )
            assert state["canvas"] and state["regions"] == "riskmap"
            assert state["total"] == 80  # the world's own enterprises have no coordinates
            assert state["clusters"] >= 1 and "80" in state["summary"]
            assert state["red"] == "16"
            if os.environ.get("RISKMAP_SCREENSHOT"):  # for a person to look at: after the fade-in
                await asyncio.sleep(1.5)
                shot = await page.call("Page.captureScreenshot", format="png")
                import base64

                with open(os.environ["RISKMAP_SCREENSHOT"], "wb") as fh:
                    fh.write(base64.b64decode(shot["data"]))

            # A real mouse click on the biggest cluster: the map zooms in around it and asks again.
            xy = await page.js(
                "(() => { const el = document.getElementById('risk-map'); const c = echarts.getInstanceByDom(el);"
                " const data = c.getOption().series.find(s => s.id === 'clusters').data;"
                " let best = data[0]; data.forEach(d => { if (d.value[2] > best.value[2]) best = d; });"
                " const p = c.convertToPixel({seriesId: 'clusters'}, best.value.slice(0, 2));"
                " const r = el.getBoundingClientRect(); return [p[0] + r.left, p[1] + r.top]; })()"
            )
            await page.js("document.getElementById('risk-map').dataset.state = 'clicked'")
            for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
                await page.call("Input.dispatchMouseEvent", type=kind, x=xy[0], y=xy[1], button="left", clickCount=1)
            await page.until(READY, timeout=20)
            zoom = await page.js(
                "echarts.getInstanceByDom(document.getElementById('risk-map')).getOption().geo[0].zoom"
            )
            assert zoom > 1

            # Drill into 常熟市 by clicking inside its outline (at a point with no marker on it).
            await page.call("Page.navigate", url=f"{base}/map/")
            await page.until(READY, timeout=30)
            xy = await page.js(
                "(() => { const el = document.getElementById('risk-map'); const c = echarts.getInstanceByDom(el);"
                f" const p = c.convertToPixel({{geoIndex: 0}}, [{spot[0]}, {spot[1]}]);"
                " const r = el.getBoundingClientRect(); return [p[0] + r.left, p[1] + r.top]; })()"
            )
            for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
                await page.call("Input.dispatchMouseEvent", type=kind, x=xy[0], y=xy[1], button="left", clickCount=1)
            await page.until("location.search.includes('region=320581')", timeout=20)
            await page.until(READY, timeout=30)
            crumbs = await page.js("document.getElementById('rm-crumbs').textContent")
            assert "常熟市" in crumbs

            # Only the red ones (16, under the limit, none clustered): points; clicking one opens its dossier.
            monkeypatch.setattr(geo_map, "CLUSTER_MIN", 1000)
            await page.call("Page.navigate", url=f"{base}/map/?grade=red")
            await page.until(READY, timeout=30)
            assert await page.js("+document.getElementById('risk-map').dataset.clusters") == 0
            assert await page.js("+document.getElementById('risk-map').dataset.points") == 16
            xy = await page.js(
                "(() => { const el = document.getElementById('risk-map'); const c = echarts.getInstanceByDom(el);"
                " const data = c.getOption().series.find(s => s.id === 'points').data;"
                " const p = c.convertToPixel({seriesId: 'points'}, data[0].value);"
                " const r = el.getBoundingClientRect(); return [p[0] + r.left, p[1] + r.top]; })()"
            )
            await page.call("Input.dispatchMouseEvent", type="mouseMoved", x=xy[0], y=xy[1])
            tip = await page.until(
                "[...document.querySelectorAll('#risk-map div')].map(d => d.textContent)"
                ".find(t => t.includes('地图测试企业'))"
            )
            assert "重大风险（红）" in tip and "有机化学原料制造" in tip
            for kind in ("mousePressed", "mouseReleased"):
                await page.call("Input.dispatchMouseEvent", type=kind, x=xy[0], y=xy[1], button="left", clickCount=1)
            await page.until("/^\\/enterprises\\/\\d+\\/$/.test(location.pathname)", timeout=20)

            # No boundaries loaded at all: the enterprises are still shown, framed by their extent.
            await asyncio.to_thread(_drop_boundaries)
            await page.call("Page.navigate", url=f"{base}/map/")
            await page.until(READY, timeout=30)
            assert await page.js("+document.getElementById('risk-map').dataset.total") == 80
            note = await page.js("document.getElementById('rm-error').textContent")
            assert "load_boundaries" in note
            assert not _errors(page), _errors(page)
            csp = [c for c in page.console if "Content Security Policy" in c]
            assert not csp, csp

    asyncio.run(scenario())
