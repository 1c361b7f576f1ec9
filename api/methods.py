"""Which methods a path takes, answered as HTTP says: OPTIONS lists them (204 with `Allow`), and a
405 names them all (the router names only those of the first route matching the path)."""

from __future__ import annotations

from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class AllowedMethods:
    """Answers OPTIONS for every path the app serves, and completes the `Allow` of a 405."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """OPTIONS: 204 with Allow (404 through the router when no route has the path); else pass."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Worked out only for OPTIONS and 405s: the routes are not walked for the requests that matter.
        if scope["method"] == "OPTIONS" and (allowed := allowed_methods(scope)):
            header = ", ".join(allowed).encode()
            await send({"type": "http.response.start", "status": 204, "headers": [(b"allow", header)]})
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                allowed = ", ".join(allowed_methods(scope)).encode()
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                message = {**message, "headers": [*headers, (b"allow", allowed)]}
            await send(message)

        await self.app(scope, receive, send_with_allow)


METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(scope: Scope) -> list[str]:
    """The methods some route takes on the request's path (HEAD with GET, and OPTIONS); [] if none."""
    methods: set[str] = set()
    for route in scope["app"].router.routes:
        if isinstance(route, Mount):  # static files: read-only
            if route.matches(scope)[0] is Match.FULL:
                methods |= {"GET"}
            continue
        # Asked method by method: the router's own matching, included routers and all.
        methods |= {m for m in METHODS if route.matches({**scope, "method": m})[0] is Match.FULL}
    if not methods:
        return []
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods | {"OPTIONS"})
