from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse


@login_required
def home(request):
    """Send each role to the page it works from."""
    user = request.user
    targets = ["security:audit"] if user.role == "auditor" else []
    if user.role in ("system_admin", "security_admin"):
        targets.append("admin:index")
    if (user.is_regulator and user.jurisdiction_id) or (user.is_park_manager and user.park_id):
        targets.append("dashboard:index")  # the regulator's home: the jurisdiction at a glance
    targets += ["enterprises:list"]
    for name in targets:
        try:
            return redirect(reverse(name))
        except NoReverseMatch:
            continue
    return render(request, "home.html")


@login_required
def notifications(request):
    from django.core.paginator import Paginator
    from django.utils import timezone

    from regulator.models import Notification

    qs = Notification.objects.filter(user=request.user)
    if request.method == "POST":
        ids = request.POST.getlist("id")
        target = qs.filter(read_at__isnull=True)
        if ids:
            target = target.filter(pk__in=[i for i in ids if i.isdigit()])
        target.update(read_at=timezone.now())
        return redirect("notifications")
    page = Paginator(qs, 30).get_page(request.GET.get("page"))
    return render(request, "notifications.html", {"page": page})
