"""The permission matrix: one row per (URL name, method) the project serves, read by the generated tests.

Modelled on NetBox's ``utilities/testing/api.py``: for every endpoint, anonymous is refused, a persona
without the permission gets 403, the permitted persona gets its 2xx (a write leaves exactly one audit
row), and the permitted persona gets 404 for the same kind of object in another county. The endpoints
themselves are enumerated from the URL resolver (``endpoints``), so an endpoint without a row here
fails ``test_every_endpoint_has_a_row``.

A row (all keys optional):

- ``kind``: the object builder (``BUILDERS``) the URL points at; ``build(ctx, kind, "here")`` is in the
  permitted persona's scope, ``"there"`` (an enterprise of the other county) is not;
- ``kwargs``: ``f(obj) -> dict`` of URL kwargs (default ``{"pk": obj.pk}``);
- ``ok``: the permitted persona (attribute of ``ctx``); ``status``: what it gets (default 200/201);
- ``denied``: a signed-in persona without the permission (403); ``None`` with ``open=reason`` where
  every signed-in user may call it and scope alone decides (lists then must not show the other side);
- ``payload``: ``f(ctx, obj) -> dict`` (JSON) for writes; ``multipart=True`` to send it as a form;
- ``audit``: the model label whose rows a write must add exactly one of (default ``regulator.AuditEntry``;
  a workflow step's own transition table is its audit row); ``None`` for a write audited nowhere
  (must say why in ``no_audit``);
- ``out_body``: ``f(ctx) -> dict``, a create whose payload names the other county's object: refused as
  if it did not exist (400 or 404, never 403), nothing written;
- ``xfail``: ``{case: reason}`` for holes left open (strict);
- ``skip``: ``{case: reason}`` where a case does not apply.
"""

from __future__ import annotations

import io
from datetime import date, timedelta
from types import SimpleNamespace

from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

WRITE_METHODS = {"post", "put", "patch", "delete"}
AUDIT = "regulator.AuditEntry"


# --------------------------------------------------------------------------------------------------
# Enumeration: what the URLconf serves.


def _walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = f"{p.namespace}:" if p.namespace else ""
            for route, name, pattern in _walk(p.url_patterns, prefix + str(p.pattern)):
                yield route, (ns + name) if name else name, pattern
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p.name, p


def _methods(callback) -> list[str]:
    actions = getattr(callback, "actions", None)
    if actions:  # a ViewSet route: the router's method -> action map
        return sorted(m for m in actions if m not in ("head", "options"))
    cls = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if cls is not None:
        allowed = getattr(cls, "http_method_names", [])
        return sorted(m for m in ("get", "post", "put", "patch", "delete") if m in allowed and hasattr(cls, m))
    return []


def endpoints() -> dict[str, str]:
    """Every ``"<url name> <METHOD>"`` under /api/v1/, mapped to its route."""
    found = {}
    for route, name, pattern in _walk(get_resolver().url_patterns):
        if not route.startswith("api/v1/"):
            continue
        for method in _methods(pattern.callback):
            found[f"{name} {method.upper()}"] = route
    return found


def html_pages() -> dict[str, tuple[str, object]]:
    """Every named page of the apps' own URLconfs (not the admin, not the API): ``namespace:name`` ->
    (route, view)."""
    apps = ("enterprises", "hazards", "enforcement", "devices", "alerts")
    found = {}
    for route, name, pattern in _walk(get_resolver().url_patterns):
        if name and name.split(":")[0] in apps and ":" in name:
            found[name] = (route, pattern.callback)
    return found


def html_write_views() -> dict[str, str]:
    return {name: route for name, (route, _view) in html_pages().items()}


# --------------------------------------------------------------------------------------------------
# Objects on each side of the county line.


def _enterprise(ctx, side):
    return ctx.world.here if side == "here" else ctx.world.there


def _licence(ctx, side):
    from enterprises.models import Licence

    n = Licence.objects.count() + 1
    return Licence.objects.create(
        enterprise=_enterprise(ctx, side),
        licence_type="safety_production",
        number=f"(苏)WH安许证字[2026]{n:04d}{side}",
        issued_on=date(2025, 1, 1),
        expires_on=date(2028, 1, 1),
    )


def _installation(ctx, side):
    from enterprises.models import MajorHazardInstallation

    return MajorHazardInstallation.objects.create(enterprise=_enterprise(ctx, side), name=f"罐区{side}")


def _hazard(state="reported", grade="ordinary"):
    def build(ctx, side):
        from hazards import services

        ent = _enterprise(ctx, side)
        officer = ctx.officer if side == "here" else ctx.there_officer
        hazard = services.hazard_report(
            enterprise=ent,
            user=officer,
            source="self_check",
            description="储罐区可燃气体报警器失效",
            grade=grade,
            major_level=1 if grade == "major" else None,
        )
        steps = ["reported", "confirmed", "rectifying", "submitted", "closed"]
        for step in steps[1 : steps.index(state) + 1]:
            if step == "confirmed":
                hazard = services.hazard_confirm(hazard=hazard, user=ctx.manager if side == "here" else officer)
            elif step == "rectifying":
                hazard = services.hazard_start_rectification(
                    hazard=hazard,
                    user=officer,
                    measures="更换报警器",
                    funds="5000",
                    responsible_person="张三",
                    deadline=timezone.localdate() + timedelta(days=10),
                    emergency_plan="加强巡检",
                )
            elif step == "submitted":
                hazard = services.hazard_submit_rectification(hazard=hazard, user=officer, note="已更换")
        return hazard

    return build


