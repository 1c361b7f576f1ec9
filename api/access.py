"""Authentication and the one permission check every route goes through.

`authorize` is an app-wide dependency: it looks up the route in RULES (a route without a rule is
refused, and the test suite fails for it), identifies the user (Bearer token or page session
cookie), checks the role's permission (access.roles) and the jurisdiction of whatever the request
names — a unit code in its path, query string or JSON body, a case, a plan, a coverage report. No
route checks jurisdiction itself; list endpoints narrow their queries to `user_of`'s jurisdiction.
Public routes still identify a user who sends a token (a field worker's report).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import text
from sqlalchemy.orm import Session

from access.lockout import LoginPolicy
from access.roles import AccessDenied, Permission, User
from cases.lifecycle import Move
from errors import Invalid
from geo.codes import CodeError, level_of
from geo.settings import Settings
from services import api_keys
from store import coverage, throttles, users
from store.cases import CaseNotFound

P = Permission
SESSION_COOKIE = "gridmap_session"
KEY_IN_URL = "/map/"  # paths that take an API key as `?key=` (tiles, TileJSON, map data)
READ_METHODS = ("GET", "HEAD")  # all an API key may do


@dataclass(frozen=True)
class UnitIn:
    """A unit code the request names, in its path, query string or JSON body: it must lie in the
    user's jurisdiction (a well-formed code outside it: 403; a malformed one outside it: 422)."""

    place: Literal["path", "query", "body"]
    name: str


# What a rule checks jurisdiction on: a unit the request names, or the unit of a stored thing its
# path names by id ("case": case_id or service_request_id, "plan": plan_id, "report": report_id).
Scope = UnitIn | Literal["case", "plan", "report"]
UNIT_QUERY = UnitIn("query", "unit")  # ?unit=: "a unit and all below it" on statistics and reports


@dataclass(frozen=True)
class Rule:
    """What a route needs: a permission (None = public) and what in the request to check jurisdiction on."""

    permission: Permission | None
    scope: Scope | None = None
    page: bool = False  # an HTML page: send people without a session to the login page
    # A setting's name (geo.settings.Settings): while it is true, callers without credentials pass
    # as on a public route (the route shows them its public view); signed-in callers are checked.
    public_if: str | None = None


