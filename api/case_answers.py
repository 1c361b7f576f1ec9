"""A case as the API and the workbench show it: the service's answer, masked for the viewer, its
disclosure audited, with its photos' URLs (GET /cases/{id} and /desk/cases/{id} alike)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from access.roles import User
from api.access import client_address, visible_duplicates
from api.deps import entitled
from api.photo_links import with_photo_urls
from cases.rules import Rules
from services import cases as case_service


def case_answer(
    request: Request, session: Session, case_id: int, rules: Rules, user: User | None
) -> dict[str, Any]:
    """One case with its assignment and why, its clock and light, allowed moves, photos and history."""
    detail = case_service.show_case(
        session, case_id, rules, viewer=user, entitled=entitled(user), ip=client_address(request)
    )
    session.commit()  # the disclosure's audit entry, if any
    return with_photo_urls(visible_duplicates(detail, user))
