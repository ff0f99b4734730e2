"""Simplified Chinese by default, whatever the browser asks for; English when the user chooses it."""

from django.urls import reverse


def test_chinese_by_default_even_for_an_english_browser(client, db):
    page = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert page.status_code == 200
    assert '<html lang="zh-hans">' in page.content.decode()
    assert "登录" in page.content.decode()


def test_the_language_switcher_selects_english(client, db):
    response = client.post(reverse("set_language"), {"language": "en", "next": reverse("login")})
    assert response.status_code == 302
    page = client.get(reverse("login"))
    assert '<html lang="en">' in page.content.decode()
    assert "Log in" in page.content.decode() or "Login" in page.content.decode()