def _hazard_with_extension(ctx, side):
    from hazards import services

    hazard = _hazard("rectifying")(ctx, side)
    officer = ctx.officer if side == "here" else ctx.there_officer
    services.hazard_request_extension(
        hazard=hazard, user=officer, new_deadline=timezone.localdate() + timedelta(days=20), reason="备件未到"
    )
    return hazard


def _hazard_photo(ctx, side):
    from hazards import services

    hazard = _hazard()(ctx, side)
    officer = ctx.officer if side == "here" else ctx.there_officer
    photo = services.hazard_add_photos(hazard=hazard, user=officer, files=[jpeg()])[0]
    return SimpleNamespace(pk=hazard.pk, photo=photo)


def _template(ctx, side):
    from hazards.models import ChecklistItem, ChecklistTemplate

    template = ChecklistTemplate.objects.create(name=f"日常检查表{side}", cycle_days=30)
    ChecklistItem.objects.create(template=template, order=1, text="安全出口畅通", basis="GB 50016", category="fire")
    return template


def _run(ctx, side):
    from hazards import services

    officer = ctx.officer if side == "here" else ctx.there_officer
    return services.checklist_start_run(template=_template(ctx, side), enterprise=_enterprise(ctx, side), user=officer)


def _run_answered(ctx, side):
    from hazards import services

    run = _run(ctx, side)
    officer = ctx.officer if side == "here" else ctx.there_officer
    for item in run.template.items.all():
        services.checklist_answer(run=run, item=item, user=officer, result="pass")
    return run


def _inspector_profile(ctx, side):
    from enforcement.models import InspectorProfile

    users = [ctx.world.inspector, ctx.inspector_b] if side == "here" else [ctx.world.other_inspector, ctx.other_b]
    profiles = [
        InspectorProfile.objects.get_or_create(
            user=user, defaults={"certification_level": "senior", "certificate_number": f"3205{user.pk:04d}"}
        )[0]
        for user in users
    ]  # a team is at least two inspectors
    return profiles[0]


def _plan(ctx, side):
    from enforcement import services

    head = ctx.head if side == "here" else ctx.other_head
    county = ctx.world.regions["county" if side == "here" else "other_county"]
    return services.plan_create(
        user=head,
        name=f"双随机抽查{side}",
        jurisdiction=county,
        period_start=date(2026, 1, 1),
        period_end=date(2026, 12, 31),
        items=[{"basis": "《安全生产法》第四十一条", "content": "安全风险分级管控", "method": "现场检查"}],
        strata=[{"label": "全部", "ratio": "1"}],
        team_size=2,
        require_specialty=False,
    )


def _draw(ctx, side):
    from enforcement import services

    _inspector_profile(ctx, side)
    head = ctx.head if side == "here" else ctx.other_head
    return services.draw_plan(plan=_plan(ctx, side), user=head)


def _plan_drawn(ctx, side):
    return _draw(ctx, side).plan


def _inspection_completed(ctx, side):
    from enforcement import services

    user = ctx.world.inspector if side == "here" else ctx.world.other_inspector
    return services.inspection_complete(inspection=_inspection(ctx, side), user=user, outcome="no_problem")


def _inspection(ctx, side):
    from enforcement.models import Inspection

    inspection = Inspection.objects.create(enterprise=_enterprise(ctx, side), date=timezone.localdate())
    inspection.team.add(ctx.world.inspector if side == "here" else ctx.world.other_inspector)
    return inspection


def _inspection_photo(ctx, side):
    from enforcement import services

    inspection = _inspection(ctx, side)
    user = ctx.world.inspector if side == "here" else ctx.world.other_inspector
    photo = services.inspection_add_photo(inspection=inspection, user=user, upload=jpeg(), caption="现场")
    return SimpleNamespace(pk=inspection.pk, photo=photo)


def _document(ctx, side):
    from enforcement import services

    inspection = _inspection(ctx, side)
    user = ctx.world.inspector if side == "here" else ctx.world.other_inspector
    inspection = services.inspection_complete(inspection=inspection, user=user, outcome="no_problem")
    return services.document_issue(inspection=inspection, doc_type="onsite_record", user=user, content={})


def _credit_score(ctx, side):
    from enforcement import services

    ent = _enterprise(ctx, side)
    services.credit_recompute(enterprise_ids=[ent.pk])
    return SimpleNamespace(pk=ent.pk)


def _credit_event(ctx, side):
    from enforcement import services

    return services.credit_record_event(
        enterprise=_enterprise(ctx, side), kind="penalty", occurred_on=date(2026, 1, 5), description="罚款"
    )


