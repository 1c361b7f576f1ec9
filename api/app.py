"""The FastAPI application, assembled by a factory (nothing is built at import time)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors, live
from api.routes import cases, grids, health, locate, open311, report
from geo.db import cases as case_store
from geo.db.engine import engine_for, resolve_database_url, session_factory
from geo.db.locate_cache import LocateCache
from geo.settings import Settings, get_settings

log = logging.getLogger("gridmap.api")


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """Build the app on `engine`, or on the configured (or embedded) database when started."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if getattr(app.state, "sessions", None) is None:
            use(app, engine_for(resolve_database_url(settings), service=True))
            # The app's own database (not a caller's engine): /locate answers from a copy in memory.
            app.state.locate_cache = LocateCache(app.state.engine, tolerance_m=settings.snap_tolerance_m)
        app.state.wakeup = live.Wakeup()
        tasks = [asyncio.create_task(live.listen(app.state.engine, app.state.wakeup))]
        if settings.background_jobs:
            tasks.append(asyncio.create_task(escalate_periodically(app, settings.escalation_interval_s)))
        if app.state.locate_cache is not None:
            tasks.append(asyncio.create_task(app.state.locate_cache.run()))
        yield
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(
        title="gridmap",
        summary="Grid-based community governance (网格化治理): grids, assignment by location",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.rules = rules_for(settings)
    app.state.sessions = None
    app.state.locate_cache = None
    if engine is not None:
        use(app, engine)
    errors.register(app)
    app.add_middleware(ServerTiming)
    # live before cases: /cases/stream must not be taken for /cases/{case_id}
    for module in (health, grids, locate, live, cases, open311):
        app.include_router(module.router)
    report.mount(app)  # the field worker page and its assets
    return app


def use(app: FastAPI, engine: Engine) -> None:
    """Give the app its session factories: one for writes, one in autocommit for reads."""
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    app.state.read_sessions = session_factory(engine.execution_options(isolation_level="AUTOCOMMIT"))


def rules_for(settings: Settings) -> case_store.Rules:
    """What case handling consults, loaded once from the data files the settings name."""
    return case_store.Rules.load(settings)


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


def escalate_once(app: FastAPI) -> int:
    """One escalation pass in a transaction of its own."""
    with app.state.sessions() as session:
        moved = case_store.escalate_overdue(session, app.state.rules)
        session.commit()
        return moved


class ServerTiming:
    """Adds the standard Server-Timing header: time spent in the app until the response starts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time one request (plain ASGI: no per-request task as BaseHTTPMiddleware would add)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                took = f"app;dur={(time.perf_counter() - started) * 1000:.2f}".encode()
                message = {**message, "headers": [*message.get("headers", []), (b"server-timing", took)]}
            await send(message)

        await self.app(scope, receive, send_timed)
