"""Page scripts are translatable: Django's JavaScript catalog is served in the chosen language,
loaded before page scripts, cached safely, and the alert banner / channel page strings use it."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from devices.models import Channel, Device

STATIC = Path(settings.BASE_DIR) / "static"
PAGE_SCRIPTS = [STATIC / "alerts" / "alerts.js", STATIC / "devices" / "channel.js"]


def write_mo(path: Path, messages: dict[str, str]) -> None:
    """A GNU .mo file (what msgfmt writes), so the test needs no gettext tools."""
    messages = {"": "Content-Type: text/plain; charset=UTF-8\nPlural-Forms: nplurals=2; plural=(n != 1);\n", **messages}
    keys = sorted(messages)
    ids = [k.encode() for k in keys]
    strs = [messages[k].encode() for k in keys]
    header_size = 7 * 4
    table_size = len(keys) * 8
    offset = header_size + 2 * table_size
    id_table, str_table, blob = [], [], b""
    for data, table in [(b, id_table) for b in ids] + [(b, str_table) for b in strs]:
        table.append((len(data), offset + len(blob)))
        blob += data + b"\0"
    out = struct.pack("<7I", 0x950412DE, 0, len(keys), header_size, header_size + table_size, 0, 0)
    out += b"".join(struct.pack("<2I", *e) for e in id_table) + b"".join(struct.pack("<2I", *e) for e in str_table)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(out + blob)


@pytest.fixture
def english_js_catalog(settings, tmp_path):
    """What `makemessages -d djangojs` + translation + `compilemessages` will produce for English."""
    write_mo(
        tmp_path / "en" / "LC_MESSAGES" / "djangojs.mo",
        {"实时推送已连接": "Live push connected", "另有 %s 条未确认": "%s more unacknowledged"},
    )
    settings.LOCALE_PATHS = [tmp_path, *settings.LOCALE_PATHS]
    return tmp_path


def english(client: Client) -> Client:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def test_catalog_is_served_in_chinese_by_default_and_in_english_when_chosen(db, english_js_catalog):
    url = reverse("javascript-catalog")
    zh = Client().get(url)
    assert zh.status_code == 200 and zh["Content-Type"].startswith("text/javascript")
    body = zh.content.decode()
    assert "django.gettext = function" in body and "django.interpolate = function" in body
    assert "Live push connected" not in body  # Chinese is the source language: msgids are shown as they are

    en = english(Client()).get(url).content.decode()
    assert '"Live push connected"' in en and '"%s more unacknowledged"' in en


def test_catalog_needs_no_login_and_revalidates_with_a_304(db):
    client = Client()  # the login page extends base.html too
    first = client.get(reverse("javascript-catalog"))
    assert first.status_code == 200
    assert "no-cache" in first["Cache-Control"] and first["Last-Modified"]
    again = client.get(reverse("javascript-catalog"), HTTP_IF_MODIFIED_SINCE=first["Last-Modified"])
    assert again.status_code == 304 and again.content == b""


def test_pages_load_the_catalog_of_their_language_before_the_page_scripts(world):
    device = Device.objects.create(enterprise=world.here, name="罐区网关", host="127.0.0.1", port=15903)
    channel = Channel.objects.create(device=device, tag="GT-101", name="可燃气体", address=0)
    client = Client()
    client.force_login(world.inspector)
    html = client.get(reverse("devices:channel", args=[channel.pk])).content.decode()
    catalog = html.index(f'<script src="{reverse("javascript-catalog")}?l=zh-hans"></script>')
    assert catalog < html.index("alerts/alerts.js") and catalog < html.index("devices/channel.js")
    assert catalog < html.index("js/app.js")

    html = english(client).get(reverse("alerts:board")).content.decode()
    # A different URL per language: a cached catalog of the other language is never reused.
    assert f'<script src="{reverse("javascript-catalog")}?l=en"></script>' in html


CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
STRING = re.compile(r"""(gettext\(\s*)?(["'])((?:\\.|(?!\2).)*)\2""")


@pytest.mark.parametrize("path", PAGE_SCRIPTS, ids=lambda p: p.name)
def test_every_chinese_string_of_the_page_scripts_goes_through_gettext(path):
    source = path.read_text(encoding="utf-8")
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("//"))
    literals = [(m.group(1), m.group(3)) for m in STRING.finditer(code)]
    chinese = [(wrapped, text) for wrapped, text in literals if CJK.search(text)]
    assert chinese, "expected the page's strings here"
    assert [text for wrapped, text in chinese if not wrapped] == []
    # Labels no longer come from data-label-* attributes rendered by the server.
    assert 'getAttribute("data-label-' not in code
