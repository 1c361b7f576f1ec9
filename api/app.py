"""The FastAPI application, assembled by a factory (nothing is built at import time)."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date

from fastapi import Depends, FastAPI
from sqlalchemy import Engine
from starlette.middleware.gzip import GZipMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api import errors, live, reports
from api.access import TokenCache, authorize
from api.coverage_job import refresh_coverage_periodically
from api.intake import IntakeWriter
from api.live_feed import StreamSlots
from api.methods import AllowedMethods
from api.middleware import BodyLimit, RefuseNul, ResponseHeaders, security_headers, server_timing
from api.pages import desk, keys
from api.read_your_writes import PrimaryPosition, ReadYourWrites, RecentWriters
from api.replay_when_lost import ReplayWhenLost
from api.routes import (
    api_keys,
    auth,
    boundaries,
    cases,
    coverage,
    dashboard,
    docs,
    grids,
    health,
    locate,
    maps,
    open311,
    open311_discovery,
    plan_editor,
    plans,
    queue,
    report,
    tilejson,
)
from api.routes import patrols as patrol_routes
from api.routes import tasks as task_pages
from cases.rules import Rules
from geo.settings import Settings, get_settings, service_secret
from services import patrols as patrol_service
from services.case_partitions import ensure_partitions
from services.escalation import escalate_overdue
from store import notifications, receipts, standby_reads
from store.engine import engine_for, resolve_database_url, session_factory
from store.locate_cache import LocateCache
from store.wal_positions import primary_lsn

log = logging.getLogger("gridmap.api")

# How long a served app honours a checked token without a lookup: the bound on how late a
# revocation made in another process (or a disabled user) takes effect.
TOKEN_CACHE_S = 5.0
EXPIRY_INTERVAL_S = 3600.0  # patrol tracks and idempotency receipts past retention go within the hour


def spare_the_collector() -> None:
    """Keep the garbage collector from walking what the process holds by now (the grids' snapshot
    in memory, just built, among it) again.

    The snapshot lives until the grids change. A full collection of a served process walked its
    ~200,000 objects for ~120 ms, every few seconds under load (the requests in flight outlive the
    young generations): a pause in every answer due meanwhile. Frozen objects are still freed by
    reference counting when the next snapshot replaces this one.
    """
    gc.unfreeze()  # what was frozen with the last snapshot is looked at again: its cycles are freed
    gc.collect()
    gc.freeze()


PARTITIONS_INTERVAL_S = 24 * 3600  # the cases table's partitions are made months ahead, checked daily
SHUTDOWN_WAIT_S = 5  # how long the background tasks get to end when the service stops


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    locate_from_memory: bool | None = None,
    token_cache_s: float | None = None,
) -> FastAPI:
    """Build the app on `engine`, or on the configured (or embedded) database when started.

    `locate_from_memory` (default: when the app opens its own database) keeps an in-memory copy of
    the grids for /locate and intake; tests that hand in an engine get the SQL path.
    `token_cache_s` (default: TOKEN_CACHE_S when the app opens its own database, else 0 = off)
    is how long a checked token is honoured without looking it up again (api.access.TokenCache).
    """
    settings = settings or get_settings()
    secret = service_secret(settings)  # refuse to start without a real secret (outside demo mode)
    if locate_from_memory is None:
        locate_from_memory = engine is None
    if token_cache_s is None:
        token_cache_s = TOKEN_CACHE_S if engine is None else 0

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if getattr(app.state, "sessions", None) is None:
            url = resolve_database_url(settings)
            use(app, engine_for(url, service=True, wait_s=settings.database_wait_s))
        if locate_from_memory:
            app.state.locate_cache = LocateCache(
                app.state.engine,
                tolerance_m=settings.snap_tolerance_m,
                folder=settings.home / "locate",
                on_snapshot=spare_the_collector,
            )
        app.state.feed = live.make_feed(app.state.engine)
        app.state.feed.open_streams = lambda: app.state.stream_slots.open
        app.state.intake_writer = IntakeWriter(app.state)
        tasks = [
            # Case changes make the process read the log once for all its streams (the reader
            # also polls it, should this lose its connection).
            asyncio.create_task(notifications.listen(app.state.engine, live.CHANNEL, app.state.feed.notify)),
            asyncio.create_task(app.state.feed.run()),
            asyncio.create_task(app.state.intake_writer.run()),
        ]
        if settings.background_jobs:
            tasks.append(asyncio.create_task(escalate_periodically(app, settings.escalation_interval_s)))
            tasks.append(asyncio.create_task(expire_periodically(app, EXPIRY_INTERVAL_S)))
            tasks.append(asyncio.create_task(partitions_periodically(app, PARTITIONS_INTERVAL_S)))
            tasks.append(asyncio.create_task(refresh_coverage_periodically(app)))
        if app.state.locate_cache is not None:
            tasks.append(asyncio.create_task(app.state.locate_cache.run()))
        yield
        for task in tasks:
            task.cancel()
        # Bounded: a task caught in a driver call (a LISTEN connection unwinding) must not hold
        # the shutdown, and with it the process, for ever. What is left is abandoned with the loop.
        await asyncio.wait(tasks, timeout=SHUTDOWN_WAIT_S)

    app = FastAPI(
        title="gridmap",
        summary="Grid-based community governance (网格化治理): grids, assignment by location",
        version="0.1.0",
        lifespan=lifespan,
        dependencies=[Depends(authorize)],  # the one permission check, before every route
        docs_url=None,  # /docs and /redoc are served from vendored assets (api.routes.docs)
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.secret = secret
    app.state.rules = Rules.load(settings)
    app.state.sessions = None
    app.state.locate_cache = None
    app.state.intake_writer = None  # made with the event loop, at startup
    app.state.stream_slots = StreamSlots(settings.max_streams_per_user, settings.max_streams)
    app.state.token_cache = TokenCache(token_cache_s) if token_cache_s > 0 else None
    app.state.standby_sessions = None  # reads stay on the primary unless the settings say (use)
    if engine is not None:
        use(app, engine)
    errors.register(app)
    # Innermost: a safe request that lost its database connection runs again (a switchover).
    app.add_middleware(ReplayWhenLost, wait_s=settings.database_wait_s)
    if standby_reads.reads_on_standbys(settings):
        app.state.recent_writers = RecentWriters(settings.read_your_writes_s)
        position = PrimaryPosition(lambda: primary_lsn(app.state.counters))
        app.add_middleware(ReadYourWrites, writers=app.state.recent_writers, position=position)
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=6)  # tiles, GeoJSON, map assets
    app.add_middleware(ResponseHeaders, extra=security_headers)
    app.add_middleware(AllowedMethods)
    app.add_middleware(RefuseNul)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(ResponseHeaders, extra=server_timing)
    if settings.trusted_proxies:
        # Outermost: the client address and scheme are the proxy's word from here on, for every
        # reader (audit, rate limits, cookies). Only the configured proxies are believed; `gridmap
        # serve` turns uvicorn's own handling (which trusts 127.0.0.1 by default) off.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    # live before cases: /cases/stream must not be taken for /cases/{case_id}. Routes are tried
    # in order, so the busiest (case intake, /locate) come early: JSON reports first of all, on a
    # route that skips FastAPI's per-request work (reports.JsonReports).
    app.router.routes.append(reports.JsonReports())
    routers = (live, cases, locate, health, auth, grids, open311, open311_discovery, plans, coverage)
    routers = (*routers, boundaries, queue, api_keys, tilejson)
    for module in (*routers, patrol_routes):
        app.include_router(module.router)
    report.mount(app)  # the field worker page and its assets
    task_pages.mount(app)  # a handler's tasks on the phone
    maps.mount(app)  # the live map, its data under /map/... and its vendored assets
    plan_editor.mount(app)  # the planner's redraw editor and its assets
    desk.mount(app)  # the dispatcher's workbench and its assets
    app.include_router(keys.router)  # one's own API keys, in the workbench
    dashboard.mount(app)  # the command dashboard, its JSON under /stats/dashboard and its assets
    docs.mount(app)  # /docs and /redoc from vendored assets, the OpenAPI document with its sign-in
    return app


def use(app: FastAPI, engine: Engine) -> None:
    """Give the app its session factories: one for writes, one in autocommit for reads."""
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    app.state.read_sessions = session_factory(engine.execution_options(isolation_level="AUTOCOMMIT"))
    app.state.counters = engine.execution_options(isolation_level="AUTOCOMMIT")  # rate limits
    app.state.standby_sessions = standby_reads.standby_sessions(app.state.settings, engine)


async def escalate_periodically(app: FastAPI, interval_s: float) -> None:
    """Escalate overdue cases every `interval_s`; several processes may do it at once (SKIP LOCKED)."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            moved = await asyncio.to_thread(escalate_once, app)
            if moved:
                log.info("escalated %d overdue case(s)", moved)
        except Exception:  # keep the job alive through a database restart
            log.exception("escalation failed; trying again in %s s", interval_s)


