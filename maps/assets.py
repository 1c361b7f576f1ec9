"""The JavaScript and CSS the map page loads, all served by the service from `/static/map/`.

folium's templates name CDN URLs (jsdelivr, cdnjs, unpkg, code.jquery.com); an isolated
government network reaches none of them. Every element we add gets its `default_js` and
`default_css` replaced here, per instance, so nothing global in folium changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from branca.element import Element

STATIC = "/static/map"

LEAFLET_JS = ("leaflet", f"{STATIC}/leaflet-1.9.4/leaflet.js")
LEAFLET_CSS = ("leaflet_css", f"{STATIC}/leaflet-1.9.4/leaflet.css")
GRIDMAP_JS = ("gridmap", f"{STATIC}/gridmap.js")
CRS_JS = ("gridmap_crs", f"{STATIC}/crs.js")  # the GCJ-02 CRS, before gridmap.js
SEARCH_JS = ("gridmap_search", f"{STATIC}/search.js")  # the search box and its outline
CASELIST_JS = ("gridmap_caselist", f"{STATIC}/caselist.js")  # the open-case list
CASECLUSTERS_JS = ("gridmap_caseclusters", f"{STATIC}/caseclusters.js")  # cases by view, clusters far out
GRIDMAP_CSS = ("gridmap_css", f"{STATIC}/gridmap.css")
BOUNDARIES_JS = ("gridmap_boundaries", f"{STATIC}/boundaries.js")  # open maps follow published boundaries
VECTORGRID_JS = ("vectorGrid", f"{STATIC}/leaflet.vectorgrid-1.3.0/Leaflet.VectorGrid.bundled.min.js")
REALTIME_JS = ("Leaflet_Realtime_js", f"{STATIC}/leaflet-realtime-2.2.0/leaflet-realtime.min.js")
MARKERCLUSTER_JS = ("markerclusterjs", f"{STATIC}/leaflet.markercluster-1.5.3/leaflet.markercluster.js")
MARKERCLUSTER_CSS = [
    ("markerclustercss", f"{STATIC}/leaflet.markercluster-1.5.3/MarkerCluster.css"),
    ("markerclusterdefaultcss", f"{STATIC}/leaflet.markercluster-1.5.3/MarkerCluster.Default.css"),
]

# The map itself: Leaflet and our page code (which defines the GCJ-02 CRS the map may be built
# with, so it loads before the map's script). No jQuery, Bootstrap or Font Awesome: nothing uses them.
COVERAGE_JS = ("gridmap_coverage", f"{STATIC}/coverage.js")  # coverage findings for planners
PARTY_JS = ("gridmap_party", f"{STATIC}/party.js")  # party cells, clustered
LABELS_JS = ("gridmap_labels", f"{STATIC}/labels.js")  # unit names where they fit
PATROLS_JS = ("gridmap_patrols", f"{STATIC}/patrols.js")  # patrol tracks and grid patrol figures
LOCATE_JS = ("gridmap_locate", f"{STATIC}/locate.js")  # "my location" on phones
MAP_JS = [
    LEAFLET_JS,
    CRS_JS,
    GRIDMAP_JS,
    SEARCH_JS,
    CASELIST_JS,
    CASECLUSTERS_JS,
    BOUNDARIES_JS,
    COVERAGE_JS,
    PARTY_JS,
    LABELS_JS,
    PATROLS_JS,
    LOCATE_JS,
]
MAP_CSS = [LEAFLET_CSS, GRIDMAP_CSS]


def use_local_assets(
    element: Element, js: Iterable[tuple[str, str]], css: Iterable[tuple[str, str]] = ()
) -> None:
    """Point `element` at the service's own copies instead of folium's CDN URLs."""
    element.default_js = list(js)
    element.default_css = list(css)


def external_urls(html: str) -> list[str]:
    """Every http(s) URL in `src`/`href` attributes of `html` (a built page should have none)."""
    return re.findall(r"""(?:src|href)\s*=\s*["'](https?://[^"']+)""", html)