def _listing(ctx, side, *, listed_on=None):
    from enforcement import services

    head = ctx.head if side == "here" else ctx.other_head
    return services.listing_add(
        enterprise=_enterprise(ctx, side), reason="重大事故", user=head, listed_on=listed_on or date(2024, 1, 1)
    )


def _repair(ctx, side):
    from enforcement import services

    listing = _listing(ctx, side)
    officer = ctx.officer if side == "here" else ctx.there_officer
    application = services.repair_apply(listing=listing, user=officer, statement="已整改")
    return SimpleNamespace(pk=listing.pk, application=application)


def _device(ctx, side):
    from devices.models import Device

    port = 20000 + Device.objects.count()  # (host, port) is unique
    return Device.objects.create(
        enterprise=_enterprise(ctx, side), name=f"气体控制器{side}", host="127.0.0.1", port=port
    )


def _channel(ctx, side):
    from devices.models import Channel

    return Channel.objects.create(
        device=_device(ctx, side), tag=f"GT-{side}", name="罐区可燃气体", address=1, quantity="combustible_gas"
    )


def _alert(state="active"):
    def build(ctx, side):
        from alerts import services
        from alerts.models import Alert

        channel = _channel(ctx, side)
        raised_at = timezone.now()
        alert = Alert.objects.create(
            state="active_unack",
            ack_due_at=services.ack_deadline(2, raised_at),
            enterprise=channel.device.enterprise,
            device=channel.device,
            channel=channel,
            kind="high",
            level=2,
            message="可燃气体浓度高",
            raised_at=raised_at,
        )
        head = ctx.head if side == "here" else ctx.other_head
        if state in ("acknowledged", "shelved", "out_of_service"):
            alert = services.alert_acknowledge(alert=alert, user=head)
        if state == "shelved":
            alert = services.alert_shelve(
                alert=alert, user=head, reason="检修", until=timezone.now() + timedelta(hours=1)
            )
        if state == "out_of_service":
            alert = services.alert_remove_from_service(alert=alert, user=head, reason="更换探头")
        return alert

    return build


def _alert_rule(ctx, side):
    from alerts.models import AlertRule

    return AlertRule.objects.create(
        name=f"设备规则{side}", device=_device(ctx, side), quantity="combustible_gas", high=20, level_high=2
    )


def _enterprise_and_template(ctx, side):
    ent = _enterprise(ctx, side)
    return SimpleNamespace(pk=ent.pk, template_id=_template(ctx, side).pk)


BUILDERS = {
    "enterprise_and_template": _enterprise_and_template,
    "enterprise": _enterprise,
    "licence": _licence,
    "installation": _installation,
    "hazard": _hazard(),
    "hazard_confirmed": _hazard("confirmed"),
    "hazard_rectifying": _hazard("rectifying"),
    "hazard_submitted": _hazard("submitted"),
    "hazard_major_confirmed": _hazard("confirmed", grade="major"),
    "hazard_extension": _hazard_with_extension,
    "hazard_photo": _hazard_photo,
    "inspection_photo": _inspection_photo,
    "template": _template,
    "run": _run,
    "run_answered": _run_answered,
    "plan_drawn": _plan_drawn,
    "inspection_completed": _inspection_completed,
    "inspector_profile": _inspector_profile,
    "plan": _plan,
    "draw": _draw,
    "inspection": _inspection,
    "document": _document,
    "credit_score": _credit_score,
    "credit_event": _credit_event,
    "listing": _listing,
    "repair": _repair,
    "device": _device,
    "channel": _channel,
    "alert": _alert(),
    "alert_acknowledged": _alert("acknowledged"),
    "alert_shelved": _alert("shelved"),
    "alert_out_of_service": _alert("out_of_service"),
    "alert_rule": _alert_rule,
    "region": lambda ctx, side: ctx.world.regions["county" if side == "here" else "other_county"],
    "park": lambda ctx, side: ctx.world.park if side == "here" else ctx.other_park,
}


def build(ctx, kind, side):
    return BUILDERS[kind](ctx, side)


def jpeg():
    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 30, 30)).save(buf, "JPEG")
    return SimpleUploadedFile("photo.jpg", buf.getvalue(), content_type="image/jpeg")


# --------------------------------------------------------------------------------------------------
# The API rows.

_SOON = lambda days=10: (timezone.localdate() + timedelta(days=days)).isoformat()  # noqa: E731
_PLAN = {"measures": "更换报警器", "funds": "5000", "responsible_person": "张三", "emergency_plan": "加强巡检"}
OPEN_READ = "every signed-in user may read; scope alone decides what they see"
REF = "reference data, the same for every signed-in user"
TRANSITION = "hazards.HazardTransition"
ALERT_TRANSITION = "alerts.AlertTransition"


def _read(kind=None, *, ok="inspector", kwargs=None, open=OPEN_READ, out=True, **extra):
    row = {"kind": kind, "ok": ok, "denied": None, "open": open, "out": out and kind is not None}
    if kwargs:
        row["kwargs"] = kwargs
    row.update(extra)
    return row


