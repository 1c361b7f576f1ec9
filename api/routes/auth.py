"""Signing in and out: OAuth2 password flow for API clients, a session cookie for the pages, the
audit log and the user list for admins."""

from __future__ import annotations

import html
from importlib.resources import files
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.security import OAuth2PasswordRequestForm

from access.lockout import MAX_PASSWORD_LENGTH, MAX_USERNAME_LENGTH
from api.access import SESSION_COOKIE, CurrentUser, RateLimit, client_address, forget_tokens, login_policy
from api.deps import SessionDep
from api.errors import InvalidParameter
from api.page_policy import page_headers
from api.params import Offset
from api.schemas.auth import AuditEntry, Me, TokenOut, UserOut
from api.schemas.errors import error_responses
from services import logins, users

router = APIRouter(tags=["auth"])
LOGIN_PAGE = files("api") / "static" / "login.html"
LOGIN_HEADERS = page_headers()


client_ip = client_address  # the name the routes import: the one function in api.access


def login_limit(request: Request) -> RateLimit:
    """Logins per client address and minute (GRIDMAP_LOGIN_PER_MINUTE), over every process."""
    state = request.app.state
    if getattr(state, "login_limit", None) is None:
        state.login_limit = RateLimit("login", state.settings.login_per_minute, 60)
    return state.login_limit


def check_credentials_length(username: str, password: str) -> None:
    """422 for a name longer than any user's, or a password beyond reason: before anything is stored."""
    if len(username) > MAX_USERNAME_LENGTH:
        raise InvalidParameter(f"a user name has at most {MAX_USERNAME_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidParameter(f"a password has at most {MAX_PASSWORD_LENGTH} characters")


def _login(request: Request, session, username: str, password: str, kinds: tuple[str, ...]) -> logins.Tokens:
    check_credentials_length(username, password)
    login_limit(request).check(request)
    try:
        tokens = logins.log_in(
            session, username, password, secret=request.app.state.secret,
            policy=login_policy(request.app.state.settings), address=client_address(request), kinds=kinds,
        )  # fmt: skip
    except logins.LoginFailed as e:
        session.commit()  # the failure's audit entry
        raise HTTPException(401, str(e), {"WWW-Authenticate": "Bearer"}) from None
    session.commit()
    return tokens


@router.post("/auth/token", response_model=TokenOut, responses=error_responses(429))
def token(
    request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()], session: SessionDep
) -> dict[str, Any]:
    """OAuth2 password flow: form fields `username`, `password` → a bearer token and a refresh token."""
    tokens = _login(request, session, form.username, form.password, ("access", "refresh"))
    return {
        "access_token": tokens.access_token,
        "token_type": "bearer",
        "expires_in": tokens.expires_in,
        "refresh_token": tokens.refresh_token,
    }


@router.post("/auth/refresh", response_model=TokenOut, responses=error_responses(429))
def refresh(request: Request, refresh_token: Annotated[str, Form()], session: SessionDep) -> dict[str, Any]:
    """A new access token for a refresh token (which is used up: a new one comes with it)."""
    login_limit(request).check(request)
    try:
        tokens = logins.refresh(session, refresh_token, secret=request.app.state.secret)
    except logins.LoginFailed as e:
        raise HTTPException(401, str(e), {"WWW-Authenticate": "Bearer"}) from None
    session.commit()
    forget_tokens(request)  # the old login's access token is revoked with it
    return {
        "access_token": tokens.access_token,
        "token_type": "bearer",
        "expires_in": tokens.expires_in,
        "refresh_token": tokens.refresh_token,
    }


@router.post("/auth/logout", status_code=204, response_class=Response)
def logout(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    """Revoke the token (or page session) this request carries, with everything of the same login."""
    header = request.headers.get("authorization", "")
    token = (
        header[7:].strip() if header.lower().startswith("bearer ") else request.cookies.get(SESSION_COOKIE)
    )
    if token:
        logins.log_out(
            session, token, secret=request.app.state.secret, username=user.username if user else None,
            address=client_ip(request),
        )  # fmt: skip
    session.commit()
    forget_tokens(request)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(
    next_url: Annotated[str, Query(alias="next", max_length=500)] = "/map",
    failed: Annotated[bool, Query()] = False,
) -> HTMLResponse:
    """The sign-in page of the map and other pages."""
    page = LOGIN_PAGE.read_text(encoding="utf-8")
    page = page.replace("{next}", html.escape(next_url, quote=True))
    page = page.replace("{failed_hidden}", "" if failed else "hidden")
    return HTMLResponse(page, headers=LOGIN_HEADERS)


@router.get("/static/login.css", include_in_schema=False)
def login_css() -> Response:
    """The login page's style sheet."""
    css = (files("api") / "static" / "login.css").read_text(encoding="utf-8")
    return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})


@router.post("/auth/login", include_in_schema=False)
def login_form(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form(max_length=MAX_USERNAME_LENGTH)],
    password: Annotated[str, Form(max_length=MAX_PASSWORD_LENGTH)],
    next_url: Annotated[str, Form(alias="next", max_length=500)] = "/map",
) -> Response:
    """Sign in from the page: a session cookie (HttpOnly, Secure, SameSite=Lax), then back to `next`."""
    try:
        tokens = _login(request, session, username, password, ("session",))
    except HTTPException as e:
        return RedirectResponse(f"/login?failed=1&why={e.status_code}", status_code=303)
    # Only local paths: never an open redirect to another site.
    target = next_url if next_url.startswith("/") and not next_url.startswith("//") else "/map"
    response = RedirectResponse(target, status_code=303)
    # Secure always, except a demo served over plain HTTP on a LAN address (the browser would drop it).
    secure = request.url.scheme == "https" or not request.app.state.settings.demo
    response.set_cookie(
        SESSION_COOKIE, tokens.session_token or "", max_age=tokens.expires_in, path="/",
        httponly=True, secure=secure, samesite="lax",
    )  # fmt: skip
    return response


@router.get("/auth/me", response_model=Me)
def me(user: CurrentUser) -> dict[str, Any]:
    """Who the token belongs to."""
    assert user is not None  # authorize let only signed-in users through
    return {
        "username": user.username,
        "role": user.role,
        "unit_code": user.unit_code,
        "department": user.department,
    }


@router.get("/audit", response_model=list[AuditEntry])
def audit_log(
    session: SessionDep,
    action: Annotated[str | None, Query(max_length=40)] = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=users.AUDIT_PAGE)] = 200,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    """The audit log, newest first (admins). Nothing in the service edits or deletes it."""
    return users.audit_log(session, users.AuditQuery(action, actor, limit, offset))


@router.get("/users", response_model=list[UserOut])
def user_list(session: SessionDep) -> list[dict[str, Any]]:
    """Every user (admins); no password hashes."""
    return users.list_users(session)
