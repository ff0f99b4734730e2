"""Contact phones and process parameters leave the dossier masked; a permitted reveal is audited."""

from django.contrib.auth.models import Permission
from django.urls import reverse

from enterprises.models import MajorHazardInstallation
from regulator.models import AuditEntry


def _grant_reveal(user):
    user.user_permissions.add(Permission.objects.get(codename="reveal_sensitive"))


def test_dossier_masks_phones_without_the_reveal_permission(world, client):
    world.here.principal_phone = "13812345678"
    world.here.save()
    client.force_login(world.inspector)
    page = client.get(reverse("enterprises:detail", args=[world.here.pk]))
    assert page.status_code == 200
    assert "13812345678" not in page.content.decode()
    assert "138****5678" in page.content.decode()
    assert "js-reveal" not in page.content.decode()


def test_reveal_shows_the_phone_and_is_audited(world, client):
    world.here.principal_phone = "13812345678"
    world.here.save()
    _grant_reveal(world.inspector)
    client.force_login(world.inspector)
    page = client.get(reverse("enterprises:detail", args=[world.here.pk])).content.decode()
    assert "13812345678" not in page and "js-reveal" in page
    url = reverse(
        "security:reveal",
        kwargs={"app_label": "enterprises", "model": "enterprise", "pk": world.here.pk, "field": "principal_phone"},
    )
    response = client.post(url)
    assert response.status_code == 200 and response.json()["value"] == "13812345678"
    assert AuditEntry.objects.filter(event="data.revealed", object_id=str(world.here.pk)).exists()


def test_reveal_outside_scope_is_404(world, client):
    _grant_reveal(world.other_inspector)
    client.force_login(world.other_inspector)
    url = reverse(
        "security:reveal",
        kwargs={"app_label": "enterprises", "model": "enterprise", "pk": world.here.pk, "field": "principal_phone"},
    )
    assert client.post(url).status_code == 404


def test_api_masks_process_parameters(world, client):
    MajorHazardInstallation.objects.create(
        enterprise=world.here, name="液氯储罐区", process_parameters="反应温度 85℃，压力 1.6MPa"
    )
    client.force_login(world.inspector)
    body = client.get("/api/v1/major-hazards/").json()
    values = [row["process_parameters"] for row in body["results"]]
    assert values and all("1.6MPa" not in v for v in values)