PUBLIC = Rule(None)
# Every API route, by method and path. A route missing here is refused (fail closed).
RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/locate"): PUBLIC,
    ("GET", "/categories"): PUBLIC,
    ("GET", "/departments"): PUBLIC,
    ("POST", "/cases"): PUBLIC,  # citizens and hotlines report without an account (rate-limited)
    ("GET", "/report"): PUBLIC,
    ("GET", "/report/me"): PUBLIC,  # answers who is signed in, or nobody
    ("POST", "/auth/token"): PUBLIC,
    ("POST", "/auth/refresh"): PUBLIC,
    ("POST", "/auth/login"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("GET", "/static/login.css"): PUBLIC,
    ("POST", "/auth/logout"): PUBLIC,
    ("GET", "/auth/me"): Rule(P.READ_UNITS),
    ("GET", "/auth/keys"): Rule(P.READ_UNITS),  # one's own read-only API keys (services.api_keys)
    ("POST", "/auth/keys"): Rule(P.READ_UNITS),
    ("DELETE", "/auth/keys/{key_id}"): Rule(P.READ_UNITS),
    ("GET", "/grids"): Rule(P.READ_UNITS),
    ("GET", "/grids/{code}"): Rule(P.READ_UNITS),
    ("GET", "/grids/{code}/versions"): Rule(P.READ_UNITS),
    ("GET", "/export"): Rule(P.READ_UNITS),
    ("GET", "/cases"): Rule(P.READ_CASES),
    ("GET", "/cases/stream"): Rule(P.READ_CASES),
    ("GET", "/cases/{case_id}"): Rule(P.READ_CASES, "case"),
    ("GET", "/cases/{case_id}/photos/{seq}"): Rule(P.READ_CASES, "case"),
    ("GET", "/cases/{case_id}/assignments"): Rule(P.READ_CASES, "case"),
    ("POST", "/cases/{case_id}/transitions"): Rule(P.READ_CASES, "case"),  # the move is checked too
    ("GET", "/stats"): Rule(P.READ_STATS, UNIT_QUERY),
    ("GET", "/stats/dashboard"): Rule(P.READ_STATS, UNIT_QUERY),
    ("GET", "/stats/dashboard/map"): Rule(P.READ_STATS, UNIT_QUERY),
    ("GET", "/dashboard"): Rule(P.READ_STATS, page=True),
    ("GET", "/docs"): PUBLIC,  # the API's documentation (Swagger UI), signing in from the page
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/audit"): Rule(P.READ_AUDIT),
    ("GET", "/users"): Rule(P.MANAGE_USERS),
    # Open311: services, discovery and intake are public (hotlines, third parties); reading requests
    # is public too (without personal data) unless GRIDMAP_OPEN311_PUBLIC_READ=false.
    ("GET", "/open311/discovery.{format}"): PUBLIC,
    ("GET", "/open311/v2/services.{format}"): PUBLIC,
    ("GET", "/open311/v2/services/{service_code}.{format}"): PUBLIC,
    ("POST", "/open311/v2/requests.{format}"): PUBLIC,
    ("GET", "/open311/v2/requests.{format}"): Rule(P.READ_CASES, public_if="open311_public_read"),
    ("GET", "/open311/v2/requests/{service_request_id}.{format}"): Rule(
        P.READ_CASES, "case", public_if="open311_public_read"
    ),
    # Planning
    ("POST", "/plans"): Rule(P.PLAN, UnitIn("body", "unit")),
    ("GET", "/plans"): Rule(P.PLAN, UNIT_QUERY),
    ("GET", "/plans/{plan_id}"): Rule(P.PLAN, "plan"),
    ("POST", "/plans/{plan_id}/edits"): Rule(P.PLAN, "plan"),
    ("DELETE", "/plans/{plan_id}/edits/{edit_id}"): Rule(P.PLAN, "plan"),
    ("GET", "/plans/{plan_id}/validate"): Rule(P.PLAN, "plan"),
    ("GET", "/plans/{plan_id}/impact"): Rule(P.PLAN, "plan"),
    ("POST", "/plans/{plan_id}/publish"): Rule(P.PLAN, "plan"),
    ("POST", "/plans/{plan_id}/abandon"): Rule(P.PLAN, "plan"),
    ("POST", "/plans/{plan_id}/preview"): Rule(P.PLAN, "plan"),
    ("GET", "/plans/{plan_id}/balance"): Rule(P.PLAN, "plan"),
    # The editor's page: everyone who reads units may open it; only planners get its tools.
    ("GET", "/plan"): Rule(P.READ_UNITS, page=True),
    ("GET", "/plan/{plan_id}"): Rule(P.READ_UNITS, page=True),
    ("GET", "/units/{code}/diff"): Rule(P.READ_UNITS),
    ("GET", "/coverage"): Rule(P.READ_UNITS, UNIT_QUERY),
    ("GET", "/coverage/reports"): Rule(P.READ_UNITS, UNIT_QUERY),
    ("GET", "/coverage/reports/{report_id}/compare"): Rule(P.READ_UNITS, "report"),
    # The map: boundaries for every signed-in user, cases narrowed to the jurisdiction.
    ("GET", "/map"): Rule(P.READ_UNITS, page=True),
    ("GET", "/map/tiles/{z}/{x}/{y}.pbf"): Rule(P.READ_UNITS),
    ("GET", "/map/tiles.json"): Rule(P.READ_UNITS),  # TileJSON of the tiles (MapLibre, QGIS)
    ("GET", "/map/units/{code}"): Rule(P.READ_UNITS),
    ("GET", "/map/search"): Rule(P.READ_UNITS),
    ("GET", "/map/cases"): Rule(P.READ_CASES),
    ("GET", "/map/party"): Rule(P.READ_UNITS, UNIT_QUERY),
    ("GET", "/map/labels"): Rule(P.READ_UNITS),
    ("GET", "/map/boundaries"): Rule(P.READ_UNITS),
    # The workbench (api/pages/desk.py): the queue, a case and its moves (each checked by the API's move).
    ("GET", "/queue"): Rule(P.READ_CASES),
    ("GET", "/desk"): Rule(P.READ_CASES, page=True),
    ("GET", "/desk/cases/{case_id}"): Rule(P.READ_CASES, "case", page=True),
    ("GET", "/desk/cases/{case_id}/moves/{to}"): Rule(P.READ_CASES, "case"),
    ("POST", "/desk/cases/{case_id}/moves"): Rule(P.READ_CASES, "case"),
    ("GET", "/desk/units"): Rule(P.READ_CASES),
    ("GET", "/desk/export.csv"): Rule(P.READ_CASES),
    ("GET", "/desk/keys"): Rule(P.READ_UNITS, page=True),  # one's own API keys (api/pages/keys.py)
    ("POST", "/desk/keys"): Rule(P.READ_UNITS),
    ("POST", "/desk/keys/{key_id}/revoke"): Rule(P.READ_UNITS),
    # A handler's tasks on the phone (field workers, departments)
    ("GET", "/tasks"): Rule(P.HANDLE_CASES, page=True),
    ("GET", "/tasks/list"): Rule(P.HANDLE_CASES),
    ("GET", "/tasks/{case_id}"): Rule(P.HANDLE_CASES, "case"),
    # Patrols: tracks are personal data, narrowed by access.roles.User.may_see_patrol in the query
    ("POST", "/patrols"): Rule(P.PATROL),
    ("GET", "/patrols"): Rule(P.PATROL),
    ("GET", "/patrols/coverage/{code}"): Rule(P.READ_UNITS, UnitIn("path", "code")),
}