def _write(kind, payload, *, ok, denied, audit=AUDIT, status=None, **extra):
    row = {"kind": kind, "ok": ok, "denied": denied, "payload": payload, "audit": audit, "out": kind is not None}
    if status:
        row["status"] = status
    row.update(extra)
    return row


def _licence_payload(ctx, obj):
    return {
        "enterprise": ctx.world.here.pk,
        "licence_type": "hazchem_use",
        "number": "(苏)WH使字[2026]0099",
        "issued_on": "2026-01-01",
        "expires_on": "2029-01-01",
    }


def _enterprise_payload(ctx, obj):
    from enterprises.models import Industry
    from tests import factories as f

    return {
        "uscc": f.make_uscc(7001),
        "name": "常熟戊化工有限公司",
        "region": ctx.world.regions["township"].pk,
        "industry": Industry.objects.get(code="2614").pk,
    }


def _plan_payload(ctx, obj):
    return {
        "name": "第二季度抽查",
        "jurisdiction": ctx.world.regions["county"].code,
        "period_start": "2026-04-01",
        "period_end": "2026-06-30",
        "items": [{"basis": "《安全生产法》", "content": "安全培训", "method": "查资料"}],
        "strata": [{"label": "全部", "ratio": "0.5"}],
    }


def _device_payload(ctx, obj):
    return {"enterprise": ctx.world.here.pk, "name": "新控制器", "protocol": "tcp", "host": "127.0.0.1", "port": 1503}


def _channel_payload(ctx, obj):
    device = obj.device if obj is not None else _device(ctx, "here")
    return {"device": device.pk, "tag": "PT-1", "name": "压力", "address": 3, "quantity": "pressure"}


def _rule_payload(ctx, obj):
    device = obj.device if obj is not None else _device(ctx, "here")
    return {"name": "设备规则", "device": device.pk, "quantity": "combustible_gas", "high": 25, "level_high": 2}


def _answer_payload(ctx, run):
    return {"item": run.template.items.first().pk, "result": "pass"}


