"""Users, logins, tokens and the audit log in the store.

Passwords are hashed with Argon2 (argon2-cffi). Tokens are random strings handed to the client;
the store keeps only an HMAC of each under the service's secret key, so a copy of the database
lets nobody sign in. A login makes a token family (access + refresh, or a page session) that is
revoked together at logout. Failed logins delay further tries of the same user name from the same
address (access.lockout); every failed login answers alike and spends the same time on a hash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import Row, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from access.lockout import LOGIN_FAILED, LoginPolicy, audit_text
from access.roles import Role, User
from errors import Invalid
from store import throttles
from store.units import units_at

HASHER = PasswordHasher()
LIFETIMES = {
    "access": timedelta(minutes=15),
    "refresh": timedelta(days=7),
    "session": timedelta(hours=8),
}
MIN_PASSWORD_LENGTH = 8


class UserError(Invalid):
    """A user cannot be created or changed as asked; the message says why."""


class LoginFailed(PermissionError):
    """Wrong name or password, a disabled account, or a pair still waiting: the message does not say
    which (`reason` does, for the audit log only)."""

    def __init__(self, message: str = LOGIN_FAILED, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Tokens:
    """What a login hands out."""

    access_token: str
    refresh_token: str | None
    session_token: str | None
    expires_in: int  # seconds the access (or session) token lives


def _user(row: Row) -> User:
    return User(row.id, row.username, Role(row.role), row.unit_code, row.department)


def hash_password(password: str) -> str:
    """An Argon2 hash of a password that meets the length rule."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return HASHER.hash(password)


def add_user(
    session: Session, username: str, password: str, role: Role, unit_code: str, department: str | None = None
) -> User:
    """Create a user of a role in a unit (a department handler names their department)."""
    if (role == Role.DEPARTMENT) != (department is not None):
        raise UserError("a department handler needs --department, and only they do")
    if unit_code not in units_at(session, [unit_code]):
        raise UserError(f"no current unit {unit_code}; users belong to an existing unit")
    try:
        with session.begin_nested():
            row = session.execute(
                text(
                    """INSERT INTO users (username, password_hash, role, unit_code, department)
                       VALUES (:u, :h, :r, :unit, :d) RETURNING *"""
                ),
                {"u": username, "h": hash_password(password), "r": role, "unit": unit_code, "d": department},
            ).one()
    except IntegrityError as e:
        if "users_username_key" in str(e.orig):
            raise UserError(f"user {username!r} exists") from None
        raise UserError(f"{username!r} is not a valid user name (letters, digits, _ . @ -)") from None
    return _user(row)


def usernames(session: Session) -> set[str]:
    """Every user name taken."""
    return set(session.execute(text("SELECT username FROM users")).scalars())


def list_users(session: Session) -> list[dict[str, Any]]:
    """Every user, without password hashes."""
    rows = session.execute(
        text(
            """SELECT id, username, role, unit_code, department, disabled, created_at
               FROM users ORDER BY username"""
        )
    ).all()
    return [r._asdict() for r in rows]


def _by_name(session: Session, username: str) -> Row:
    row = session.execute(text("SELECT * FROM users WHERE username = :u"), {"u": username}).first()
    if row is None:
        raise UserError(f"no user {username!r}")
    return row


def set_disabled(session: Session, username: str, disabled: bool = True) -> None:
    """Disable (or enable) a user; disabling revokes every token they hold."""
    row = _by_name(session, username)
    session.execute(text("UPDATE users SET disabled = :d WHERE id = :id"), {"d": disabled, "id": row.id})
    if disabled:
        revoke_user(session, row.id)


def reset_password(session: Session, username: str, password: str) -> None:
    """Set a new password, forget the name's failed logins and revoke the old tokens."""
    row = _by_name(session, username)
    session.execute(text("UPDATE users SET password_hash = :h WHERE id = :id"),
                    {"h": hash_password(password), "id": row.id})  # fmt: skip
    session.execute(text("DELETE FROM login_failures WHERE username = :u"), {"u": username})
    revoke_user(session, row.id)


@cache
def _dummy_hash() -> str:
    """A hash no password matches, verified for unknown names: the same work as a real check."""
    return HASHER.hash(secrets.token_urlsafe(32))


