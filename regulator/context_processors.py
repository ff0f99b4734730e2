"""Navigation entries for the base template, shown according to the user's role."""

from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

# (url name, label, predicate on the user); apps add their pages here as they grow.
NAV_ITEMS = [
    ("dashboard:index", _("监管驾驶舱"), lambda u: u.is_superuser or u.is_regulator or u.is_park_manager),
    ("enterprises:list", _("企业档案"), lambda u: not u.is_mlps_admin),
    ("hazards:list", _("隐患治理"), lambda u: not u.is_mlps_admin),
    ("enforcement:plans", _("执法检查"), lambda u: u.is_regulator),
    ("devices:list", _("监测设备"), lambda u: not u.is_mlps_admin),
    ("alerts:board", _("报警看板"), lambda u: not u.is_mlps_admin),
    ("riskmap:index", _("风险地图"), lambda u: u.is_superuser or u.is_regulator or u.is_park_manager),
    ("reports:monthly", _("月度报告"), lambda u: u.is_regulator or u.is_park_manager),
    ("security:audit", _("审计日志"), lambda u: u.role == "auditor"),
    ("security:locks", _("登录锁定"), lambda u: u.role == "security_admin"),
    ("security:classification", _("数据分类分级"), lambda u: u.role in ("system_admin", "security_admin")),
]


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    items = []
    for name, label, allowed in NAV_ITEMS:
        if not allowed(user):
            continue
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue  # that app has no page yet
        items.append({"url": url, "label": label, "active": request.path.startswith(url)})
    from regulator.notifications import unread_count

    return {"nav_items": items, "unread_notifications": unread_count(user)}