API = {
    # regulator
    "api-me GET": _read(None, open="every signed-in user reads their own profile"),
    "region-list GET": _read("region"),
    "region-detail GET": _read("region"),
    "park-list GET": _read("park"),
    "park-detail GET": _read("park"),
    # enterprises
    "enterprise-list GET": _read("enterprise"),
    "enterprise-detail GET": _read("enterprise"),
    "enterprise-dossier GET": _read("enterprise"),
    "enterprise-list POST": _write(
        None,
        _enterprise_payload,
        ok="inspector",
        denied="enterprise_user",
        audit=AUDIT,
        status=201,
        out_body=lambda c: {**_enterprise_payload(c, None), "region": c.world.regions["other_county"].pk},
    ),
    "enterprise-detail PUT": _write(
        "enterprise",
        lambda ctx, obj: {
            "uscc": obj.uscc,
            "name": obj.name,
            "region": obj.region_id,
            "industry": obj.industry_id,
            "employees": 12,
        },
        ok="inspector",
        denied="enterprise_user",
    ),
    "enterprise-detail PATCH": _write(
        "enterprise", lambda ctx, obj: {"employees": 7}, ok="inspector", denied="enterprise_user"
    ),
    "industry-list GET": _read(None, open=REF),
    "industry-tree GET": _read(None, open=REF),
    "industry-detail GET": _read(None, open=REF, kwargs=None, fixed_kwargs=lambda ctx: {"pk": ctx.industry.pk}),
    "licence-list GET": _read("licence"),
    "licence-detail GET": _read("licence"),
    "licence-list POST": _write(
        None,
        _licence_payload,
        ok="inspector",
        denied="enterprise_user",
        status=201,
        out_body=lambda c: {**_licence_payload(c, None), "enterprise": c.world.there.pk},
    ),
    "licence-detail PUT": _write(
        "licence",
        lambda ctx, obj: {**_licence_payload(ctx, obj), "number": obj.number, "licence_type": obj.licence_type},
        ok="inspector",
        denied="enterprise_user",
    ),
    "licence-detail PATCH": _write(
        "licence", lambda ctx, obj: {"scope": "危险化学品使用"}, ok="inspector", denied="enterprise_user"
    ),
    "licence-detail DELETE": _write("licence", None, ok="inspector", denied="enterprise_user", status=204),
    "major-hazard-list GET": _read("installation"),
    "major-hazard-detail GET": _read("installation"),
    "major-hazard-list POST": _write(
        None,
        lambda ctx, obj: {"enterprise": ctx.world.here.pk, "name": "液氯储罐区", "substances": []},
        ok="inspector",
        denied="enterprise_user",
        status=201,
        out_body=lambda c: {"enterprise": c.world.there.pk, "name": "液氯储罐区", "substances": []},
    ),
    "major-hazard-detail PUT": _write(
        "installation",
        lambda ctx, obj: {"enterprise": ctx.world.here.pk, "name": "液氯储罐区", "substances": []},
        ok="inspector",
        denied="enterprise_user",
    ),
    "major-hazard-detail PATCH": _write(
        "installation", lambda ctx, obj: {"people_within_500m": 40}, ok="inspector", denied="enterprise_user"
    ),
    "major-hazard-detail DELETE": _write("installation", None, ok="inspector", denied="enterprise_user", status=204),
    # hazards
    "hazard-list GET": _read("hazard"),
    "hazard-detail GET": _read("hazard"),
    "hazard-indicators GET": _read(None),
    "hazard-timeline GET": _read("hazard"),
    "hazard-photo GET": _read("hazard_photo", kwargs=lambda obj: {"pk": obj.pk, "photo_uid": str(obj.photo.uid)}),
    "hazard-list POST": _write(
        None,
        lambda ctx, obj: {"enterprise": ctx.world.here.pk, "source": "self_check", "description": "消防通道堵塞"},
        ok="officer",
        denied=None,
        open="everyone who sees the enterprise may report a hazard on it",
        audit=TRANSITION,
        status=201,
        out_body=lambda c: {"enterprise": c.world.there.pk, "source": "self_check", "description": "消防通道堵塞"},
    ),
    "hazard-confirm POST": _write("hazard", lambda c, o: {}, ok="manager", denied="officer", audit=TRANSITION),
    "hazard-dismiss POST": _write(
        "hazard", lambda c, o: {"reason": "误报"}, ok="inspector", denied="officer", audit=TRANSITION
    ),
    "hazard-start-rectification POST": _write(
        "hazard_confirmed",
        lambda c, o: {**_PLAN, "deadline": _SOON()},
        ok="officer",
        denied="inspector",
        audit=TRANSITION,
    ),
    "hazard-submit-rectification POST": _write(
        "hazard_rectifying", lambda c, o: {"note": "已更换"}, ok="officer", denied="inspector", audit=TRANSITION
    ),
    "hazard-verify POST": _write("hazard_submitted", lambda c, o: {}, ok="manager", denied="officer", audit=TRANSITION),
    "hazard-fail-verification POST": _write(
        "hazard_submitted", lambda c, o: {"reason": "未整改到位"}, ok="manager", denied="officer", audit=TRANSITION
    ),
    "hazard-request-extension POST": _write(
        "hazard_rectifying",
        lambda c, o: {"new_deadline": _SOON(30), "reason": "备件未到"},
        ok="officer",
        denied="inspector",
        audit=TRANSITION,
        status=201,
    ),
    "hazard-decide-extension POST": _write(
        "hazard_extension", lambda c, o: {"approve": True}, ok="manager", denied="officer", audit=TRANSITION
    ),
    "hazard-list-supervision POST": _write(
        "hazard_major_confirmed", lambda c, o: {"due": _SOON(15)}, ok="inspector", denied="officer", audit=TRANSITION
    ),
    "hazard-upload-photos POST": _write(
        "hazard",
        lambda c, o: {"photos": [jpeg()], "kind": "before"},
        ok="officer",
        denied="park_manager",
        multipart=True,
        status=201,
    ),
    "checklist-template-list GET": _read(None, open=REF),
    "checklist-template-detail GET": _read(None, open=REF, fixed_kwargs=lambda ctx: {"pk": _template(ctx, "x").pk}),
    "checklist-template-list POST": _write(
        None,
        lambda c, o: {"name": "新检查表", "cycle_days": 30, "items": [{"order": 1, "text": "灭火器完好"}]},
        ok="county_admin",
        denied="enterprise_user",
        status=201,
        out=False,
    ),
    "checklist-run-list GET": _read("run"),
    "checklist-run-detail GET": _read("run"),
    "checklist-run-list POST": _write(
        None,
        lambda c, o: {"enterprise": c.world.here.pk, "template": _template(c, "new").pk},
        ok="officer",
        denied="inspector",
        status=201,
        audit=None,
        no_audit="starting a run writes nothing but the run; its answers and completion are audited",
        out_body=lambda c: {"enterprise": c.world.there.pk, "template": _template(c, "new").pk},
    ),
    "checklist-run-answer POST": _write(
        "run", _answer_payload, ok="officer", denied="inspector", audit=None, no_audit="the answer row is the record"
    ),
    "checklist-run-complete POST": _write("run_answered", lambda c, o: {}, ok="officer", denied="inspector"),
    # enforcement
    "enforcement-inspector-list GET": _read("inspector_profile"),
    "enforcement-inspector-detail GET": _read("inspector_profile"),
    "enforcement-plan-list GET": _read("plan"),
    "enforcement-plan-detail GET": _read("plan"),
    "enforcement-plan-list POST": _write(
        None,
        _plan_payload,
        ok="head",
        denied="enterprise_user",
        status=201,
        out_body=lambda c: {**_plan_payload(c, None), "jurisdiction": c.world.regions["other_county"].code},
    ),
    "enforcement-plan-draw POST": _write("plan", lambda c, o: {}, ok="head", denied="enterprise_user", status=201),
    "enforcement-plan-close POST": _write("plan_drawn", lambda c, o: {}, ok="head", denied="enterprise_user"),
    "enforcement-draw-list GET": _read("draw"),
    "enforcement-draw-detail GET": _read("draw"),
    "enforcement-draw-verify GET": _read("draw"),
    "enforcement-inspection-list GET": _read("inspection"),
    "enforcement-inspection-detail GET": _read("inspection"),
    "enforcement-inspection-complete POST": _write(
        "inspection",
        lambda c, o: {"outcome": "no_problem"},
        ok="inspector",
        denied="enterprise_user",
        # two writes, each audited once: the inspection and the credit event its outcome records
        events=["enforcement.credit_event", "enforcement.inspection_completed"],
    ),
    "enforcement-inspection-cancel POST": _write(
        "inspection", lambda c, o: {"reason": "企业停产"}, ok="head", denied="enterprise_user"
    ),
    "enforcement-inspection-upload-photo POST": _write(
        "inspection",
        lambda c, o: {"image": jpeg(), "caption": "现场照片"},
        ok="inspector",
        denied="enterprise_user",
        multipart=True,
        status=201,
    ),
    "enforcement-inspection-photo GET": _read(
        "inspection_photo", kwargs=lambda obj: {"pk": obj.pk, "photo_id": obj.photo.pk}
    ),
    "enforcement-inspection-documents POST": _write(
        "inspection_completed",
        lambda c, o: {"doc_type": "onsite_record"},
        ok="inspector",
        denied="enterprise_user",
        status=201,
    ),
    "enforcement-document-list GET": _read("document"),
    "enforcement-document-detail GET": _read("document"),
    "enforcement-document-pdf GET": _read("document"),
    "enforcement-document-verify GET": _read("document"),
    "enforcement-credit-score-list GET": _read("credit_score"),
    "enforcement-credit-score-detail GET": _read("credit_score", kwargs=lambda obj: {"enterprise": obj.pk}),
    "enforcement-credit-score-history GET": _read("credit_score", kwargs=lambda obj: {"enterprise": obj.pk}),
    "enforcement-credit-event-list GET": _read("credit_event"),
    "enforcement-credit-event-detail GET": _read("credit_event"),
    "enforcement-credit-event-list POST": _write(
        None,
        lambda c, o: {"enterprise": c.world.here.pk, "kind": "penalty", "occurred_on": "2026-01-10"},
        ok="inspector",
        denied="enterprise_user",
        status=201,
        out_body=lambda c: {"enterprise": c.world.there.pk, "kind": "penalty", "occurred_on": "2026-01-10"},
    ),
    "enforcement-listing-list GET": _read("listing"),
    "enforcement-listing-detail GET": _read("listing"),
    "enforcement-listing-list POST": _write(
        None,
        lambda c, o: {"enterprise": c.world.here.pk, "reason": "重大事故"},
        ok="head",
        denied="enterprise_user",
        status=201,
        out_body=lambda c: {"enterprise": c.world.there.pk, "reason": "重大事故"},
    ),
    "enforcement-listing-repair POST": _write(
        "listing", lambda c, o: {"statement": "已整改"}, ok="officer", denied="inspector", status=201
    ),
    "enforcement-listing-decide POST": _write(
        "repair",
        lambda c, o: {"approve": True, "note": "同意"},
        ok="head",
        denied="enterprise_user",
        kwargs=lambda obj: {"pk": obj.pk, "application_id": obj.application.pk},
    ),
    # devices
    "readings-ingest POST": {
        "kind": None,
        "anon_status": 401,
        "skip": {
            "denied": "authenticated by an enterprise ingest token, not a user (tests/devices/test_ingest_scope.py)",
            "ok": "token-authenticated; tests/devices/test_api.py covers the 200 path",
            "out": "a token writes only its own enterprise's channels (tests/devices/test_ingest_scope.py)",
        },
    },
    "device-list GET": _read("device"),
    "device-detail GET": _read("device"),
    "device-coil-writes GET": _read("device"),
    "device-list POST": _write(
        None,
        _device_payload,
        ok="inspector",
        denied="enterprise_user",
        status=201,
        out_body=lambda c: {**_device_payload(c, None), "enterprise": c.world.there.pk},
    ),
    "device-detail PUT": _write(
        "device",
        lambda c, o: {**_device_payload(c, o), "name": "改名控制器"},
        ok="inspector",
        denied="enterprise_user",
    ),
    "device-detail PATCH": _write("device", lambda c, o: {"name": "改名"}, ok="inspector", denied="enterprise_user"),
    "device-detail DELETE": _write("device", None, ok="inspector", denied="enterprise_user", status=204),
    "device-maintenance POST": _write(
        "device", lambda c, o: {"maintenance": True, "reason": "检修"}, ok="inspector", denied="enterprise_user"
    ),
    "channel-list GET": _read("channel"),
    "channel-detail GET": _read("channel"),
    "channel-trend GET": _read("channel"),
    "channel-list POST": _write(
        None,
        _channel_payload,
        ok="inspector",
        denied="enterprise_user",
        status=201,
        out_body=lambda c: _channel_payload(c, _channel(c, "there")),
    ),
    "channel-detail PUT": _write(
        "channel",
        lambda c, o: {**_channel_payload(c, o), "tag": o.tag},
        ok="inspector",
        denied="enterprise_user",
    ),
    "channel-detail PATCH": _write("channel", lambda c, o: {"name": "改名"}, ok="inspector", denied="enterprise_user"),
    "channel-detail DELETE": _write("channel", None, ok="inspector", denied="enterprise_user", status=204),
    # alerts
    "operating-mode GET": _read("enterprise", kwargs=lambda obj: {"enterprise_id": obj.pk}),
    "operating-mode PUT": _write(
        "enterprise",
        lambda c, o: {"mode": "overhaul"},
        ok="officer",
        denied="park_manager",
        kwargs=lambda obj: {"enterprise_id": obj.pk},
    ),
    "alert-list GET": _read("alert"),
    "alert-detail GET": _read("alert"),
    "alert-acknowledge POST": _write(
        "alert",
        lambda c, o: {"comment": "收到"},
        ok="head",
        denied=None,
        open="everyone who sees the alert may acknowledge it",
    ),
    "alert-acknowledge-group POST": _write(
        "alert",
        lambda c, o: {"comment": "收到"},
        ok="head",
        denied=None,
        open="everyone who sees the alert may acknowledge it",
    ),
    "alert-shelve POST": _write(
        "alert_acknowledged",
        lambda c, o: {"reason": "检修", "until": (timezone.now() + timedelta(hours=2)).isoformat()},
        ok="head",
        denied="officer",
    ),
    "alert-unshelve POST": _write(
        "alert_shelved",
        lambda c, o: {"comment": ""},
        ok="head",
        denied=None,
        open="everyone who sees the alert may unshelve it",
    ),
    "alert-remove-from-service POST": _write(
        "alert_acknowledged", lambda c, o: {"reason": "更换探头"}, ok="head", denied="officer"
    ),
    "alert-return-to-service POST": _write(
        "alert_out_of_service", lambda c, o: {"comment": ""}, ok="head", denied="officer"
    ),
    "alert-comment POST": _write(
        "alert",
        lambda c, o: {"text": "已派人查看"},
        ok="head",
        denied=None,
        open="everyone who sees the alert may comment",
        audit="alerts.AlertComment",
    ),
    "alert-respond POST": _write(
        "alert_acknowledged",
        lambda c, o: {"kind": "valve_closed", "note": "已关阀"},
        ok="head",
        denied=None,
        open="everyone who sees the alert may record a response",
    ),
    "alert-review POST": _write(
        "alert_acknowledged", lambda c, o: {"false_alarm": False, "note": "属实"}, ok="head", denied="officer"
    ),
    "alert-rule-list GET": _read("alert_rule"),
    "alert-rule-detail GET": _read("alert_rule"),
    "alert-rule-list POST": _write(
        None,
        _rule_payload,
        ok="county_admin",
        denied="inspector",
        status=201,
        out_body=lambda c: _rule_payload(c, _alert_rule(c, "there")),
    ),
    "alert-rule-detail PUT": _write(
        "alert_rule", lambda c, o: {**_rule_payload(c, o), "high": 30}, ok="county_admin", denied="inspector"
    ),
    "alert-rule-detail PATCH": _write("alert_rule", lambda c, o: {"high": 30}, ok="county_admin", denied="inspector"),
    "alert-rule-detail DELETE": _write("alert_rule", None, ok="county_admin", denied="inspector", status=204),
    "dashboard-api GET": _read(None),
}


