"""The case workflow as an explicit table: (status, action) -> new status, and who may act.

The seven steps of 数字城管: reported -> registered (or voided) -> dispatched -> in_progress ->
handled -> checked -> closed, with the branches: a department returns a case that is not its own
to the dispatcher (回退, status ``returned``, re-dispatched from there), asks for more time
(延时, approved or refused by a supervisor), a supervisor suspends a case (挂账) and resumes it,
a failed check sends it back to the same department (返工, ``rework``), and a dissatisfied
reporter reopens a closed case (also back to the same department).

Roles: ``operator`` and ``supervisor`` are the dispatch centre (a supervisor may also do what
only supervisors may: suspend, resume, decide extensions, reopen); ``department`` users act only
on their own department's cases; ``reporter`` is a person who reported the case; ``api`` an
Open311 client, which may only report. Anything else is refused before anything changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from helpline.cases.models import (
    CHECKED,
    CLOSED,
    DISPATCHED,
    HANDLED,
    IN_PROGRESS,
    REGISTERED,
    REPORTED,
    RETURNED,
    SUSPENDED,
    VOIDED,
    Case,
)
from helpline.models import User

STAY = "="  # the action keeps the status
RESUME = "<"  # back to the status the case had when it was suspended

CENTRE = frozenset({"operator", "supervisor"})
SUPERVISOR = frozenset({"supervisor"})
DEPARTMENT = frozenset({"department"})
REPORTER = frozenset({"reporter"})
RUNNING = (DISPATCHED, IN_PROGRESS)

# (status, action) -> status after it. Everything not listed is an illegal transition.
TRANSITIONS: dict[tuple[str, str], str] = {
    (REPORTED, "register"): REGISTERED,
    (REPORTED, "void"): VOIDED,
    (REGISTERED, "void"): VOIDED,
    (REGISTERED, "dispatch"): DISPATCHED,
    (RETURNED, "dispatch"): DISPATCHED,
    (DISPATCHED, "accept"): IN_PROGRESS,
    (DISPATCHED, "return"): RETURNED,
    (IN_PROGRESS, "return"): RETURNED,
    **{(s, "request_extension"): STAY for s in RUNNING},
    **{(s, "approve_extension"): STAY for s in RUNNING},
    **{(s, "reject_extension"): STAY for s in RUNNING},
    (IN_PROGRESS, "handle"): HANDLED,
    (HANDLED, "check"): CHECKED,
    (HANDLED, "rework"): DISPATCHED,
    (CHECKED, "close"): CLOSED,
    **{(s, "suspend"): SUSPENDED for s in (REGISTERED, DISPATCHED, IN_PROGRESS, RETURNED)},
    (SUSPENDED, "resume"): RESUME,
    (CLOSED, "rate"): STAY,
    (CLOSED, "reopen"): DISPATCHED,
}

# Who may take each action.
ROLES: dict[str, frozenset[str]] = {
    "register": CENTRE,
    "void": CENTRE,
    "dispatch": CENTRE,
    "accept": DEPARTMENT,
    "return": DEPARTMENT,
    "request_extension": DEPARTMENT,
    "approve_extension": SUPERVISOR,
    "reject_extension": SUPERVISOR,
    "handle": DEPARTMENT,
    "check": CENTRE,
    "rework": CENTRE,
    "close": CENTRE,
    "suspend": SUPERVISOR,
    "resume": SUPERVISOR,
    "rate": REPORTER,
    "reopen": REPORTER | SUPERVISOR,
}
ACTIONS = tuple(ROLES)


class CaseError(Exception):
    """A refused case operation; ``status`` is the HTTP status the API answers with."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(CaseError):
    status = 400


class NotAllowed(CaseError):
    status = 403


class NotFound(CaseError):
    status = 404


class Conflict(CaseError):
    """An illegal transition or a state that does not allow the action (e.g. closing a case never dispatched)."""

    status = 409


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: ``ref`` goes into the timeline (user:3, contact:5, open311:<key name>, system)."""

    ref: str
    role: str
    department: str | None = None
    contact_id: int | None = None

    @classmethod
    def of_user(cls, user: User) -> Actor:
        if not user.active:
            raise NotAllowed(f"user {user.username!r} is disabled")
        return cls(f"user:{user.id}", user.role, user.department_code if user.role == "department" else None)

    @classmethod
    def reporter(cls, contact_id: int) -> Actor:
        return cls(f"contact:{contact_id}", "reporter", contact_id=contact_id)

    @classmethod
    def api(cls, client: str) -> Actor:
        return cls(f"open311:{client}"[:100], "api")


SYSTEM = Actor("system", "system")


def next_status(case: Case, action: str) -> str:
    """The status ``action`` leads to from the case's status; Conflict if the table has no such move."""
    if action not in ROLES:
        raise InvalidInput(f"unknown action {action!r}; actions are {', '.join(ACTIONS)}")
    target = TRANSITIONS.get((case.status, action))
    if target is None:
        allowed = sorted(s for s, a in TRANSITIONS if a == action)
        raise Conflict(
            f"cannot {action.replace('_', ' ')} case {case.number}: it is {case.status!r}, and {action} "
            f"needs {' or '.join(repr(s) for s in allowed)}"
        )
    if target == STAY:
        return case.status
    if target == RESUME:
        return case.suspended_from or REGISTERED
    return target


def check_role(case: Case, action: str, actor: Actor, reporters: set[int]) -> None:
    """Refuse an actor whose role may not take the action, or who acts on someone else's case."""
    roles = ROLES[action]
    if actor.role not in roles:
        article = "an" if actor.role[:1] in "aeiou" else "a"
        raise NotAllowed(
            f"{article} {actor.role} may not {action.replace('_', ' ')} a case (needs {' or '.join(sorted(roles))})"
        )
    if actor.role == "department":
        if not actor.department:
            raise NotAllowed("this department account has no department")
        if actor.department != case.department_code:
            raise NotAllowed(
                f"department {actor.department} cannot act on case {case.number}: it is with "
                f"{case.department_code or 'no department'}"
            )
    if actor.role == "reporter" and actor.contact_id not in reporters:
        raise NotAllowed(f"only a person who reported case {case.number} may {action} it")
