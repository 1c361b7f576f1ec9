"""Test users made quickly: `add_user` is store.users.add_user with each password's Argon2 hash made
once per process and stored for every user who has that password.

Why: a fixture or helper making users hashed each one in full (Argon2id, 64 MiB, three passes: 0.1 s
on a quiet machine, 1.2 s at a load of 20), and the suite makes over a hundred. The stored hash is
the real one of the real password, so every login still verifies it in full; only the repeated
hashing of the same password in the setups is saved. Tests of hashing and of logins' timing
(tests/api/test_accounts.py) make their users with store.users.add_user itself.
"""

from __future__ import annotations

from functools import cache

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from access.roles import Role, User
from store import users

_hash_once = cache(users.hash_password)


def add_user(
    session: Session, username: str, password: str, role: Role, unit_code: str, department: str | None = None
) -> User:
    """store.users.add_user, the password hashed once per process (every user with it shares the hash)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(users, "hash_password", _hash_once)
        return users.add_user(session, username, password, role, unit_code, department)


_tokens: dict[tuple[int, str], str] = {}


def auth_header(client: TestClient, username: str, password: str) -> dict[str, str]:
    """The Authorization header of `username` on the app of `client` (signed in once per app)."""
    key = (id(client.app), username)
    if key not in _tokens:
        answer = client.post("/auth/token", data={"username": username, "password": password})
        assert answer.status_code == 200, answer.text
        _tokens[key] = answer.json()["access_token"]
    return {"Authorization": f"Bearer {_tokens[key]}"}
