"""Read-only API keys: a user creates one for a desktop GIS or a map client, lists and revokes them.

A key lets its holder read (GET) what its owner may read, where a client cannot sign in every
15 minutes: tile and TileJSON URLs (`?key=`) and the `X-API-Key` header. It never writes (api.access
refuses every other method), lives from one day to MAX_DAYS (fixed at creation), is stored only as a
keyed hash (store.api_keys) and shown once. Creating and revoking are written to the audit log.
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from access.roles import User
from errors import Invalid, NotFound
from store import api_keys, users

KEY_PREFIX = "gmk_"  # recognisable in a leaked config file or log (secret scanners match on it)
SHOWN = 12  # characters of a key kept in clear to tell keys apart: the marker and 8 random ones
MIN_DAYS, MAX_DAYS, DEFAULT_DAYS = 1, 90, 30
MAX_NAME = 80


class ApiKeyRefused(Invalid):
    """A key cannot be made as asked; the message says why."""


class ApiKeyNotFound(NotFound):
    """No live key of that id belongs to the user."""


@dataclass(frozen=True)
class NewKey:
    """A key just made: the secret (shown this once) and its stored description."""

    key: str
    row: dict[str, Any]


def looks_like_key(value: str) -> bool:
    """Whether a string has a key's form (a cheap check before any lookup)."""
    return value.startswith(KEY_PREFIX) and 20 <= len(value) <= 100


def state(row: dict[str, Any], now: datetime) -> str:
    """live, expired or revoked."""
    if row["revoked_at"] is not None:
        return "revoked"
    return "live" if row["expires_at"] > now else "expired"


def _clean_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise ApiKeyRefused(f"a key's name has 1 to {MAX_NAME} characters (what it is for, e.g. QGIS)")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise ApiKeyRefused("a key's name cannot hold control characters")
    return name


def create_key(
    session: Session, owner: User, name: str, days: int, secret: str, now: datetime, *,
    actor: str | None = None, ip: str | None = None,
) -> NewKey:  # fmt: skip
    """Make a read-only key for `owner` valid `days` days, and audit it (actor: who asked)."""
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise ApiKeyRefused(f"a key lives {MIN_DAYS} to {MAX_DAYS} days, not {days}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    try:
        row = api_keys.insert(
            session, owner.id, _clean_name(name), key, key[:SHOWN], secret, now, now + timedelta(days=days)
        )
    except users.UserError as exc:
        raise ApiKeyRefused(str(exc)) from None
    details = {k: row[k] for k in ("prefix", "name", "expires_at")} | {"key_id": row["id"]}
    users.audit(session, actor or owner.username, "api_key_create", owner.username, details, ip)
    return NewKey(key, row)


def list_keys(session: Session, owner: User, now: datetime) -> list[dict[str, Any]]:
    """The owner's keys (never the secret), newest first, each with its state."""
    return [{**row, "state": state(row, now)} for row in api_keys.of_user(session, owner.id)]


def revoke_key(
    session: Session, owner: User, key_id: int, now: datetime, *,
    actor: str | None = None, ip: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Revoke one of the owner's live keys at once, and audit it."""
    row = api_keys.revoke(session, owner.id, key_id, now)
    if row is None:
        raise ApiKeyNotFound(f"{owner.username} has no live key {key_id}")
    details = {"key_id": key_id, "prefix": row["prefix"], "name": row["name"]}
    users.audit(session, actor or owner.username, "api_key_revoke", owner.username, details, ip)
    return {**row, "state": state(row, now)}


def key_holder(session: Session, key: str, secret: str, now: datetime) -> tuple[User, datetime] | None:
    """(owner, expiry) of a live key, or None."""
    if not looks_like_key(key):
        return None
    return api_keys.holder(session, key, secret, now)


def owner_named(session: Session, username: str) -> User:
    """The user a CLI command names; ApiKeyNotFound-like refusal when there is none."""
    user = api_keys.user_named(session, username)
    if user is None:
        raise ApiKeyRefused(f"no user {username!r}")
    return user
