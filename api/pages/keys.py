"""`GET /desk/keys`: the signed-in user's read-only API keys in the workbench, to create (shown once)
and revoke. Plain forms (no script needed), through the same use cases as `/auth/keys`
(services.api_keys); a refused key comes back in the form with the reason and what was typed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from access.roles import User
from api.access import CurrentUser, client_address, forget_tokens
from api.deps import SessionDep
from api.pages.templates import render
from services import api_keys

router = APIRouter(tags=["workbench"], include_in_schema=False)


def _page(
    request: Request, session: SessionDep, user: User, status: int = 200, **extra: Any
) -> Response:
    context = {
        "user": user,
        "keys": api_keys.list_keys(session, user, datetime.now(UTC)),
        "tilejson_url": f"{str(request.base_url).rstrip('/')}/map/tiles.json",
        "max_days": api_keys.MAX_DAYS,
        "default_days": api_keys.DEFAULT_DAYS,
        "new_key": None,
        "error": None,
        "typed": {"name": "", "days": api_keys.DEFAULT_DAYS},
        **extra,
    }
    return render("keys.html", status_code=status, **context)


@router.get("/desk/keys")
def keys_page(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    """Your API keys for QGIS and MapLibre, a form to make one and a button to revoke each."""
    assert user is not None  # the page's access rule sends visitors to the login page
    return _page(request, session, user)


@router.post("/desk/keys")
def create_key(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    name: Annotated[str, Form(max_length=200)] = "",
    days: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Make a key and show it this once (the answer is not stored by the browser: no-store)."""
    assert user is not None
    typed = {"name": name, "days": days}
    if not (days or "0").strip().isdigit():
        return _page(request, session, user, 422, error=f"天数 days: {days!r} is not a number", typed=typed)
    try:
        lifetime = int(days or api_keys.DEFAULT_DAYS)
        secret, now = request.app.state.secret, datetime.now(UTC)
        made = api_keys.create_key(session, user, name, lifetime, secret, now, ip=client_address(request))
    except api_keys.ApiKeyRefused as exc:
        session.rollback()
        return _page(request, session, user, 422, error=str(exc), typed=typed)
    session.commit()
    return _page(request, session, user, 201, new_key=made)


@router.post("/desk/keys/{key_id}/revoke")
def revoke_key(request: Request, key_id: int, session: SessionDep, user: CurrentUser) -> Response:
    """Revoke one of your keys, then back to the list."""
    assert user is not None
    try:
        api_keys.revoke_key(session, user, key_id, datetime.now(UTC), ip=client_address(request))
    except api_keys.ApiKeyNotFound as exc:
        session.rollback()
        return _page(request, session, user, 404, error=str(exc))
    session.commit()
    forget_tokens(request)
    return RedirectResponse("/desk/keys", status_code=303)
