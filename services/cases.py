"""The move use case: load the case, decide with cases.workflow, write through the store, and (for
a mover's request) claim its idempotency key, keep its after photos and record the audit entry.

Every function works in the caller's transaction; the caller commits. Who may move which case
(role and jurisdiction) is checked before, by the API's one permission check (api.access).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from access.roles import AccessDenied, User
from cases.lifecycle import CaseStatus, Move, check_move
from cases.model import PhotoUpload
from cases.rules import Rules
from cases.workflow import Found, apply_move, target_of
from store import cases as store
from store import field_work, users
from store.case_history import write_change

MOVE_AUDIT = "case_transition"  # the audit log's action for a move


def move_case(
    session: Session,
    case_id: int,
    move: Move,
    rules: Rules,
    *,
    actor: str,
    note: str | None = None,
    now: datetime | None = None,
    mover: User | None = None,
) -> None:
    """Make one lifecycle move (checked against cases.lifecycle, and against what `mover`'s role may
    do from the case's status) and append it to the history."""
    case = store.case_for_update(session, case_id)
    now = now or store.db_now(session)
    check_move(case.status, move)
    if mover is not None and not mover.may_move(move.to, case.status):
        raise AccessDenied(f"a {mover.role} may not move a case from {case.status} to {move.to}")
    change = apply_move(case, move, rules, now, actor=actor, note=note, found=_found(session, move, rules))
    write_change(session, case_id, change, now)


def _found(session: Session, move: Move, rules: Rules) -> Found:
    """What the store knows of the unit and the case a move names."""
    target = target_of(move)
    level = store.unit_level(session, target) if target and target not in rules.departments else None
    merging = move.to == CaseStatus.MERGED and move.into is not None
    return Found(level, store.case_status(session, move.into) if merging else None)


def make_move(
    session: Session,
    case_id: int,
    move: Move,
    rules: Rules,
    *,
    actor: str,
    note: str | None = None,
    mover: User | None = None,
    key: str | None = None,
    photos: Sequence[PhotoUpload] = (),
    digest: str = "",
    ip: str | None = None,
) -> bool:
    """A mover's move as the API, the workbench and the task page make it: made once per
    idempotency key (False: made already), with its after photos, and recorded in the audit log."""
    if key is not None and not field_work.claim_move_key(session, key, case_id, digest):
        return False
    move_case(session, case_id, move, rules, actor=actor, note=note, mover=mover)
    field_work.add_photos(session, case_id, list(photos), field_work.AFTER)
    users.audit(session, actor, MOVE_AUDIT, f"case {case_id}", {"to": move.to, "unit": move.unit}, ip)
    return True


DISCLOSURE_AUDIT = "personal_data"  # the audit log's action when a reporter's phone is shown


def show_case(
    session: Session,
    case_id: int,
    rules: Rules,
    *,
    viewer: User | None,
    entitled: bool,
    ip: str | None = None,
) -> dict[str, Any]:
    """One case as `viewer` may see it (the reporter unmasked when `entitled`); personal data
    leaving the service is recorded in the audit log."""
    detail = store.case_detail(session, case_id, rules, entitled=entitled)
    reporter = detail.get("reporter") or {}
    if viewer is not None and entitled and reporter.get("phone") and not reporter.get("confidential"):
        details = {"fields": ["reporter"]}
        users.audit(session, viewer.username, DISCLOSURE_AUDIT, f"case {case_id}", details, ip)
    return detail