def _verify(password_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(password_hash, password)
    except (VerifyMismatchError, InvalidHashError):
        return False


def authenticate(
    session: Session, username: str, password: str, now: datetime, address: str,
    policy: LoginPolicy = LoginPolicy(),  # noqa: B008 (frozen, so one shared default is safe)
) -> User:  # fmt: skip
    """The user whose password this is, or LoginFailed, the same for every cause and after the same
    work: one Argon2 verification whether the name exists, is disabled or must wait."""
    dummy = _dummy_hash()  # first: the first login of a process pays for it, whatever the cause
    failures = throttles.login_gate(session, username, address, now, policy)
    row = session.execute(text("SELECT * FROM users WHERE username = :u"), {"u": username}).first()
    usable = row is not None and not row.disabled and failures is not None
    matches = _verify(row.password_hash if usable else dummy, password)
    if failures is None:
        raise LoginFailed(reason="waiting after failed logins from this address")
    if usable and matches:
        throttles.login_succeeded(session, username, address)
        return _user(row)
    throttles.login_failed(session, username, address, failures, now, policy)
    reason = "unknown user" if row is None else ("disabled" if row.disabled else "wrong password")
    raise LoginFailed(reason=reason)


def _digest(secret: str, token: str) -> str:
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


token_digest = _digest  # the keyed hash of a secret string handed out (tokens, API keys: store.api_keys)
user_of_row = _user  # a users row as the access rules see it


def issue(session: Session, user: User, secret: str, now: datetime, *, kinds: tuple[str, ...]) -> Tokens:
    """New tokens of the given kinds ("access", "refresh", "session") for one login."""
    family = uuid.uuid4()
    made: dict[str, str] = {}
    for kind in kinds:
        token = secrets.token_urlsafe(32)
        session.execute(
            text(
                """INSERT INTO auth_tokens (token_hash, user_id, kind, family, created_at, expires_at)
                   VALUES (:h, :u, :k, :f, :now, :exp)"""
            ),
            {"h": _digest(secret, token), "u": user.id, "k": kind, "f": family, "now": now,
             "exp": now + LIFETIMES[kind]},
        )  # fmt: skip
        made[kind] = token
    main = "access" if "access" in made else "session"
    return Tokens(
        made.get("access", made.get("session", "")),
        made.get("refresh"),
        made.get("session"),
        int(LIFETIMES[main].total_seconds()),
    )


def _token_row(session: Session, token: str, secret: str, kind: str, now: datetime) -> Row | None:
    return session.execute(
        text(
            """SELECT u.*, t.family, t.expires_at AS token_expires_at FROM auth_tokens t
               JOIN users u ON u.id = t.user_id
               WHERE t.token_hash = :h AND t.kind = :k AND t.revoked_at IS NULL AND t.expires_at > :now
                 AND NOT u.disabled"""
        ),
        {"h": _digest(secret, token), "k": kind, "now": now},
    ).first()


def token_holder(
    session: Session, token: str, secret: str, kind: str, now: datetime
) -> tuple[User, datetime] | None:
    """(user, when the token expires) for a live, unrevoked token of `kind`, or None."""
    row = _token_row(session, token, secret, kind, now)
    return (_user(row), row.token_expires_at) if row else None


def refresh(session: Session, refresh_token: str, secret: str, now: datetime) -> tuple[User, Tokens]:
    """A new access token (and a new refresh token: the old one is used up) for a refresh token."""
    row = _token_row(session, refresh_token, secret, "refresh", now)
    if row is None:
        raise LoginFailed("the refresh token is unknown, expired or revoked; log in again")
    session.execute(
        text("UPDATE auth_tokens SET revoked_at = :now WHERE family = :f"), {"now": now, "f": row.family}
    )
    user = _user(row)
    return user, issue(session, user, secret, now, kinds=("access", "refresh"))


def revoke(session: Session, token: str, secret: str, now: datetime) -> bool:
    """Revoke a token and everything issued with it at the same login (logout)."""
    updated = session.execute(
        text(
            """UPDATE auth_tokens SET revoked_at = :now
               WHERE family = (SELECT family FROM auth_tokens WHERE token_hash = :h) AND revoked_at IS NULL"""
        ),
        {"now": now, "h": _digest(secret, token)},
    )
    return updated.rowcount > 0


def revoke_user(session: Session, user_id: int) -> None:
    """Revoke every token a user holds."""
    session.execute(
        text(
            "UPDATE auth_tokens SET revoked_at = clock_timestamp() WHERE user_id = :u AND revoked_at IS NULL"
        ),
        {"u": user_id},
    )


def audit(
    session: Session,
    actor: str,
    action: str,
    target: str | None = None,
    details: dict[str, Any] | None = None,
    ip: str | None = None,
) -> None:
    """Append one entry to the audit log (never changed afterwards: a trigger refuses it). Actor,
    target and address are cut to a bounded length: what a client typed cannot fill the log."""
    session.execute(
        text("INSERT INTO audit_log (actor, action, target, details, ip) VALUES (:a, :act, :t, :d, :ip)"),
        {"a": audit_text(actor), "act": action, "t": audit_text(target),
         "d": json.dumps(details or {}, ensure_ascii=False, default=str), "ip": audit_text(ip, 64)},
    )  # fmt: skip


@dataclass(frozen=True)
class AuditQuery:
    """Which audit entries to read: of one action or actor if given, a page of them newest first."""

    action: str | None = None
    actor: str | None = None
    limit: int = 200
    offset: int = 0


def read_audit(session: Session, query: AuditQuery) -> list[dict[str, Any]]:
    """Audit entries, newest first."""
    rows = session.execute(
        text(
            """SELECT id, at, actor, action, target, details, ip FROM audit_log
               WHERE (CAST(:action AS text) IS NULL OR action = :action)
                 AND (CAST(:actor AS text) IS NULL OR actor = :actor)
               ORDER BY id DESC LIMIT :limit OFFSET :offset"""
        ),
        {"action": query.action, "actor": query.actor, "limit": query.limit, "offset": query.offset},
    ).all()
    return [r._asdict() for r in rows]
