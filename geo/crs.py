"""Coordinate systems: the one place that knows how coordinates come in and where they are stored.

Everything is stored in CGCS2000 geographic coordinates (EPSG:4490, lon/lat). Phones send WGS84,
Amap/Tencent/WeChat send GCJ-02 and Baidu sends BD-09; PROJ knows neither of the last two, so
their published forward formulas live here with an iterative inverse accurate to well below a
millimetre. Metric work (areas, distances, buffers) uses the CGCS2000 3-degree Gauss-Krüger zone
of the place (EPSG:4534-4554).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from functools import lru_cache

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from errors import Invalid

STORAGE_SRID = 4490
STORAGE_CRS = f"EPSG:{STORAGE_SRID}"
# Decimals of storage lon/lat in GeoJSON answers: about 1 cm. More would be noise; fewer would
# move shared edges apart.
GEOJSON_DECIMALS = 7
# Two outlines whose vertices differ by less than GeoJSON's rounding are the same outline: what the
# service wrote and reads back (an export re-imported) is not a change.
GEOJSON_TOLERANCE = 10.0**-GEOJSON_DECIMALS

# A degree of longitude is at least this many metres up to 57°N (all of the service area), so a
# search box of d / METRES_PER_DEGREE_MIN degrees surely holds everything within d metres: an
# index-friendly prefilter before an exact distance on the spheroid.
METRES_PER_DEGREE_MIN = 60_000

# Metres per degree on the CGCS2000/WGS84 ellipsoid: a degree of latitude is at least this long
# (at the equator), a degree of longitude at least this times cos(latitude) (N >= a).
_METRES_PER_DEGREE_LAT_MIN = 110_574.0
_METRES_PER_DEGREE_LON_EQUATOR = 111_319.0


def degrees_spanning(metres: float, max_abs_lat: float) -> tuple[float, float]:
    """(dlon, dlat) such that points farther apart than that in lon or lat are > `metres` apart.

    Holds for short distances between points no farther from the equator than `max_abs_lat`.
    """
    cos_lat = math.cos(math.radians(min(abs(max_abs_lat), 89.0)))
    return metres / (_METRES_PER_DEGREE_LON_EQUATOR * cos_lat), metres / _METRES_PER_DEGREE_LAT_MIN


# Names a client may use for a coordinate system, besides any "EPSG:n".
WGS84 = "wgs84"
GCJ02 = "gcj02"
BD09 = "bd09"
CGCS2000 = "cgcs2000"
NAMED_SYSTEMS = (WGS84, GCJ02, BD09, CGCS2000)

# Where a point handled by this service can plausibly be: mainland China with a margin, in
# storage lon/lat. A point outside is a wrong CRS or swapped axes, not a real report.
CHINA_BOUNDS = (73.0, 3.0, 136.0, 54.0)

_GCJ_A = 6378245.0
_GCJ_EE = 0.00669342162296594323
_BD_X_PI = math.pi * 3000.0 / 180.0
_INVERSE_TOLERANCE_DEG = 1e-11  # about a micrometre
_INVERSE_MAX_STEPS = 30

Array = np.ndarray
PlanarMap = Callable[[Array, Array], tuple[Array, Array]]


class CoordinateError(Invalid):
    """Coordinates or a coordinate system that cannot be used; the message says why."""


def _gcj_dlat(x: Array, y: Array) -> Array:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return ret


def _gcj_dlon(x: Array, y: Array) -> Array:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return ret


def _outside_china(lon: Array, lat: Array) -> Array:
    # The published GCJ-02 algorithm leaves points outside this box unshifted.
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def wgs84_to_gcj02(lon: Array, lat: Array) -> tuple[Array, Array]:
    """Shift WGS84 lon/lat to GCJ-02 (the published forward formula)."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    dlat = _gcj_dlat(lon - 105.0, lat - 35.0)
    dlon = _gcj_dlon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * np.pi
    magic = 1 - _GCJ_EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_GCJ_A * (1 - _GCJ_EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_GCJ_A / sqrtmagic * np.cos(radlat) * np.pi)
    outside = _outside_china(lon, lat)
    return np.where(outside, lon, lon + dlon), np.where(outside, lat, lat + dlat)


