"""A page's static assets: one rule for how every page's files are served (the one place to change it).

Vendored libraries live in versioned folders (`leaflet-1.9.4/`, `htmx-2.0.11/`) and never change:
cached for a week. A page's own files are revalidated on every use (a release reaches phones at
once). Nothing is content-sniffed; a page may add its own headers (its CSP), and a service worker
may be allowed the page's scope, which lies outside the assets' folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

VERSIONED = re.compile(r"-\d+(\.\d+)+$")  # a vendored package's folder: name-x.y.z
IMMUTABLE = "public, max-age=604800, immutable"


class PageAssets(StaticFiles):
    """StaticFiles with the page's headers and the caching rule above."""

    def __init__(
        self, directory: Path, headers: Mapping[str, str] | None = None, worker_scope: str = ""
    ) -> None:
        super().__init__(directory=directory)
        self._root = Path(directory).resolve()
        self._headers = dict(headers or {})
        self._worker_scope = worker_scope

    def file_response(
        self, full_path: str | Path, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        """The file, with the page's headers, its caching and no sniffing."""
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(self._headers)
        top = Path(full_path).resolve().relative_to(self._root).parts[0]
        response.headers["Cache-Control"] = IMMUTABLE if VERSIONED.search(top) else "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        if self._worker_scope and Path(full_path).name == "sw.js":
            response.headers["Service-Worker-Allowed"] = self._worker_scope
        return response
