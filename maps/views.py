"""The live map as a folium map: one builder for the dispatcher, field worker and planner views.

No database here: the caller says what to show (a `MapView`, with URLs of the service's data
endpoints) and gets a `folium.Map`. The page draws the units from vector tiles, polls the open
cases, and fetches popups and overlays on demand; `/static/map/gridmap.js` does that part, the
map, layers, plugins and layer control are folium's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import folium
from branca.element import MacroElement
from folium.plugins import MarkerCluster, Realtime, VectorGridProtobuf
from folium.template import Template
from folium.utilities import JsCode

from cases.vocabulary import STATUS_LABELS
from geo.codes import LEVEL_NAMES, LEVELS
from maps import assets

CASE_POLL_MS = 3000  # the open-case layer asks for changes this often (a change shows within 5 s)


class ViewKind(StrEnum):
    """Who the map is for."""

    DISPATCHER = "dispatcher"
    FIELD = "field"
    PLANNER = "planner"


class TileCrs(StrEnum):
    """The coordinate system of a background tile source."""

    WGS84 = "wgs84"
    GCJ02 = "gcj02"


@dataclass(frozen=True)
class TileSource:
    """A background raster tile service (an intranet Tianditu, Amap, OSM ...)."""

    url: str
    attribution: str
    max_zoom: int = 18
    crs: TileCrs = TileCrs.WGS84
    subdomains: str = "abc"


@dataclass(frozen=True)
class MapView:
    """What one map page shows; every URL is one of the service's own (relative) endpoints."""

    kind: ViewKind
    title: str
    bounds: tuple[float, float, float, float]  # what the page opens on: minlon, minlat, maxlon, maxlat
    extent: tuple[float, float, float, float] | None = None  # where tiles have data (None: anywhere)
    tile_query: str = ""  # appended to every vector-tile URL: the view's filter (?unit=..., ?near=...)
    cases_url: str = "/map/cases"
    unit: str | None = None
    grid: str | None = None
    plan: str | None = None
    overlays: dict[str, str] = field(default_factory=dict)  # name -> URL of optional overlays
    report_url: str | None = None
    generation: int = 0  # the boundary generation when the page was made (store.boundary_generation)
    levels: tuple[str, ...] = tuple(LEVELS)  # the levels stored (a county deployment: no province, no city)


def tile_url(query: str) -> str:
    """The vector-tile URL template of the view (one 512 px tile, a layer per level)."""
    return f"/map/tiles/{{z}}/{{x}}/{{y}}.pbf{query}{'&' if query else '?'}size=512&g={{g}}"


def build_map(view: MapView, tiles: TileSource | None = None) -> folium.Map:
    """A folium map of `view`: unit levels from vector tiles, live open cases, the page's controls."""
    gcj02 = tiles is not None and tiles.crs == TileCrs.GCJ02
    minx, miny, maxx, maxy = view.bounds
    m = folium.Map(
        location=[(miny + maxy) / 2, (minx + maxx) / 2],
        zoom_start=10,
        tiles=None,
        # On a GCJ-02 background the map's CRS shifts every WGS84 overlay (see gridmap.js).
        crs="GCJ02" if gcj02 else "EPSG3857",
        control_scale=True,
        # Whole zooms: a fractional one draws tiles of the next zoom up, twice as many requests.
        zoom_snap=1,
    )
    m.options["maxZoom"] = tiles.max_zoom if tiles else 19
    assets.use_local_assets(m, assets.MAP_JS, assets.MAP_CSS)
    _FitBounds([[miny, minx], [maxy, maxx]]).add_to(m)
    if tiles is not None:
        layer = folium.TileLayer(
            tiles=tiles.url,
            attr=tiles.attribution,
            name="底图 Background",
            max_zoom=tiles.max_zoom,
            subdomains=tiles.subdomains,
        )
        assets.use_local_assets(layer, [])
        layer.add_to(m)
    units = _unit_layer(view).add_to(m)
    cluster = MarkerCluster(
        name="待办事件 Open cases",
        options={
            # From z15 only cases at the same spot cluster; a click fans them out (gridmap.js).
            "maxClusterRadius": JsCode("GridMap.clusterRadius"),
            "zoomToBoundsOnClick": False,
            "spiderfyOnMaxZoom": False,
            "showCoverageOnHover": False,
            "iconCreateFunction": JsCode("GridMap.clusterIcon"),
        },
    )
    assets.use_local_assets(cluster, [assets.MARKERCLUSTER_JS], assets.MARKERCLUSTER_CSS)
    cluster.add_to(m)
    cases = Realtime(
        # The page's source asks for the map's box and zoom, one request at a time (caseclusters.js);
        # it starts once the page code has the map (GridMap.start).
        JsCode("GridMap.caseSource"),
        start=False,
        interval=CASE_POLL_MS,
        get_feature_id=JsCode("GridMap.caseId"),
        update_feature=JsCode("GridMap.updateCase"),
        point_to_layer=JsCode("GridMap.caseMarker"),
        remove_missing=True,
        container=cluster,
    )
    cases.control = False  # the cluster it fills is the layer users toggle
    assets.use_local_assets(cases, [assets.REALTIME_JS])
    cases.add_to(m)
    # A field worker's phone has no room for an open layer list.
    layer_control = folium.LayerControl(collapsed=view.kind == ViewKind.FIELD, position="topright")
    assets.use_local_assets(layer_control, [])
    layer_control.add_to(m)
    _Start(m, units, cluster, cases, layer_control, _config(view, tiles)).add_to(m)
    return m