async def expire_periodically(app: FastAPI, interval_s: float) -> None:
    """Delete patrol tracks (GRIDMAP_PATROL_RETENTION_DAYS) and idempotency receipts
    (GRIDMAP_RECEIPT_RETENTION_DAYS) past retention, now and every `interval_s`."""
    while True:
        for once, what in ((expire_patrols_once, "patrol track"), (expire_receipts_once, "receipt")):
            try:
                deleted = await asyncio.to_thread(once, app)
                if deleted:
                    log.info("deleted %d %s(s) past retention", deleted, what)
            except Exception:  # keep the job alive through a database restart
                log.exception("%s retention failed; trying again in %s s", what, interval_s)
        await asyncio.sleep(interval_s)


def expire_patrols_once(app: FastAPI) -> int:
    """One retention pass in a transaction of its own: how many tracks were deleted."""
    with app.state.sessions() as session:
        deleted = patrol_service.expire(session, app.state.settings.patrol_retention_days)
        session.commit()
        return deleted


def expire_receipts_once(app: FastAPI) -> int:
    """One retention pass over the idempotency receipts, in a transaction of its own: how many went."""
    with app.state.sessions() as session:
        deleted = receipts.delete_expired(session, app.state.settings.receipt_retention_days)
        session.commit()
        return deleted


async def partitions_periodically(app: FastAPI, interval_s: float) -> None:
    """Make the missing monthly partitions of cases ahead (cases.partitions), now and every `interval_s`."""
    while True:
        try:
            made = await asyncio.to_thread(partitions_once, app)
            if made:
                log.info("made case partitions for %s", ", ".join(str(m) for m in made))
        except Exception:  # keep the job alive through a database restart
            log.exception("making case partitions failed; trying again in %s s", interval_s)
        await asyncio.sleep(interval_s)


def partitions_once(app: FastAPI) -> list[date]:
    """One pass of ensure_partitions in a transaction of its own: the months made."""
    with app.state.sessions() as session:
        made = ensure_partitions(session)
        session.commit()
        return made


def escalate_once(app: FastAPI) -> int:
    """One escalation pass in a transaction of its own."""
    with app.state.sessions() as session:
        moved = escalate_overdue(session, app.state.rules)
        session.commit()
        return moved
