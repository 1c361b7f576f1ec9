"""A folium map as a served page: its HTML and the Content-Security-Policy that fits it.

folium writes the map's code as inline <script> elements. Rather than allow every inline script
('unsafe-inline'), the policy lists the SHA-256 of exactly the ones this page holds, so an
injected script (a case description that got past escaping, say) would still not run.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from dataclasses import dataclass

import folium

ICON = "/static/map/icon.svg"
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


@dataclass(frozen=True)
class Page:
    """A rendered map page and the policy it runs under."""

    html: str
    content_security_policy: str


def script_hashes(html: str) -> list[str]:
    """CSP source expressions ('sha256-...') of every inline script in `html`."""
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in INLINE_SCRIPT.findall(html)
    ]


def content_security_policy(html: str, tile_origin: str | None = None) -> str:
    """Only the service itself, the page's own inline scripts and, if configured, the tile server."""
    images = "img-src 'self' data: blob:" + (f" {tile_origin}" if tile_origin else "")
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self' " + " ".join(script_hashes(html)),
            # folium and Leaflet write style elements and attributes; styles cannot run code.
            "style-src 'self' 'unsafe-inline'",
            images,
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def render_page(m: folium.Map, title: str, tile_origin: str | None = None) -> Page:
    """The complete HTML page of `m` (lang zh-CN, a title) with its policy."""
    text = m.get_root().render()
    text = text.replace("<html>", '<html lang="zh-CN">', 1)
    head = f'<title>{html.escape(title)}</title>\n    <link rel="icon" href="{ICON}" type="image/svg+xml">'
    text = text.replace("<head>", f"<head>\n    {head}", 1)
    return Page(html=text, content_security_policy=content_security_policy(text, tile_origin))