# --------------------------------------------------------------------------------------------------
# The HTML pages. Every named page of the apps is either a write (a row in VIEWS: anonymous is sent to
# the login page, the permitted persona gets 404 for an object of the other county) or a read
# (READ_VIEWS, with what it shows). ``mixed`` builds URL kwargs that pair an object in scope with a
# sub-object of the other county (the parent in the URL must not vouch for the child).


def _lic(obj):
    return {"pk": obj.enterprise_id, "licence_id": obj.pk}


def _inst(obj):
    return {"pk": obj.enterprise_id, "installation_id": obj.pk}


VIEWS = {
    "enterprises:create": {
        "ok": "inspector",
        "body": lambda ctx, side: {
            **_enterprise_payload(ctx, None),
            "scale": "small",
            "employees": 20,
            "operating_status": "operating",
            "region": ctx.world.regions["township" if side == "here" else "other_county"].pk,
        },
        "model": "enterprises.Enterprise",
    },
    "enterprises:edit": {"kind": "enterprise", "ok": "inspector"},
    "enterprises:licence-create": {"kind": "enterprise", "ok": "inspector"},
    "enterprises:licence-edit": {"kind": "licence", "ok": "inspector", "kwargs": _lic, "mixed": "licence_id"},
    "enterprises:licence-delete": {"kind": "licence", "ok": "inspector", "kwargs": _lic, "mixed": "licence_id"},
    "enterprises:installation-create": {"kind": "enterprise", "ok": "inspector"},
    "enterprises:installation-edit": {
        "kind": "installation",
        "ok": "inspector",
        "kwargs": _inst,
        "mixed": "installation_id",
    },
    "enterprises:installation-delete": {
        "kind": "installation",
        "ok": "inspector",
        "kwargs": _inst,
        "mixed": "installation_id",
    },
    "hazards:report": {
        "ok": "inspector",
        "body": lambda ctx, side: {
            "enterprise": _enterprise(ctx, side).pk,
            "source": "inspection",
            "description": "消防通道堵塞",
            "grade": "ordinary",
        },
        "model": "hazards.Hazard",
    },
    "hazards:act": {"kind": "hazard", "ok": "inspector", "kwargs": lambda o: {"pk": o.pk, "action": "confirm"}},
    "hazards:upload": {"kind": "hazard", "ok": "officer"},
    # defines a checklist template (POST); templates are platform-wide, so nothing is out of scope
    "hazards:checklists": {"ok": "inspector"},
    "hazards:checklist_start": {
        "kind": "enterprise_and_template",
        "ok": "officer",
        "kwargs": lambda o: {"template_id": o.template_id, "enterprise_id": o.pk},
    },
    "hazards:run_answer": {
        "kind": "run",
        "ok": "officer",
        "kwargs": lambda o: {"pk": o.pk, "item_id": o.template.items.first().pk},
    },
    "hazards:run_complete": {"kind": "run", "ok": "officer"},
    "enforcement:plan_create": {
        "ok": "head",
        "body": lambda ctx, side: {
            "name": "第二季度抽查",
            "jurisdiction": ctx.world.regions["county" if side == "here" else "other_county"].pk,
            "period_start": "2026-04-01",
            "period_end": "2026-06-30",
            "default_ratio": "0.05",
            "team_size": 2,
        },
        "model": "enforcement.InspectionPlan",
    },
    "enforcement:plan_draw": {"kind": "plan", "ok": "head"},
    "enforcement:plan_close": {"kind": "plan_drawn", "ok": "head"},
    "enforcement:draw_verify": {"kind": "draw", "ok": "head"},
    "enforcement:inspection_detail": {"kind": "inspection", "ok": "inspector"},  # POST completes it
    "enforcement:inspection_cancel": {"kind": "inspection", "ok": "head"},
    # POST declares the inspector's own conflict of interest (nothing of another county in the URL)
    "enforcement:inspectors": {
        "ok": "inspector",
        "body": lambda ctx, side: {
            "enterprise_id": _enterprise(ctx, side).pk,
            "reason": "亲属任职",
            "_profile": _inspector_profile(ctx, "here").pk,  # the inspector declares for their own profile
        },
        "model": "enforcement.ConflictOfInterest",
    },
    "enforcement:credit_enterprise": {  # POST records a credit event
        "kind": "enterprise",
        "ok": "inspector",
        "kwargs": lambda o: {"enterprise_id": o.pk},
    },
    "enforcement:inspection_photo": {"kind": "inspection", "ok": "inspector"},
    "enforcement:document_create": {"kind": "inspection_completed", "ok": "inspector"},
    "enforcement:listing_create": {
        "ok": "head",
        "body": lambda ctx, side: {"enterprise_id": _enterprise(ctx, side).pk, "reason": "重大事故"},
        "model": "enforcement.DishonestyListing",
        "out_status": 404,
    },
    "enforcement:repair_apply": {"kind": "listing", "ok": "officer", "kwargs": lambda o: {"listing_id": o.pk}},
    "enforcement:repair_decide": {
        "kind": "repair",
        "ok": "head",
        "kwargs": lambda o: {"application_id": o.application.pk},
    },
    "devices:maintenance": {"kind": "device", "ok": "inspector"},
    "devices:coil_write": {"kind": "channel", "ok": "inspector"},
    "alerts:set_mode": {"kind": "enterprise", "ok": "officer", "kwargs": lambda o: {"enterprise_id": o.pk}},
    "alerts:to_hazard": {"kind": "alert", "ok": "head"},
    "alerts:act": {"kind": "alert", "ok": "head", "kwargs": lambda o: {"pk": o.pk, "action": "acknowledge"}},
}