def gcj02_to_bd09(lon: Array, lat: Array) -> tuple[Array, Array]:
    """Shift GCJ-02 lon/lat to Baidu's BD-09 (the published forward formula)."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _BD_X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _BD_X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def wgs84_to_bd09(lon: Array, lat: Array) -> tuple[Array, Array]:
    """Shift WGS84 lon/lat to BD-09."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def _invert(forward: PlanarMap, x: Array, y: Array) -> tuple[Array, Array]:
    """Invert a small, smooth shift by fixed-point iteration: w <- w - (forward(w) - target)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    wx, wy = x.copy(), y.copy()
    for _ in range(_INVERSE_MAX_STEPS):
        fx, fy = forward(wx, wy)
        ex, ey = fx - x, fy - y
        wx, wy = wx - ex, wy - ey
        if np.all(np.abs(ex) < _INVERSE_TOLERANCE_DEG) and np.all(np.abs(ey) < _INVERSE_TOLERANCE_DEG):
            break
    return wx, wy


def gcj02_to_wgs84(lon: Array, lat: Array) -> tuple[Array, Array]:
    """Convert GCJ-02 lon/lat back to WGS84, accurate to well under a millimetre."""
    return _invert(wgs84_to_gcj02, lon, lat)


def bd09_to_wgs84(lon: Array, lat: Array) -> tuple[Array, Array]:
    """Convert BD-09 lon/lat back to WGS84, accurate to well under a millimetre."""
    return _invert(wgs84_to_bd09, lon, lat)


def normalize_crs(name: str | int | None) -> str:
    """Return the canonical name of a coordinate system ('wgs84', 'gcj02', 'bd09' or 'EPSG:n').

    >>> normalize_crs("GCJ-02"), normalize_crs(4326), normalize_crs("epsg:4547")
    ('gcj02', 'wgs84', 'EPSG:4547')
    """
    if name is None or (isinstance(name, str) and not name.strip()):
        raise CoordinateError("no coordinate system given: say which, e.g. wgs84, gcj02, bd09 or EPSG:4547")
    text = str(name).strip().lower().replace("-", "").replace("_", "")
    aliases = {
        "wgs84": WGS84,
        "gps": WGS84,
        "4326": WGS84,
        "epsg:4326": WGS84,
        "crs84": WGS84,  # OGC's lon/lat WGS84, the GeoJSON default (urn:ogc:def:crs:OGC:1.3:CRS84)
        "ogc:crs84": WGS84,
        "urn:ogc:def:crs:ogc:1.3:crs84": WGS84,
        "urn:ogc:def:crs:epsg::4326": WGS84,
        "urn:ogc:def:crs:epsg::4490": CGCS2000,
        "gcj02": GCJ02,
        "gcj": GCJ02,
        "amap": GCJ02,
        "bd09": BD09,
        "bd09ll": BD09,
        "baidu": BD09,
        "cgcs2000": CGCS2000,
        "4490": CGCS2000,
        "epsg:4490": CGCS2000,
    }
    if text in aliases:
        return aliases[text]
    code = text.removeprefix("epsg:")
    if code.isdigit():
        _pyproj_crs(f"EPSG:{code}")  # raises a CoordinateError for an unknown code
        return f"EPSG:{code}"
    raise CoordinateError(
        f"unknown coordinate system {name!r}: use wgs84, gcj02, bd09, cgcs2000 or an EPSG code"
    )


@lru_cache(maxsize=64)
def _pyproj_crs(name: str) -> CRS:
    try:
        return CRS.from_user_input(name)
    except CRSError:
        # PROJ's own text (its internal error, its function names) would not help a client.
        raise CoordinateError(
            f"unknown coordinate system {name!r}: use wgs84, gcj02, bd09, cgcs2000 or an EPSG code "
            "PROJ knows (e.g. EPSG:4547, CGCS2000 / 3-degree Gauss-Kruger CM 114E)"
        ) from None


@lru_cache(maxsize=64)
def transformer(source: str, target: str) -> Transformer:
    """One cached pyproj Transformer per pair, always in x=lon/easting, y=lat/northing order."""
    return Transformer.from_crs(_pyproj_crs(source), _pyproj_crs(target), always_xy=True)


def epsg_of(name: str) -> str:
    """The EPSG code behind a canonical name (wgs84 -> EPSG:4326, cgcs2000 -> EPSG:4490)."""
    return {WGS84: "EPSG:4326", CGCS2000: STORAGE_CRS}.get(name, name)


# PROJ transforms WGS84 to CGCS2000 with a no-op (EPSG publishes no transformation between them;
# they agree to well under a metre), but finding that out searches PROJ's database for 0.15-0.4 s
# in every process: most of the fixed cost of a `gridmap assign` (issue 19). So it is known here;
# tests/geo/test_crs.py checks that PROJ still says so.
_SAME_AS_STORAGE = frozenset({STORAGE_CRS, "EPSG:4326"})


def to_storage(x: Array, y: Array, crs: str) -> tuple[Array, Array]:
    """Convert coordinates given in `crs` to storage lon/lat (EPSG:4490)."""
    crs = normalize_crs(crs)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if crs == GCJ02:
        x, y = gcj02_to_wgs84(x, y)
        crs = WGS84
    elif crs == BD09:
        x, y = bd09_to_wgs84(x, y)
        crs = WGS84
    if epsg_of(crs) in _SAME_AS_STORAGE:
        return x, y
    convert = transformer(epsg_of(crs), STORAGE_CRS)
    if convert.definition.startswith("proj=noop"):  # WGS84 -> CGCS2000: PROJ leaves every value as is
        return x, y
    return convert.transform(x, y)


def point_to_storage(lon: float, lat: float, crs: str) -> tuple[float, float]:
    """One point given in `crs` as storage lon/lat, refused as check_plausible refuses it.

    What to_storage and check_plausible do, on floats where it can (a report, a lookup): on one
    point numpy's per-call cost was most of the work (~55 µs, ~5 µs on floats).
    """
    name = normalize_crs(crs)
    if name in (GCJ02, BD09):  # the inverse shifts iterate on arrays
        xs, ys = to_storage([lon], [lat], name)
        x, y = float(xs[0]), float(ys[0])
    elif epsg_of(name) in _SAME_AS_STORAGE:
        x, y = float(lon), float(lat)
    else:
        x, y = transformer(epsg_of(name), STORAGE_CRS).transform(float(lon), float(lat))
    minx, miny, maxx, maxy = CHINA_BOUNDS
    if not (minx <= x <= maxx and miny <= y <= maxy):  # also NaN, which is inside nothing
        check_plausible([x], [y])  # says why
    return x, y


def from_storage(lon: Array, lat: Array, crs: str) -> tuple[Array, Array]:
    """Convert storage lon/lat (EPSG:4490) to coordinates in `crs`."""
    crs = normalize_crs(crs)
    if crs in (GCJ02, BD09):
        wx, wy = transformer(STORAGE_CRS, "EPSG:4326").transform(lon, lat)
        return wgs84_to_gcj02(wx, wy) if crs == GCJ02 else wgs84_to_bd09(wx, wy)
    if epsg_of(crs) == STORAGE_CRS:
        return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    return transformer(STORAGE_CRS, epsg_of(crs)).transform(lon, lat)


def geometry_to_storage(geometry: shapely.Geometry, crs: str) -> shapely.Geometry:
    """Return `geometry` (given in `crs`) in storage coordinates."""
    return shapely.transform(geometry, lambda xy: np.column_stack(to_storage(xy[:, 0], xy[:, 1], crs)))


def metric_crs_for(lon: float) -> str:
    """The CGCS2000 3-degree Gauss-Krüger zone (EPSG:4534-4554) whose central meridian is nearest."""
    zone = round((float(lon) - 75.0) / 3.0)
    if not 0 <= zone <= 20:
        raise CoordinateError(f"longitude {lon} is outside China's Gauss-Krüger zones (75°E-135°E)")
    return f"EPSG:{4534 + zone}"


def metric_crs_of(geometries: shapely.Geometry | Iterable[shapely.Geometry | None]) -> str:
    """The metric CRS of geometries in storage lon/lat: the zone at the centre of their extent."""
    if isinstance(geometries, shapely.Geometry):
        geometries = [geometries]
    array = np.array(list(geometries), dtype=object)
    array = array[~(shapely.is_missing(array) | shapely.is_empty(array))]
    if not len(array):
        return metric_crs_for(114.0)  # nothing to measure: any zone will do
    minx, _, maxx, _ = shapely.total_bounds(array)
    return metric_crs_for((minx + maxx) / 2)


def to_metric(geometry: shapely.Geometry, metric_crs: str) -> shapely.Geometry:
    """Project a storage geometry into a metric CRS (for areas, distances and buffers)."""
    t = transformer(STORAGE_CRS, metric_crs)
    return shapely.transform(geometry, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def check_plausible(lon: Array, lat: Array, bounds: tuple[float, float, float, float] = CHINA_BOUNDS) -> None:
    """Raise CoordinateError unless every storage lon/lat is finite and inside `bounds`."""
    lon, lat = np.atleast_1d(np.asarray(lon, dtype=float)), np.atleast_1d(np.asarray(lat, dtype=float))
    if not (np.all(np.isfinite(lon)) and np.all(np.isfinite(lat))):
        raise CoordinateError("coordinates must be finite numbers (got NaN or infinity)")
    minx, miny, maxx, maxy = bounds
    bad = (lon < minx) | (lon > maxx) | (lat < miny) | (lat > maxy)
    if not np.any(bad):
        return
    i = int(np.argmax(bad))
    x, y = float(lon[i]), float(lat[i])
    raise CoordinateError(
        f"coordinate ({x:.6f}, {y:.6f}) is outside the service area "
        f"(lon {minx}..{maxx}, lat {miny}..{maxy}){_hint(x, y, bounds)}"
    )


def _hint(x: float, y: float, bounds: tuple[float, float, float, float]) -> str:
    """What most likely went wrong with a lon/lat outside the service area."""
    minx, miny, maxx, maxy = bounds
    if minx <= y <= maxx and miny <= x <= maxy:
        return " - longitude and latitude look swapped"
    # Degrees never exceed 360; metres of any projected CRS in China are in the thousands at least.
    if abs(x) > 360 or abs(y) > 360:
        return " - these look like projected metres: declare the coordinate system (e.g. EPSG:4547)"
    if abs(y) > 90:
        swapped = " (or longitude and latitude are swapped)" if abs(x) <= 90 else ""
        return f" - latitude {y:g} is out of range: it must lie within -90..90{swapped}"
    if abs(x) > 180:
        return f" - longitude {x:g} is out of range: it must lie within -180..180"
    return " - a point elsewhere on Earth: check the coordinate system and the numbers"


def geojson_rounded(geometry: shapely.Geometry) -> shapely.Geometry:
    """The geometry as GeoJSON answers give it: RFC 7946 winding, lon/lat rounded to GEOJSON_DECIMALS."""
    # RFC 7946 §3.1.6: exteriors counter-clockwise, holes clockwise (geo.geojson writes with this).
    oriented = shapely.orient_polygons(geometry, exterior_cw=False)
    return shapely.transform(oriented, lambda xy: np.round(xy, GEOJSON_DECIMALS))