def _unit_layer(view: MapView) -> VectorGridProtobuf:
    extent = view.extent
    bounds = [[extent[1], extent[0]], [extent[3], extent[2]]] if extent else None
    layer = VectorGridProtobuf(
        tile_url(view.tile_query),
        name="行政区划与网格 Units",
        # Each level is toggled by the page (gridmap.js adds a switch per level to the layer control).
        options=f"GridMap.tileOptions({json.dumps(bounds)}, {int(view.generation)})",
    )
    assets.use_local_assets(layer, [assets.VECTORGRID_JS])
    return layer


def _config(view: MapView, tiles: TileSource | None) -> dict[str, Any]:
    return {
        "view": str(view.kind),
        "title": view.title,
        "unit": view.unit,
        "grid": view.grid,
        "plan": view.plan,
        "bounds": [[view.bounds[1], view.bounds[0]], [view.bounds[3], view.bounds[2]]],
        "crs": str(tiles.crs) if tiles else "wgs84",
        # Pairs, not an object: `tojson` sorts keys, and the layer control lists levels top down.
        "levels": [[str(level), LEVEL_NAMES[level]] for level in LEVELS if level in view.levels],
        "overlays": view.overlays,
        "reportUrl": view.report_url,
        "casesUrl": view.cases_url,
        # A grid's neighbourhood comes whole; other views ask by box and zoom (clusters far out).
        "casesByView": view.kind != ViewKind.FIELD,
        "tileQuery": view.tile_query,
        # The one vocabulary (cases/vocabulary.py): the page shows "已派遣 dispatched".
        "statusNames": {str(status): label for status, label in STATUS_LABELS.items()},
        # Patrol tracks: the API narrows them to what the user may see; the page hides the layer on 403.
        "patrolsUrl": "/patrols",
        "patrolCoverageUrl": "/patrols/coverage/",
    }


class _FitBounds(MacroElement):
    """Opens the map on the view at once: folium's FitBounds animates, and layers added meanwhile
    would first load the tiles of the starting zoom."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            {{ this._parent.get_name() }}.fitBounds({{ this.bounds|tojson }}, {animate: false});
        {% endmacro %}
        """
    )

    def __init__(self, bounds: list[list[float]]) -> None:
        super().__init__()
        self._name = "FitBounds"
        self.bounds = bounds


class _Start(MacroElement):
    """Hands folium's objects and the view's configuration to the page code, after everything exists."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            GridMap.start({
                map: {{ this.map.get_name() }},
                units: {{ this.units.get_name() }},
                cluster: {{ this.cluster.get_name() }},
                cases: {{ this.cases.get_name() }},
                layerControl: {{ this.layer_control.get_name() }},
                config: {{ this.config|tojson }}
            });
        {% endmacro %}
        """
    )

    def __init__(
        self,
        m: folium.Map,
        units: VectorGridProtobuf,
        cluster: MarkerCluster,
        cases: Realtime,
        layer_control: folium.LayerControl,
        config: dict[str, Any],
    ) -> None:
        super().__init__()
        self._name = "GridMapStart"
        self.map, self.units, self.cluster, self.cases = m, units, cluster, cases
        self.layer_control = layer_control
        self.config = config
