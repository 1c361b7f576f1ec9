"""Answers of signing in and of the admin's lists (users, audit log)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from api.schemas.base import Answer


class TokenOut(Answer):
    """An OAuth2 token answer: a bearer token for `Authorization`, and a refresh token."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds the access token is valid")
    refresh_token: str | None = Field(None, description="Use once with POST /auth/refresh")


class Me(Answer):
    """The signed-in user."""

    username: str
    role: str
    unit_code: str | None
    department: str | None


class AuditEntry(Answer):
    """One entry of the audit log."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    details: dict[str, Any] | list[Any] | None
    ip: str | None


class UserOut(Answer):
    """A user account (never its password hash)."""

    id: int
    username: str
    role: str
    unit_code: str | None
    department: str | None
    disabled: bool
    created_at: datetime