class LoginRequired(Exception):
    """A page asked for without a session: the answer is a redirect to the login page."""

    def __init__(self, next_url: str) -> None:
        self.location = f"/login?next={quote(next_url, safe='/?=&')}"


def _token(request: Request) -> tuple[str, str] | None:
    """(token, kind) from the Authorization header, an API key (header X-API-Key, or `?key=` on the
    map's data: a desktop GIS puts it in the URL), else the session cookie."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        token = header[7:].strip()
        return token, "api_key" if token.startswith(api_keys.KEY_PREFIX) else "access"
    key = request.headers.get("x-api-key") or (
        request.query_params.get("key") if request.url.path.startswith(KEY_IN_URL) else None
    )
    if key:
        return key, "api_key"
    cookie = request.cookies.get(SESSION_COOKIE)
    return (cookie, "session") if cookie else None


Holder = tuple[User, datetime]  # a token's user, and when the token expires


class TokenCache:
    """Users of recently checked tokens, per process: a request with a known token needs no lookup.

    An entry lives `ttl_s` seconds at most (and never past the token's expiry), so a token revoked
    or a user disabled elsewhere (another process, the CLI) is refused within `ttl_s`; a logout or
    refresh in this process clears the cache at once.
    """

    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._entries: dict[tuple[str, str], tuple[User, float]] = {}
        self._pending: dict[tuple[str, str], asyncio.Future[Holder | None]] = {}
        self._generation = 0  # counts clear(): a lookup begun before it neither serves nor fills

    def get(self, kind: str, token: str) -> User | None:
        """The cached user of a token, None when unknown or stale."""
        entry = self._entries.get((kind, token))
        if entry is None:
            return None
        if entry[1] <= time.monotonic():
            self._entries.pop((kind, token), None)
            return None
        return entry[0]

    def put(self, kind: str, token: str, user: User, expires_at: datetime) -> None:
        """Remember a token checked just now, until the earlier of the ttl and its expiry."""
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # crude but bounded; tokens in use come back in one lookup
        left = min(self.ttl_s, (expires_at - datetime.now(UTC)).total_seconds())
        if left > 0:
            self._entries[(kind, token)] = (user, time.monotonic() + left)

    async def look_up(self, kind: str, token: str, lookup: Callable[[], Holder | None]) -> Holder | None:
        """Run `lookup` in a thread and remember its answer; requests with the same token meanwhile
        share it. (When an entry expired under load, every request in flight with the token looked
        it up at once: a burst of lookups, each on a pooled connection, new ones opened cold.)"""
        key = (kind, token)
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._look_up(key, lookup, self._generation))
            self._pending[key] = pending
        return await asyncio.shield(pending)  # one request hanging up cancels nothing for the others

    async def _look_up(
        self, key: tuple[str, str], lookup: Callable[[], Holder | None], generation: int
    ) -> Holder | None:
        try:
            holder = await run_in_threadpool(lookup)
        finally:
            if generation == self._generation:  # else clear() has forgotten this lookup already
                del self._pending[key]
        if holder is not None and generation == self._generation:
            self.put(*key, *holder)
        return holder

    def clear(self) -> None:
        """Forget every token (a logout or refresh in this process), and the lookups under way."""
        self._entries.clear()
        self._pending = {}
        self._generation += 1


async def resolve_user(request: Request) -> User | None:
    """The signed-in user, None without credentials (or a stale cookie on a read); 401 for a bad,
    expired or revoked token."""
    found = _token(request)
    if found is None:
        return None
    token, kind = found
    if kind == "api_key" and request.method not in READ_METHODS:
        raise AccessDenied("an API key only reads (GET); sign in to change anything")
    cache: TokenCache | None = getattr(request.app.state, "token_cache", None)
    user = cache.get(kind, token) if cache is not None else None
    if user is not None:
        return user
    secret = request.app.state.secret

    def lookup() -> Holder | None:
        # A read may check its token on a fresh standby (and so goes on while no primary answers);
        # a token the standby does not know yet (just issued) is looked up on the primary.
        standby = getattr(request.app.state, "standby_sessions", None)
        if standby is not None and request.method in ("GET", "HEAD"):
            with standby() as session:
                holder = users.token_holder(session, token, secret, kind, datetime.now(UTC))
            if holder is not None:
                return holder
        with request.app.state.read_sessions() as session:
            if kind == "api_key":
                return api_keys.key_holder(session, token, secret, datetime.now(UTC))
            return users.token_holder(session, token, secret, kind, datetime.now(UTC))

    holder = await (cache.look_up(kind, token, lookup) if cache is not None else run_in_threadpool(lookup))
    if holder is None and kind == "session" and request.method in ("GET", "HEAD"):
        # A stale page cookie on a read: anonymous, so pages send the browser to /login again. A
        # write keeps its 401, so that a report is not filed anonymously (the page keeps it).
        return None
    if holder is None:
        raise HTTPException(
            401, "the token is unknown, expired or revoked; log in again", {"WWW-Authenticate": "Bearer"}
        )
    return holder[0]


def forget_tokens(request: Request) -> None:
    """Tokens were revoked in this process: stop honouring cached ones at once."""
    cache: TokenCache | None = getattr(request.app.state, "token_cache", None)
    if cache is not None:
        cache.clear()


async def authorize(request: Request, user: Annotated[User | None, Depends(resolve_user)]) -> None:
    """The permission check of every route (see RULES)."""
    route = request.scope.get("route")
    rule = RULES.get((request.method, getattr(route, "path_format", "")))
    if rule is None:
        raise HTTPException(403, f"no access rule for {request.method} {getattr(route, 'path_format', '?')}")
    request.state.user = user
    if rule.permission is None or (user is None and _public_now(request, rule)):
        return
    if user is None:
        if rule.page:
            raise LoginRequired(
                str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")
            )
        raise HTTPException(401, "sign in first: POST /auth/token", {"WWW-Authenticate": "Bearer"})
    if not user.can(rule.permission):
        raise AccessDenied(f"a {user.role} may not do this ({rule.permission} needed)")
    if isinstance(rule.scope, UnitIn):
        for code in await _named_units(request, rule.scope):
            check_unit(user, code, rule.scope.name)
    elif rule.scope:
        await run_in_threadpool(_check_scope, request, user, rule.scope)


def _public_now(request: Request, rule: Rule) -> bool:
    """Whether the rule's setting makes the route public at the moment."""
    return rule.public_if is not None and bool(getattr(request.app.state.settings, rule.public_if))


async def _named_units(request: Request, scope: UnitIn) -> list[str]:
    """The values the request gives the scope's parameter (every one of a repeated query parameter)."""
    if scope.place == "path":
        value = request.path_params.get(scope.name)
        return [value] if isinstance(value, str) else []
    if scope.place == "query":
        return request.query_params.getlist(scope.name)
    try:
        body = await request.json()  # cached on the request: the route's model reads the same
    except ValueError:
        return []  # not JSON: the route's validation answers
    value = body.get(scope.name) if isinstance(body, dict) else None
    return [value] if isinstance(value, str) else []  # anything else the route's model refuses


def check_unit(user: User, code: str, name: str) -> None:
    """AccessDenied for a unit outside the user's jurisdiction; a malformed code outside it is
    refused as invalid (422), as the route would, rather than read as a prefix of other units."""
    if user.covers(code):
        return
    try:
        level_of(code)
    except CodeError as exc:
        raise Invalid(f"{name}: {exc}") from None
    raise AccessDenied(f"unit {code} is outside your unit {user.unit_code}")


def _check_scope(request: Request, user: User, scope: str) -> None:
    params = request.path_params
    with request.app.state.read_sessions() as session:
        if scope == "case":
            case_id = params.get("case_id") or params.get("service_request_id")
            check_case(session, user, case_id)
        elif scope == "plan":
            check_plan(session, user, params.get("plan_id"))
        elif scope == "report":
            check_report(session, user, params.get("report_id"))


def check_case(session: Session, user: User, case_id: object) -> None:
    """CaseNotFound unless the case exists and lies in the user's jurisdiction.

    Missing and out-of-jurisdiction cases get the same answer (404, "no case N"): a 403 would tell
    anyone signed in which ids exist, and a move's or photo's own errors what state they are in.
    """
    try:
        case_id = int(str(case_id))
    except ValueError:
        return  # the route's own validation answers
    row = session.execute(
        text("SELECT unit_code, grid_code, department FROM cases WHERE id = :id"), {"id": case_id}
    ).first()
    if row is None or not user.may_see_case(row.unit_code, row.grid_code, row.department):
        raise CaseNotFound(f"no case {case_id}")


DUPLICATE_SCOPE = ("unit_code", "grid_code", "department")  # what decides who sees a duplicate


def visible_duplicates(detail: dict[str, Any], user: User | None) -> dict[str, Any]:
    """A case's detail with only the suggested duplicates the user may see (none for anonymous
    callers): the others' ids and states are as hidden as the cases themselves."""
    seen = [
        {k: v for k, v in d.items() if k not in DUPLICATE_SCOPE}
        for d in detail.get("duplicates") or []
        if user is not None and user.may_see_case(*(d.get(k) for k in DUPLICATE_SCOPE))
    ]
    return {**detail, "duplicates": seen}


def check_move(session: Session, user: User | None, move: Move, departments: Collection[str]) -> None:
    """The move's own check, after the case's: the role may make it, and all it names (a unit, a
    department, the case merged into) lies inside the user's rights."""
    if user is None or not user.may_move(move.to):
        raise AccessDenied(f"a {user.role if user else 'visitor'} may not move a case to {move.to}")
    if move.unit and not user.may_hand_to(move.unit, departments):
        where = "a department is summoned by a street/town or the county" if move.unit in departments else ""
        raise AccessDenied(where or f"unit {move.unit} is outside your unit {user.unit_code}")
    if move.into is not None:
        check_case(session, user, move.into)  # an invisible case is as absent as a missing one


def check_plan(session: Session, user: User, plan_id: object) -> None:
    """AccessDenied unless the plan's unit lies in the user's unit."""
    try:
        plan_id = int(str(plan_id))
    except ValueError:
        return
    unit = session.execute(text("SELECT unit_code FROM plans WHERE id = :id"), {"id": plan_id}).scalar()
    if unit is not None and not user.covers(unit):
        raise AccessDenied(f"plan {plan_id} is on unit {unit}, outside your unit {user.unit_code}")


def check_report(session: Session, user: User, report_id: object) -> None:
    """AccessDenied unless the coverage report's unit lies in the user's unit (missing: the route's 404)."""
    try:
        unit = coverage.report_unit(session, int(str(report_id)))
    except ValueError:
        return
    if unit is not None and not user.covers(unit):
        raise AccessDenied(f"unit {unit} is outside your unit {user.unit_code}")


def user_of(request: Request) -> User | None:
    """The user `authorize` identified for this request (None on public routes without a token)."""
    return getattr(request.state, "user", None)


async def current_user(request: Request) -> User | None:
    """user_of as a dependency: `async`, so FastAPI calls it without a thread hand-off."""
    return user_of(request)


CurrentUser = Annotated[User | None, Depends(current_user)]


def client_address(request: Request) -> str:
    """The client's address: the TCP peer, or what a trusted proxy says (GRIDMAP_TRUSTED_PROXIES,
    applied to the request by api.app before anything reads it). The one answer for audit and limits."""
    return request.client.host if request.client else "?"


PRUNE_EVERY_S = 60.0  # how often a process deletes counters nobody needs any more
REFUSE_LOCALLY_S = 2  # a refused address is refused this long without asking the database
MAX_REFUSED = 10_000


class RateLimit:
    """At most `limit` requests per `window_s` per client address, counted in PostgreSQL so that
    every server process enforces one limit (store.throttles). `check` does I/O: call it from a
    thread (sync routes run in one)."""

    def __init__(self, name: str, limit: int, window_s: int) -> None:
        self.name, self.limit, self.window_s = name, limit, window_s
        self._pruned = 0.0
        # Addresses refused lately, until when: a flood from them is refused without a query.
        self._refused: dict[str, float] = {}

    def check(self, request: Request) -> None:
        """429 when the client has used up its allowance."""
        state = request.app.state
        key = f"{self.name}:{client_address(request)}"
        now = time.monotonic()
        until = self._refused.get(key)
        if until is not None and until > now:
            self._refuse(int(until - now) + 1)
        with state.counters.connect() as connection:
            verdict = throttles.hit(connection, key, self.limit, self.window_s)
            if now - self._pruned > PRUNE_EVERY_S:
                self._pruned = now
                self._refused = {k: t for k, t in self._refused.items() if t > now}
                throttles.prune(connection, login_policy(state.settings))
        if not verdict.allowed:
            if len(self._refused) < MAX_REFUSED:
                # Not the full wait: the sliding window may let the client in sooner.
                self._refused[key] = now + min(verdict.retry_after_s, REFUSE_LOCALLY_S)
            self._refuse(verdict.retry_after_s)

    @staticmethod
    def _refuse(retry: int) -> None:
        raise HTTPException(429, f"too many requests; try again in {retry} s", {"Retry-After": str(retry)})


def login_policy(settings: Settings) -> LoginPolicy:
    """The login delays the settings ask for."""
    return LoginPolicy(settings.login_free_failures, settings.login_delay_base_s, settings.login_delay_max_s)
