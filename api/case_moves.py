"""A move as the API and the workbench both make it: the caller's rights to it (api.access, the
one permission check), then the move use case (services.cases.make_move), in a transaction of
its own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request

from access.roles import User
from api.access import check_move, client_address
from cases.lifecycle import Move
from cases.model import PhotoUpload
from cases.rules import Rules
from services import cases as case_service


def move_of(body: Any) -> Move:
    """The lifecycle move a request's body (api.moves.TransitionIn) asks for."""
    return Move(
        to=body.to,
        reason=body.reason or None,
        unit=body.unit,
        extend_by=body.extend_by,
        into=body.into,
        rating=body.rating,
    )


def make_move(
    request: Request,
    case_id: int,
    body: Any,
    rules: Rules,
    user: User | None,
    *,
    key: str | None = None,
    photos: Sequence[PhotoUpload] = (),
    digest: str = "",
) -> bool:
    """Make a move in one transaction; False when its idempotency key says it was made already.
    The caller's role and jurisdiction are checked here."""
    move = move_of(body)
    with request.app.state.sessions() as session:
        check_move(session, user, move, rules.departments)
        made = case_service.make_move(
            session, case_id, move, rules,
            actor=user.username if user else "public", note=body.note, mover=user,
            key=key, photos=photos, digest=digest, ip=client_address(request),
        )  # fmt: skip
        session.commit()
    return made
