"""Domain errors raised by services; the API turns them into 400/403/409 with a reason."""

from __future__ import annotations


class DomainError(Exception):
    """A request that is well-formed but not allowed now (answered 409)."""

    status_code = 409
    code = "conflict"

    def __init__(self, message: str, *, code: str | None = None, **details):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details


class TransitionNotAllowed(DomainError):
    """A workflow step that the current state does not allow."""

    code = "transition_not_allowed"

    def __init__(self, message: str, *, current: str, allowed: list[str], **details):
        super().__init__(message, current_status=current, allowed_actions=allowed, **details)


class Forbidden(DomainError):
    """A step this user may not take on an object they can see (answered 403, as DRF's own refusals)."""

    status_code = 403
    code = "forbidden"


class InvalidInput(DomainError):
    """Input that no state would accept (answered 400)."""

    status_code = 400
    code = "invalid"
