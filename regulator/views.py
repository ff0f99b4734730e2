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
    targets += ["enterprises:list"]
    for name in targets:
        try:
            return redirect(reverse(name))
        except NoReverseMatch:
            continue
    return render(request, "home.html")
