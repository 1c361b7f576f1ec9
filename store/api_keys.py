"""Read-only API keys in the store: SQL and row mapping only (the rules are in services.api_keys).

A key is a random string shown once at creation; the store keeps only its HMAC under the service's
secret (the same keyed hash as for tokens, store.users), so a copy of the database holds no usable
key. `prefix` (its first characters) lets the owner tell keys apart in a list.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from access.roles import User
from store.users import UserError, token_digest, user_of_row

COLUMNS = "id, prefix, name, created_at, expires_at, revoked_at"


def insert(
    session: Session, user_id: int, name: str, key: str, prefix: str, secret: str,
    created_at: datetime, expires_at: datetime,
) -> dict[str, Any]:  # fmt: skip
    """Store a new key (its hash) and return its row; UserError when the user is not stored."""
    if session.execute(text("SELECT 1 FROM users WHERE id = :u"), {"u": user_id}).first() is None:
        raise UserError(f"no stored user {user_id}: only accounts of this service hold keys")
    row = session.execute(
        text(
            f"""INSERT INTO api_keys (key_hash, prefix, user_id, name, created_at, expires_at)
                VALUES (:h, :p, :u, :n, :c, :e) RETURNING {COLUMNS}"""
        ),
        {"h": token_digest(secret, key), "p": prefix, "u": user_id, "n": name,
         "c": created_at, "e": expires_at},
    ).one()  # fmt: skip
    return row._asdict()


def of_user(session: Session, user_id: int) -> list[dict[str, Any]]:
    """A user's keys, newest first, revoked and expired ones included."""
    rows = session.execute(
        text(f"SELECT {COLUMNS} FROM api_keys WHERE user_id = :u ORDER BY created_at DESC, id DESC"),
        {"u": user_id},
    ).all()
    return [r._asdict() for r in rows]


def revoke(session: Session, user_id: int, key_id: int, now: datetime) -> dict[str, Any] | None:
    """Mark a live key of this user revoked; its row, or None when the user has no such live key."""
    row = session.execute(
        text(
            f"""UPDATE api_keys SET revoked_at = :now
                WHERE id = :id AND user_id = :u AND revoked_at IS NULL RETURNING {COLUMNS}"""
        ),
        {"now": now, "id": key_id, "u": user_id},
    ).first()
    return row._asdict() if row else None


def holder(session: Session, key: str, secret: str, now: datetime) -> tuple[User, datetime] | None:
    """(user, when the key expires) for a live, unrevoked key of an enabled user, or None."""
    row = session.execute(
        text(
            """SELECT u.*, k.expires_at AS key_expires_at FROM api_keys k JOIN users u ON u.id = k.user_id
               WHERE k.key_hash = :h AND k.revoked_at IS NULL AND k.expires_at > :now AND NOT u.disabled"""
        ),
        {"h": token_digest(secret, key), "now": now},
    ).first()
    return (user_of_row(row), row.key_expires_at) if row else None


def user_named(session: Session, username: str) -> User | None:
    """The user of this name (for the CLI, which names the owner), or None."""
    row = session.execute(text("SELECT * FROM users WHERE username = :u"), {"u": username}).first()
    return user_of_row(row) if row else None
