"""The one door for notifying people: stored in-app (the bell), e-mailed after commit, pushed live.

``notify`` is idempotent per (user, dedupe_key): calling it twice for the same escalation step
stores, mails and pushes once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction

from regulator.models import Notification, User
from regulator.realtime import push_on_commit

logger = logging.getLogger(__name__)


def group_for_user(user_id: int) -> str:
    return f"user.{user_id}"


def notify(
    *,
    users: Iterable[User],
    title: str,
    body: str = "",
    url: str = "",
    level: str = "info",
    dedupe_key: str = "",
    email: bool = True,
) -> list[Notification]:
    created: list[Notification] = []
    for user in {u.pk: u for u in users if u is not None and u.is_active}.values():
        if dedupe_key and Notification.objects.filter(user=user, dedupe_key=dedupe_key).exists():
            continue
        try:
            with transaction.atomic():
                note = Notification.objects.create(
                    user=user, title=title[:200], body=body, url=url, level=level, dedupe_key=dedupe_key
                )
        except IntegrityError:  # a concurrent run created it first
            continue
        created.append(note)
        _deliver(note, email=email)
    return created


def _deliver(note: Notification, *, email: bool = True) -> None:
    """Push the stored notification to the user's screens and mail it, both after commit."""
    push_on_commit(
        [group_for_user(note.user_id)],
        "notification.created",
        {"id": note.pk, "title": note.title, "url": note.url, "level": note.level},
    )
    if email and note.user.email:
        transaction.on_commit(lambda u=note.user, n=note: _mail(u, n))


def notify_many(messages: list[dict], *, level: str = "info") -> int:
    """Many different notifications at once, with ``notify`` semantics, in a few queries.

    Each message is a dict with user, title, body, url and dedupe_key. A cold escalation run
    notifies thousands of people; one ``notify`` call each would cost thousands of round trips.
    Falls back to ``notify`` one by one when a concurrent writer races us.
    """
    messages = [m for m in messages if m["user"] is not None and m["user"].is_active]
    if not messages:
        return 0
    existing = set(
        Notification.objects.filter(
            user_id__in={m["user"].pk for m in messages}, dedupe_key__in={m["dedupe_key"] for m in messages}
        ).values_list("user_id", "dedupe_key")
    )
    fresh = [m for m in messages if (m["user"].pk, m["dedupe_key"]) not in existing]
    notes = [
        Notification(
            user=m["user"],
            title=str(m["title"])[:200],
            body=m["body"],
            url=m["url"],
            level=level,
            dedupe_key=m["dedupe_key"],
        )
        for m in fresh
    ]
    try:
        with transaction.atomic():
            Notification.objects.bulk_create(notes, batch_size=1000)
    except IntegrityError:
        return sum(
            len(
                notify(
                    users=[m["user"]],
                    title=m["title"],
                    body=m["body"],
                    url=m["url"],
                    level=level,
                    dedupe_key=m["dedupe_key"],
                )
            )
            for m in fresh
        )
    for note in notes:
        _deliver(note)
    return len(notes)


def _mail(user: User, note: Notification) -> None:
    try:
        send_mail(note.title, f"{note.body}\n\n{note.url}".strip(), settings.DEFAULT_FROM_EMAIL, [user.email])
    except Exception:  # mail trouble must not break the workflow; the in-app copy exists
        logger.exception("could not e-mail notification %s to %s", note.pk, user.username)


def unread_count(user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()
