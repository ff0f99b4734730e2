"""Separation of duties (三权分立): who may grant which role, flag, permission or group to whom.

Every privilege change goes through ``check_user_change`` / ``check_group_change``: the services
below, the Django admin forms, and the model-level guards (``pre_save`` on users, ``m2m_changed``
on the three permission tables, so an ORM write cannot skip them). Every grant and revoke is
audited here, with the acting user, one row per change.

The rules:
- no one grants anything to themselves (dropping one's own privileges is allowed);
- ``is_superuser``, ``is_staff``, the three MLPS roles and the MLPS duty permissions are granted
  only by a superuser (break-glass, audited) or from the server console (no request, no actor:
  ``manage.py``), the designated path for creating MLPS administrators;
- the privileges of a superuser or an MLPS administrator are changed only by a superuser;
- the system administrator (or any holder of user management) manages ordinary users: business
  roles, business permissions, groups that carry only business permissions;
- the security administrator and the auditor grant nothing;
- no account holds two MLPS duties (role or duty permissions, directly or through a group), nor
  an MLPS role together with ``is_superuser`` (also a database constraint).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import contextmanager
from contextvars import ContextVar

from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models.signals import m2m_changed, post_save, pre_save
from django.utils.translation import gettext as _

from regulator.choices import MLPS_ROLES, Role

# --- Which duty a permission belongs to ---------------------------------------------------------

_CRUD = ("add", "change", "delete", "view")

DUTY_PERMISSIONS: dict[str, frozenset[str]] = {
    # User management: accounts and groups.
    Role.SYSTEM_ADMIN: frozenset(
        [f"regulator.{a}_user" for a in ("add", "change", "delete")]
        + [f"auth.{a}_group" for a in ("add", "change", "delete")]
    ),
    # Security policy and authorisation: locks, second factors, classification, permission rows.
    Role.SECURITY_ADMIN: frozenset(
        ["regulator.unlock_account"]
        + [f"regulator.{a}_{m}" for a in _CRUD for m in ("loginlock", "totpdevice", "passwordhistory")]
        + [f"regulator.{a}_classificationoverride" for a in ("add", "change", "delete")]
        + [f"auth.{a}_permission" for a in ("add", "change", "delete")]
        + [
            f"guardian.{a}_{m}"
            for a in ("add", "change", "delete")
            for m in ("userobjectpermission", "groupobjectpermission")
        ]
    ),
    # Audit: the audit log and the admin's own change log.
    Role.AUDITOR: frozenset([f"regulator.{a}_auditentry" for a in _CRUD] + [f"admin.{a}_logentry" for a in _CRUD]),
}
_DUTY_OF = {perm: duty for duty, perms in DUTY_PERMISSIONS.items() for perm in perms}

USER_MANAGEMENT = "regulator.change_user"
GROUP_MANAGEMENT = "auth.change_group"


def perm_label(perm: Permission) -> str:
    return f"{perm.content_type.app_label}.{perm.codename}"


def duty_of(perm: Permission) -> str | None:
    """The MLPS duty a permission belongs to, or None for a business permission."""
    return _DUTY_OF.get(perm_label(perm))


class GrantRefused(PermissionDenied):
    """A privilege change the separation of duties forbids; ``messages`` says why (Chinese UI text)."""

    def __init__(self, messages: list[str]):
        self.messages = messages
        super().__init__("; ".join(messages))


# --- Who is acting --------------------------------------------------------------------------------

_CONSOLE = object()
_actor: ContextVar = ContextVar("grants_actor", default=None)


@contextmanager
def acting_as(user):
    """Make ``user`` the actor of every privilege change inside (services and admin set it)."""
    token = _actor.set(user)
    try:
        yield
    finally:
        _actor.reset(token)


def current_actor():
    """The acting user; None means the server console (no request): the designated path."""
    actor = _actor.get()
    if actor is not None:
        return actor
    from regulator.requestlocal import current_request

    request = current_request()
    user = getattr(request, "user", None) if request is not None else None
    if user is not None and user.is_authenticated:
        return user
    if request is not None:
        # An anonymous request never changes privileges: treat it as an actor with no rights.
        return _Nobody()
    return None


class _Nobody:
    pk = None
    is_superuser = False
    role = ""
    is_active = False

    def has_perm(self, perm):
        return False


# --- The checks -----------------------------------------------------------------------------------


def _perms_of_groups(group_ids) -> set[int]:
    return set(Permission.objects.filter(group__in=group_ids).values_list("pk", flat=True))


def _duties(role: str, perm_ids: Iterable[int]) -> set[str]:
    duties = {role} if role in MLPS_ROLES else set()
    for perm in Permission.objects.filter(pk__in=set(perm_ids)).select_related("content_type"):
        duty = duty_of(perm)
        if duty:
            duties.add(duty)
    return duties


def _duty_names(duties) -> str:
    return "、".join(str(Role(d).label) for d in sorted(duties))


def _invariants(*, role: str, is_superuser: bool, perm_ids: Iterable[int], who: str) -> list[str]:
    errors = []
    duties = _duties(role, perm_ids)
    if len(duties) > 1:
        errors.append(
            _("三权分立：%(who)s 不能同时承担 %(duties)s 的职责") % {"who": who, "duties": _duty_names(duties)}
        )
    if is_superuser and role in MLPS_ROLES:
        errors.append(_("三权分立：系统管理员、安全管理员、安全审计员不得同时为超级用户"))
    return errors


def _is_privileged(user) -> bool:
    return bool(user.is_superuser or user.role in MLPS_ROLES)


def _actor_may_grant_perm(actor, perm: Permission) -> str | None:
    """None if ``actor`` may hand out ``perm`` at all, else the reason it may not."""
    if actor is None or actor.is_superuser:
        return None
    if duty_of(perm):
        return _("只有超级用户可以授予三权分立职责权限“%(p)s”") % {"p": perm.name}
    return None


def _actor_role_refusal(actor) -> str | None:
    if actor is None or actor.is_superuser:
        return None
    if not actor.is_active:
        return _("停用的账户不能授权")
    if actor.role in (Role.SECURITY_ADMIN, Role.AUDITOR):
        return _("三权分立：%(r)s 不能管理用户授权") % {"r": Role(actor.role).label}
    return None


def check_user_change(
    *,
    actor,
    target,
    role: str | None = None,
    is_superuser: bool | None = None,
    is_staff: bool | None = None,
    add_perms: Iterable[Permission] = (),
    remove_perms: Iterable[Permission] = (),
    add_groups: Iterable[Group] = (),
    remove_groups: Iterable[Group] = (),
    check_invariants: bool = True,
) -> None:
    """Raise ``GrantRefused`` unless ``actor`` may make this change to ``target`` (a User, saved or
    not). ``None`` for role/flags means unchanged; the permission and group arguments are deltas."""
    add_perms, remove_perms = list(add_perms), list(remove_perms)
    add_groups, remove_groups = list(add_groups), list(remove_groups)
    saved = target.pk is not None
    before = (
        type(target).objects.filter(pk=target.pk).values("role", "is_superuser", "is_staff").first() if saved else None
    ) or {"role": None, "is_superuser": False, "is_staff": False}
    new_role = target.role if role is None else role
    new_super = target.is_superuser if is_superuser is None else is_superuser
    new_staff = target.is_staff if is_staff is None else is_staff
    direct = set(target.user_permissions.values_list("pk", flat=True)) if saved else set()
    groups = set(target.groups.values_list("pk", flat=True)) if saved else set()
    direct_after = (direct | {p.pk for p in add_perms}) - {p.pk for p in remove_perms}
    groups_after = (groups | {g.pk for g in add_groups}) - {g.pk for g in remove_groups}
    new_perms = {p.pk for p in add_perms if p.pk not in direct}
    added_groups = [g for g in add_groups if g.pk not in groups]
    dropped = bool(
        (direct - direct_after)
        or (groups - groups_after)
        or (before["is_superuser"] and not new_super)
        or (before["is_staff"] and not new_staff)
    )

    grants = []  # (description, reason-if-actor-lacks-the-right)
    role_changed = (saved and new_role != before["role"]) or (not saved and new_role in MLPS_ROLES)
    if role_changed:
        mlps = new_role in MLPS_ROLES or before["role"] in MLPS_ROLES
        grants.append(("role", _("只有超级用户可以设置三权分立角色") if mlps else None))
    if new_super and not before["is_superuser"]:
        grants.append(("is_superuser", _("只有超级用户可以授予超级用户状态")))
    if new_staff and not before["is_staff"]:
        grants.append(("is_staff", _("只有超级用户可以授予管理后台访问（职员状态）")))
    for perm in Permission.objects.filter(pk__in=new_perms).select_related("content_type"):
        grants.append((perm_label(perm), _actor_may_grant_perm(actor, perm)))
    for group in added_groups:
        for perm in group.permissions.select_related("content_type"):
            reason = _actor_may_grant_perm(actor, perm)
            if reason:
                grants.append((f"group:{group.name}", _("用户组“%(g)s”含有：%(r)s") % {"g": group.name, "r": reason}))
                break
        else:
            grants.append((f"group:{group.name}", None))

    errors: list[str] = []
    changes_something = bool(grants) or dropped
    if actor is not None and changes_something and not actor.is_superuser:
        refusal = _actor_role_refusal(actor)
        if refusal:
            errors.append(refusal)
        elif not actor.has_perm(USER_MANAGEMENT if saved else "regulator.add_user"):
            errors.append(_("没有用户管理权限"))
        elif saved and _is_privileged_before(target, before):
            errors.append(_("只有超级用户可以更改超级用户或三权分立管理员的权限"))
    if actor is not None and grants and actor.pk is not None and actor.pk == target.pk:
        errors.append(_("不得给自己授权"))
    if actor is not None and not actor.is_superuser:
        errors.extend(reason for _item, reason in grants if reason)
    if check_invariants:
        errors.extend(
            _invariants(
                role=new_role,
                is_superuser=new_super,
                perm_ids=direct_after | _perms_of_groups(groups_after),
                who=target.get_username() or _("该账户"),
            )
        )
    if errors:
        raise GrantRefused(list(dict.fromkeys(errors)))


def _is_privileged_before(target, before) -> bool:
    return bool(before["is_superuser"] or before["role"] in MLPS_ROLES)


def check_group_change(
    *, actor, group, add_perms: Iterable[Permission] = (), remove_perms: Iterable[Permission] = ()
) -> None:
    """Raise ``GrantRefused`` unless ``actor`` may change ``group``'s permissions like this; every
    member must still hold at most one duty."""
    from regulator.models import User

    add_perms, remove_perms = list(add_perms), list(remove_perms)
    saved = group.pk is not None
    current = set(group.permissions.values_list("pk", flat=True)) if saved else set()
    new_perms = [p for p in add_perms if p.pk not in current]
    after = (current | {p.pk for p in add_perms}) - {p.pk for p in remove_perms}
    changed = bool(new_perms) or bool(current - after)
    members = list(User.objects.filter(groups=group)) if saved else []
    errors: list[str] = []
    if actor is not None and changed and not actor.is_superuser:
        refusal = _actor_role_refusal(actor)
        if refusal:
            errors.append(refusal)
        elif not actor.has_perm(GROUP_MANAGEMENT if saved else "auth.add_group"):
            errors.append(_("没有用户组管理权限"))
        elif any(_is_privileged(m) for m in members):
            errors.append(_("只有超级用户可以更改含超级用户或三权分立管理员的用户组的权限"))
        for perm in Permission.objects.filter(pk__in=[p.pk for p in new_perms]).select_related("content_type"):
            reason = _actor_may_grant_perm(actor, perm)
            if reason:
                errors.append(reason)
    if actor is not None and new_perms and actor.pk is not None and any(m.pk == actor.pk for m in members):
        errors.append(_("不得给自己授权：您是该用户组的成员"))
    for member in members:
        others = set(member.user_permissions.values_list("pk", flat=True)) | _perms_of_groups(
            member.groups.exclude(pk=group.pk).values_list("pk", flat=True)
        )
        errors.extend(
            _invariants(
                role=member.role, is_superuser=member.is_superuser, perm_ids=others | after, who=member.get_username()
            )
        )
    if errors:
        raise GrantRefused(list(dict.fromkeys(errors)))


# --- The services (one door per write) ------------------------------------------------------------


def _resolve_perms(perms) -> list[Permission]:
    out = []
    for p in perms:
        if isinstance(p, Permission):
            out.append(p)
        else:
            app_label, codename = p.split(".", 1)
            out.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return out


@contextmanager
def _door(by, obj, what: str):
    """Run one privilege change as ``by``; a refusal is audited (after the rollback) and re-raised."""
    try:
        with acting_as(by), transaction.atomic():
            yield
    except GrantRefused as refused:
        audit_refusal(actor=by, obj=obj, what=what, refused=refused)
        raise


def audit_refusal(*, actor, obj, what: str, refused: GrantRefused) -> None:
    """An attempt at a forbidden grant is a security event: one failure row with the reasons."""
    with acting_as(actor):
        _record(
            "permission.grant_refused", obj=obj, detail={"change": what, "reasons": refused.messages}, outcome="failure"
        )


def _labels_of(items) -> list[str]:
    return [i if isinstance(i, str) else str(i) for i in items]


def user_grant_permissions(*, user, perms, by) -> None:
    """Grant permissions (objects or "app.codename") to ``user``; checked and audited."""
    with _door(by, user, f"grant {_labels_of(perms)}"):
        user.user_permissions.add(*_resolve_perms(perms))


def user_revoke_permissions(*, user, perms, by) -> None:
    with _door(by, user, f"revoke {_labels_of(perms)}"):
        user.user_permissions.remove(*_resolve_perms(perms))


def user_add_groups(*, user, groups, by) -> None:
    with _door(by, user, f"add to groups {_labels_of(groups)}"):
        user.groups.add(*groups)


def user_remove_groups(*, user, groups, by) -> None:
    with _door(by, user, f"remove from groups {_labels_of(groups)}"):
        user.groups.remove(*groups)


def user_set_privileges(*, user, by, role: str | None = None, is_superuser=None, is_staff=None):
    """Change the role and the superuser/staff flags of ``user``; checked and audited."""
    fields, wanted = [], {}
    for name, value in (("role", role), ("is_superuser", is_superuser), ("is_staff", is_staff)):
        if value is not None:
            wanted[name] = value
            fields.append(name)
    old = {name: getattr(user, name) for name in fields}
    try:
        with _door(by, user, f"set {wanted}"):
            for name, value in wanted.items():
                setattr(user, name, value)
            user.save(update_fields=fields or None)
    except GrantRefused:
        for name, value in old.items():
            setattr(user, name, value)
        raise
    return user


def group_grant_permissions(*, group, perms, by) -> None:
    with _door(by, group, f"grant {_labels_of(perms)}"):
        group.permissions.add(*_resolve_perms(perms))


def group_revoke_permissions(*, group, perms, by) -> None:
    with _door(by, group, f"revoke {_labels_of(perms)}"):
        group.permissions.remove(*_resolve_perms(perms))


# --- Model-level guards and the audit -------------------------------------------------------------

WATCHED_USER_FIELDS = ("role", "is_superuser", "is_staff", "is_active", "jurisdiction_id", "park_id")


def _record(event, *, obj, detail, outcome="success"):
    from regulator.audit import record_event

    actor = current_actor()
    user = actor if actor is not None and getattr(actor, "pk", None) else None
    detail = {**detail, "actor": user.get_username() if user else "console" if actor is None else "anonymous"}
    record_event(event=event, user=user, obj=obj, detail=detail, outcome=outcome)


def _guard_user_save(sender, instance, raw=False, update_fields=None, **kwargs):
    if raw:
        instance._grants_before = None
        return
    before = (
        sender.objects.filter(pk=instance.pk).values(*WATCHED_USER_FIELDS).first()
        if instance.pk and not instance._state.adding
        else None
    )
    instance._grants_before = before
    if before is None and instance.role not in MLPS_ROLES and not instance.is_superuser and not instance.is_staff:
        return  # a new ordinary account grants nothing
    if before is not None and all(before[f] == getattr(instance, f) for f in ("role", "is_superuser", "is_staff")):
        return  # most saves (last login, profile) touch no privilege
    # The admin saves the user before its permissions and checks the final state itself.
    deferred = getattr(instance, "_grants_deferred", False)
    check_user_change(actor=current_actor(), target=instance, check_invariants=not deferred)


def _audit_user_save(sender, instance, created, raw=False, **kwargs):
    if raw:
        return
    if created:
        _record("user.created", obj=instance, detail={f: getattr(instance, f) for f in WATCHED_USER_FIELDS})
        return
    before = getattr(instance, "_grants_before", None)
    instance._grants_before = None
    if not before:
        return
    changes = {
        f: {"from": before[f], "to": getattr(instance, f)}
        for f in WATCHED_USER_FIELDS
        if before[f] != getattr(instance, f)
    }
    if changes:
        _record("user.roles_changed", obj=instance, detail={"changes": changes})


def _labels(model, pk_set) -> list[str]:
    return [str(obj) for obj in model.objects.filter(pk__in=pk_set or ())]


def _user_perms_changed(sender, instance, action, reverse, model, pk_set, **kwargs):
    from regulator.models import User

    if action in ("pre_add", "pre_remove", "pre_clear"):
        key = "add_perms" if action == "pre_add" else "remove_perms"
        if reverse:  # permission.user_set.add(users...)
            users = list(User.objects.filter(pk__in=pk_set) if action != "pre_clear" else instance.user_set.all())
            for user in users:
                check_user_change(actor=current_actor(), target=user, **{key: [instance]})
            instance._grants_cleared = [u.pk for u in users] if action == "pre_clear" else None
        else:
            perms = list(
                Permission.objects.filter(pk__in=pk_set) if action != "pre_clear" else instance.user_permissions.all()
            )
            check_user_change(actor=current_actor(), target=instance, **{key: perms})
            instance._grants_cleared = [p.pk for p in perms] if action == "pre_clear" else None
        return
    _audit_m2m("permission.user_permissions_changed", instance, action, reverse, model, pk_set, User)


def _user_groups_changed(sender, instance, action, reverse, model, pk_set, **kwargs):
    from regulator.models import User

    if action in ("pre_add", "pre_remove", "pre_clear"):
        key = "add_groups" if action == "pre_add" else "remove_groups"
        if reverse:  # group.user_set.add(users...)
            users = list(User.objects.filter(pk__in=pk_set) if action != "pre_clear" else instance.user_set.all())
            for user in users:
                check_user_change(actor=current_actor(), target=user, **{key: [instance]})
            instance._grants_cleared = [u.pk for u in users] if action == "pre_clear" else None
        else:
            groups = list(Group.objects.filter(pk__in=pk_set) if action != "pre_clear" else instance.groups.all())
            check_user_change(actor=current_actor(), target=instance, **{key: groups})
            instance._grants_cleared = [g.pk for g in groups] if action == "pre_clear" else None
        return
    _audit_m2m("permission.user_groups_changed", instance, action, reverse, model, pk_set, User)


def _group_perms_changed(sender, instance, action, reverse, model, pk_set, **kwargs):
    if action in ("pre_add", "pre_remove", "pre_clear"):
        key = "add_perms" if action == "pre_add" else "remove_perms"
        if reverse:  # permission.group_set.add(groups...)
            groups = list(Group.objects.filter(pk__in=pk_set) if action != "pre_clear" else instance.group_set.all())
            for group in groups:
                check_group_change(actor=current_actor(), group=group, **{key: [instance]})
            instance._grants_cleared = [g.pk for g in groups] if action == "pre_clear" else None
        else:
            perms = list(
                Permission.objects.filter(pk__in=pk_set) if action != "pre_clear" else instance.permissions.all()
            )
            check_group_change(actor=current_actor(), group=instance, **{key: perms})
            instance._grants_cleared = [p.pk for p in perms] if action == "pre_clear" else None
        return
    _audit_m2m("permission.group_permissions_changed", instance, action, reverse, model, pk_set, Group)


def _audit_m2m(event, instance, action, reverse, model, pk_set, owner_model):
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if action == "post_clear":
        pk_set = getattr(instance, "_grants_cleared", None) or set()
        instance._grants_cleared = None
    if not pk_set:
        return  # nothing changed: adding what is already there, removing what is not
    verb = action.removeprefix("post_")
    if not reverse:
        _record(event, obj=instance, detail={"action": verb, "items": _labels(model, pk_set)})
        return
    # Reverse side (``perm.user_set.add(u)``): one row per account or group that changed.
    for owner in owner_model.objects.filter(pk__in=pk_set):
        _record(event, obj=owner, detail={"action": verb, "items": [str(instance)]})


def _guard_user_delete(sender, instance, **kwargs):
    # Deleting a superuser or an MLPS admin takes a duty away: a superuser's decision (the admin's
    # bulk delete checks only the model permission, not the object).
    actor = current_actor()
    if actor is not None and not actor.is_superuser and _is_privileged(instance):
        raise GrantRefused([_("只有超级用户可以删除超级用户或三权分立管理员")])


def model_errors(user) -> list[str]:
    """The one-duty rule on a user's role against the permissions it holds now (User.clean)."""
    perm_ids: set[int] = set()
    if user.pk is not None:
        perm_ids = set(user.user_permissions.values_list("pk", flat=True)) | _perms_of_groups(
            user.groups.values_list("pk", flat=True)
        )
    return _invariants(
        role=user.role, is_superuser=user.is_superuser, perm_ids=perm_ids, who=user.get_username() or _("该账户")
    )


def connect(user_model) -> None:
    """Connect the guards and the audit once the models exist (called from regulator/models.py)."""
    from django.db.models.signals import pre_delete

    pre_delete.connect(_guard_user_delete, sender=user_model, dispatch_uid="grants_user_delete", weak=False)
    pre_save.connect(_guard_user_save, sender=user_model, dispatch_uid="grants_user_guard", weak=False)
    post_save.connect(_audit_user_save, sender=user_model, dispatch_uid="grants_user_audit", weak=False)
    m2m_changed.connect(
        _user_perms_changed, sender=user_model.user_permissions.through, dispatch_uid="grants_user_perms", weak=False
    )
    m2m_changed.connect(
        _user_groups_changed, sender=user_model.groups.through, dispatch_uid="grants_user_groups", weak=False
    )
    m2m_changed.connect(
        _group_perms_changed, sender=Group.permissions.through, dispatch_uid="grants_group_perms", weak=False
    )
