"""A signed-in user's read-only API keys: list, create (the key is shown once), revoke.

For desktop GIS and map clients that cannot sign in every 15 minutes (docs/security.md#api-keys).
The rules live in services.api_keys; these routes parse, call it and answer typed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from access.roles import User
from api.access import CurrentUser, client_address, forget_tokens
from api.deps import SessionDep
from services import api_keys

router = APIRouter(tags=["auth"])


class ApiKeyInfo(BaseModel):
    """A key as its owner sees it later: never the secret, only its first characters."""

    id: int
    prefix: str = Field(description="The key's first characters, to tell keys apart")
    name: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    state: str = Field(description="live, expired or revoked")


class ApiKeyList(BaseModel):
    """The signed-in user's keys, newest first."""

    keys: list[ApiKeyInfo]


class NewApiKey(ApiKeyInfo):
    """A key just made: `key` is shown this once and stored only as a hash."""

    key: str


class ApiKeyRequest(BaseModel):
    """What a new key is for and how long it lives."""

    name: str = Field(min_length=1, max_length=api_keys.MAX_NAME, description="What it is for, e.g. QGIS")
    days: int = Field(default=api_keys.DEFAULT_DAYS, description=f"1 to {api_keys.MAX_DAYS} days")


def _owner(user: User | None) -> User:
    assert user is not None  # the routes' access rule requires a signed-in user
    return user


@router.get("/auth/keys", response_model=ApiKeyList)
def list_keys(session: SessionDep, user: CurrentUser) -> ApiKeyList:
    """Your API keys (live, expired and revoked), without their secrets."""
    rows = api_keys.list_keys(session, _owner(user), datetime.now(UTC))
    return ApiKeyList(keys=[ApiKeyInfo(**r) for r in rows])


@router.post("/auth/keys", response_model=NewApiKey, status_code=201)
def create_key(request: Request, body: ApiKeyRequest, session: SessionDep, user: CurrentUser) -> NewApiKey:
    """A new read-only key for you (shown once): `?key=` on tile and TileJSON URLs, or `X-API-Key`."""
    now = datetime.now(UTC)
    made = api_keys.create_key(
        session, _owner(user), body.name, body.days, request.app.state.secret, now, ip=client_address(request)
    )
    session.commit()
    return NewApiKey(**made.row, key=made.key, state=api_keys.state(made.row, now))


@router.delete("/auth/keys/{key_id}", response_model=ApiKeyInfo)
def revoke_key(
    request: Request, key_id: Annotated[int, Path(ge=1, le=2**62)], session: SessionDep, user: CurrentUser
) -> ApiKeyInfo:
    """Revoke one of your keys: refused at once by this process, by others within the token cache's ttl."""
    row = api_keys.revoke_key(session, _owner(user), key_id, datetime.now(UTC), ip=client_address(request))
    session.commit()
    forget_tokens(request)
    return ApiKeyInfo(**row)