READ_VIEWS = {
    "enterprises:list": "the scoped registry list",
    "enterprises:export": "the scoped registry as CSV/XLSX (covered by tests/enterprises/test_export.py)",
    "enterprises:detail": "one enterprise's page (scoped, 404 outside)",
    "hazards:list": "the scoped hazard list",
    "hazards:detail": "one hazard (scoped)",
    "hazards:photo": "a stored photo (scoped through its hazard)",
    "hazards:photo_thumb": "a stored photo's thumbnail",
    "hazards:run": "one checklist run (scoped)",
    "enforcement:plans": "the plans of the user's jurisdiction",
    "enforcement:plan_detail": "one plan",
    "enforcement:inspections": "the inspections the user may see",
    "enforcement:photo_file": "an inspection photo",
    "enforcement:document_pdf": "an issued document's PDF",
    "enforcement:credit": "the credit overview",
    "enforcement:public": "the public index of draws (anonymous by design)",
    "enforcement:public_draw": "a public draw result (anonymous by design)",
    "enforcement:public_draw_result": "a public draw result as JSON (anonymous by design)",
    "devices:list": "the scoped device list",
    "devices:detail": "one device",
    "devices:channel": "one channel",
    "alerts:board": "the live alert board",
    "alerts:list": "every alert in scope",
    "alerts:analytics": "alert analytics for the scope",
    "alerts:detail": "one alert",
}
