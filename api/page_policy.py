"""The pages' Content-Security-Policy and headers: one strict policy, each page naming only what it adds.

Every page runs under 'self' only: no CDN, no inline script, no eval. A page that needs more says
so by overriding one directive (the editor's Leaflet-Geoman sets style attributes; the dashboard's
ECharts draws legend icons as data: URLs; photos not yet sent are blob: thumbnails). The folium map
page (maps/page.py) builds its own policy: it allows its inline scripts by their hashes.
"""

from __future__ import annotations

from collections.abc import Mapping

STRICT: dict[str, str] = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self'",
    "font-src": "'self'",
    "connect-src": "'self'",
    "worker-src": "'self'",
    "manifest-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def content_security_policy(overrides: Mapping[str, str] | None = None) -> str:
    """The strict policy with a page's `overrides` (directive -> sources)."""
    policy = STRICT | dict(overrides or {})
    return "; ".join(f"{directive} {sources}" for directive, sources in policy.items())


def page_headers(overrides: Mapping[str, str] | None = None, cache: str = "no-cache") -> dict[str, str]:
    """A page's (and its assets') headers: its policy, its caching, no sniffing, no referrer.

    no-cache = revalidate on every use (ETag / Last-Modified): a new release is used at once;
    pages that carry personal data pass `no-store`.
    """
    return {
        "Cache-Control": cache,
        "Content-Security-Policy": content_security_policy(overrides),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


# The phone pages (report and tasks) and their shared assets: photos previewed from blob: URLs.
FIELD_PAGE_HEADERS = page_headers({"img-src": "'self' blob:"})
