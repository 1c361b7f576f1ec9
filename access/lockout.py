"""The login policy: how long failed logins from one address delay the next try, and what is kept.

Failures count per user name *and* client address. A few are free (typos); after that each one
doubles the wait before that address may try that name again, up to a ceiling. There is no hard
lock of the account: an attacker failing from one address delays only themselves, and the owner
signs in from any other address as usual. Every failed login answers the same, whatever the cause.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

MAX_USERNAME_LENGTH = 64  # as the users table's CHECK allows: a longer name cannot exist
MAX_PASSWORD_LENGTH = 1024  # Argon2 takes any length; this bounds the work a request can ask for
MAX_AUDIT_TEXT = 200  # characters of an actor or target kept in the append-only audit log

# The one answer to every failed login: wrong name, wrong password, disabled, or waiting.
LOGIN_FAILED = (
    "wrong user name or password (after repeated failures from one address, "
    "wait a little before trying again)"
)


@dataclass(frozen=True)
class LoginPolicy:
    """Free failures, then a delay doubling from `base_s` per failure up to `max_s`."""

    free_failures: int = 3
    base_s: float = 1.0
    max_s: float = 900.0
    forget_after: timedelta = timedelta(days=1)  # a quiet day starts the count afresh

    def delay_after(self, failures: int) -> timedelta:
        """How long a (user, address) pair waits after its `failures`-th failure in a row."""
        over = failures - self.free_failures
        if over <= 0:
            return timedelta(0)
        return timedelta(seconds=min(self.max_s, self.base_s * 2.0 ** min(over - 1, 60)))


def audit_text(value: str | None, limit: int = MAX_AUDIT_TEXT) -> str | None:
    """`value` cut to `limit` characters (marked with …): the audit log keeps no unbounded input."""
    if value is None or len(value) <= limit:
        return value
    return value[: limit - 1] + "…"
