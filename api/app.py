"""The FastAPI application, assembled by a factory (nothing is built at import time)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors
from api.routes import grids, health, locate
from geo.db.engine import engine_for, resolve_database_url, session_factory
from geo.settings import Settings, get_settings


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """Build the app on `engine`, or on the configured (or embedded) database when started."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if getattr(app.state, "sessions", None) is None:
            use(app, engine_for(resolve_database_url(settings), service=True))
        yield

    app = FastAPI(
        title="gridmap",
        summary="Grid-based community governance (网格化治理): grids, assignment by location",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.sessions = None
    if engine is not None:
        use(app, engine)
    errors.register(app)
    app.add_middleware(ServerTiming)
    for module in (health, grids, locate):
        app.include_router(module.router)
    return app


def use(app: FastAPI, engine: Engine) -> None:
    """Give the app its session factories: one for writes, one in autocommit for reads."""
    app.state.sessions = session_factory(engine)
    app.state.read_sessions = session_factory(engine.execution_options(isolation_level="AUTOCOMMIT"))


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
