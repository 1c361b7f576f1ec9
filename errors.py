"""The one error vocabulary: what kind of refusal an error is, whoever raises it and whoever answers.

Every error a user can act on (bad input, something missing, a state that does not allow it, a
right they lack) derives from one of the kinds below, wherever it is raised (geo, cases, access,
store, services, api). Each channel maps the kinds to its own answer in one place:

- the JSON API: `api/errors.py` (`STATUS_BY_KIND`, `{"detail": message}`),
- Open311: `api/open311_format.py` (its error list, 400 for every refused parameter),
- the command line: `cli/errors.py` (`error: message` on stderr, an exit code).

docs/errors.md has the table; tests/test_errors.py holds the three maps to it.

The kinds keep Python's built-in bases (ValueError, LookupError, PermissionError), so code that
caught those still does.

>>> kind_of(NotFound("no plan 7")) is NotFound
True
>>> kind_of(KeyError("x")) is None
True
"""

from __future__ import annotations


class Refused(Exception):
    """Base of the vocabulary: a refusal whose message tells the user why."""


class Invalid(Refused, ValueError):
    """Input that cannot be used: malformed, out of range, inconsistent, unknown."""


class TooLarge(Invalid):
    """Input over a size limit; the message gives the limit."""


class Unsupported(Invalid):
    """Input in a format or of a type that is not read here."""


class NotFound(Refused, LookupError):
    """Something the request names does not exist (or is hidden like a missing one)."""


class Conflict(Refused, ValueError):
    """The thing exists, but its state does not allow this (now): a move, a closed or changed plan."""


class Denied(Refused, PermissionError):
    """The user's role or jurisdiction does not allow this."""


class TooMany(Refused):
    """A limit on how many at once (or how often) is reached."""


# The vocabulary, most specific first: an error's kind is the first of these it is an instance of.
KINDS: tuple[type[Refused], ...] = (TooLarge, Unsupported, Invalid, NotFound, Conflict, Denied, TooMany)


def kind_of(exc: BaseException) -> type[Refused] | None:
    """The kind of an error (one of KINDS), None for an error outside the vocabulary."""
    return next((kind for kind in KINDS if isinstance(exc, kind)), None)


def message_of(exc: BaseException) -> str:
    """What the error says, for people (KeyError's own str() would quote it)."""
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
