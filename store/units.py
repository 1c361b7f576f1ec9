"""Reading and writing units and their versions.

Boundaries are never overwritten: a changed unit gets a new version valid from the change, and the
old one is closed. "Current" means valid_to IS NULL; "as of D" means valid_from <= D < valid_to.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Row, text
from sqlalchemy.orm import Session

from geo import crs
from geo.codes import REGION_LEVELS, ancestor_codes, parent_code, required_parent
from geo.validation import UnitFeature
from store.geometry import from_wkb, from_wkb_array, to_ewkb_hex_array


def valid_at_sql(alias: str, at_param: str | None) -> str:
    """SQL condition: version `alias` is current (no date) or valid at the bound date parameter."""
    if at_param is None:
        return f"{alias}.valid_to IS NULL"
    at = f":{at_param}"
    return f"({alias}.valid_from <= {at} AND ({alias}.valid_to IS NULL OR {alias}.valid_to > {at}))"


@dataclass(frozen=True)
class StoredUnit:
    """A unit's current (or dated) version as the domain sees it."""

    code: str
    level: str
    version: int
    name: str
    kind: str | None
    special_type: str | None
    geometry: shapely.Geometry


def _stored_units(session: Session, where: str, params: dict[str, Any]) -> dict[str, StoredUnit]:
    """The StoredUnits of the units `u` (joined to their versions `v`) where `where` holds, by code."""
    rows = session.execute(
        text(
            f"""SELECT v.code, u.level, v.version, v.name, v.kind, v.special_type, ST_AsBinary(v.geom) AS wkb
                FROM units u JOIN unit_versions v USING (code) WHERE {where}"""
        ),
        params,
    )
    return {
        r.code: StoredUnit(r.code, r.level, r.version, r.name, r.kind, r.special_type, from_wkb(r.wkb))
        for r in rows
    }


@dataclass
class WriteSummary:
    """What a write did: new units, new versions of changed units, units left as they were."""

    created: list[str]
    versioned: list[str]
    unchanged: list[str]


def units_at(session: Session, codes: Iterable[str], at: datetime | None = None) -> dict[str, StoredUnit]:
    """Current (or dated) versions of the given codes that exist."""
    codes = sorted(set(codes))
    if not codes:
        return {}
    where = f"""v.code = ANY(:codes) AND {valid_at_sql("v", "at" if at else None)}"""
    return _stored_units(session, where, {"codes": codes, "at": at})


def current_children(
    session: Session, parents: Iterable[str], *, except_codes: Iterable[str] = ()
) -> dict[str, StoredUnit]:
    """The current versions of the stored units directly below the given codes (less `except_codes`)."""
    parents = sorted(set(parents))
    if not parents:
        return {}
    where = f"""(u.parent_code = ANY(:parents)
                 OR (u.parent_code IS NULL AND u.level IN ('city', 'county')
                     AND left(u.code, length(u.code) - 2) = ANY(:parents)))
                AND u.code <> ALL(:except) AND {valid_at_sql("v", None)}"""
    return _stored_units(session, where, {"parents": parents, "except": sorted(set(except_codes))})


def _same_attributes(feature: UnitFeature, row: Row) -> bool:
    """True when a feature's attributes are a stored version's."""
    return (
        feature.name == row.name
        and feature.kind == row.kind
        and feature.special_type == row.special_type
        and feature.households == row.households
        and feature.population == row.population
        and dict(feature.attributes) == row.attributes
    )


def _unchanged(features: Sequence[UnitFeature], current: dict[str, Row]) -> set[str]:
    """Codes of the features that say nothing new about their stored version.

    Geometries are compared as whole arrays (normalized, equal within the GeoJSON tolerance):
    one shapely call per feature made a province's re-import minutes long (issue 19).
    """
    pairs = [(f, current[f.code]) for f in features if f.code in current]
    pairs = [(f, r) for f, r in pairs if _same_attributes(f, r)]
    if not pairs:
        return set()
    given = shapely.normalize(np.array([f.geometry for f, _ in pairs], dtype=object))
    stored = shapely.normalize(from_wkb_array([r.wkb for _, r in pairs]))
    same = shapely.equals_exact(given, stored, tolerance=crs.GEOJSON_TOLERANCE)
    return {f.code for (f, _), s in zip(pairs, same.tolist(), strict=True) if s}


def write_units(
    session: Session,
    features: Sequence[UnitFeature],
    *,
    valid_from: datetime,
    warnings: dict[str, list[str]] | None = None,
) -> WriteSummary:
    """Store features parents-first: new units, new versions where something changed, else nothing."""
    warnings = warnings or {}
    ordered = sorted(features, key=lambda f: (len(f.code), f.code))
    current = {
        r.code: r
        for r in session.execute(
            text(
                """SELECT id, code, version, name, kind, special_type, households, population,
                          attributes, valid_from, ST_AsBinary(geom) AS wkb
                   FROM unit_versions WHERE valid_to IS NULL AND code = ANY(:codes)"""
            ),
            {"codes": [f.code for f in ordered]},
        )
    }
    summary = WriteSummary([], [], [])
    new_units, to_close, new_versions = [], [], []
    unchanged = _unchanged(ordered, current)
    for feature in ordered:
        row = current.get(feature.code)
        if feature.code in unchanged:
            summary.unchanged.append(feature.code)
            continue
        if row is None:
            summary.created.append(feature.code)
            new_units.append(feature)
            version = 1
        else:
            if valid_from <= row.valid_from:
                raise ValueError(
                    f"unit {feature.code}: the new version must start after the current one "
                    f"(valid from {row.valid_from:%Y-%m-%d %H:%M}), not at {valid_from:%Y-%m-%d %H:%M}"
                )
            summary.versioned.append(feature.code)
            to_close.append(row.id)
            version = row.version + 1
        new_versions.append(_version_params(feature, version, valid_from, warnings.get(feature.code, [])))
    # One WKB conversion for the whole batch: one call per feature cost a fifth of writing it.
    wkbs = to_ewkb_hex_array([v.pop("geometry") for v in new_versions])
    for params, wkb in zip(new_versions, wkbs, strict=True):
        params["wkb"] = wkb

    _insert_units(session, new_units)
    if to_close:
        session.execute(
            text("UPDATE unit_versions SET valid_to = :at WHERE id = ANY(:ids)"),
            {"at": valid_from, "ids": to_close},
        )
    _insert_versions(session, new_versions, valid_from)
    return summary


# Rows go in by COPY (text format; the geometry as hex EWKB): one statement per row cost 0.3-1 ms
# each, and arrays of parameters spent as long again in psycopg building the arrays' text.
_VERSION_COLUMNS = (
    "code", "version", "name", "kind", "special_type", "households", "population", "attributes",
    "warnings", "wkb",
)  # fmt: skip
_COPY_VERSIONS = """COPY unit_versions (code, version, name, kind, special_type, households, population,
                                        attributes, warnings, geom, valid_from) FROM STDIN"""
_BATCH = 5000


def _insert_versions(session: Session, rows: Sequence[dict], valid_from: datetime) -> None:
    if not rows:
        return
    cursor = session.connection().connection.cursor()
    with cursor.copy(_COPY_VERSIONS) as copy:
        for row in rows:
            copy.write_row((*(row[c] for c in _VERSION_COLUMNS), valid_from))


def _insert_units(session: Session, features: Sequence[UnitFeature]) -> None:
    if not features:
        return
    # A city or county names its region as parent only when the region is stored (or comes in
    # this batch, parents first): regions above the county are optional.
    optional = {p for f in features if required_parent(f.code) is None and (p := parent_code(f.code))}
    present = set(
        session.execute(text("SELECT code FROM units WHERE code = ANY(:codes)"), {"codes": sorted(optional)})
        .scalars()
    ) | {f.code for f in features}
    for start in range(0, len(features), _BATCH):
        batch = features[start : start + _BATCH]
        session.execute(
            text(
                """INSERT INTO units (code, level, parent_code)
                   SELECT * FROM unnest(CAST(:codes AS text[]), CAST(:levels AS text[]),
                                        CAST(:parents AS text[]))
                   ON CONFLICT (code) DO NOTHING"""
            ),
            {
                "codes": [f.code for f in batch],
                "levels": [str(f.level) for f in batch],
                "parents": [_stored_parent(f.code, present) for f in batch],
            },
        )
    regions = [f.code for f in features if f.level in REGION_LEVELS]
    if regions:
        adopt_orphans(session, regions)


def _stored_parent(code: str, present: set[str]) -> str | None:
    required = required_parent(code)
    if required is not None:
        return required
    parent = parent_code(code)
    return parent if parent in present else None


def adopt_orphans(session: Session, regions: Sequence[str]) -> int:
    """Give the stored cities and counties without a parent their new province or city; returns how many."""
    return session.execute(
        text(
            """UPDATE units c SET parent_code = p.code
               FROM units p
               WHERE p.code = ANY(:regions) AND c.parent_code IS NULL
                 AND c.level = CASE p.level WHEN 'province' THEN 'city' ELSE 'county' END
                 AND left(c.code, length(p.code)) = p.code"""
        ),
        {"regions": list(regions)},
    ).rowcount


def _version_params(feature: UnitFeature, version: int, valid_from: datetime, warnings: list[str]) -> dict:
    return {
        "code": feature.code,
        "version": version,
        "name": feature.name,
        "kind": feature.kind,
        "special_type": feature.special_type,
        "households": feature.households,
        "population": feature.population,
        "attributes": json.dumps(dict(feature.attributes), ensure_ascii=False),
        "warnings": json.dumps(warnings, ensure_ascii=False),
        "geometry": feature.geometry,  # as WKB by write_units, all at once
        "valid_from": valid_from,
    }


@dataclass(frozen=True)
class UnitVersion:
    """One version of a unit with everything a map or a download shows of it."""

    code: str
    level: str
    version: int
    name: str
    kind: str | None
    special_type: str | None
    households: int | None
    population: int | None
    attributes: dict[str, Any]
    warnings: list[str]
    valid_from: datetime
    valid_to: datetime | None
    geometry: shapely.Geometry


@dataclass(frozen=True)
class UnitDetail:
    """A unit's version with its parents (outermost first), children count, staff and party cells."""

    unit: UnitVersion
    parents: list[dict[str, str]]
    children_count: int
    staff_counts: dict[str, int]
    party_cell_counts: dict[str, int]


VERSION_COLUMNS = """v.code, u.level, v.version, v.name, v.kind, v.special_type, v.households,
    v.population, v.attributes, v.warnings, v.valid_from, v.valid_to, ST_AsBinary(v.geom) AS wkb"""


def _version(row: Row, geometry: shapely.Geometry) -> UnitVersion:
    return UnitVersion(
        row.code, row.level, row.version, row.name, row.kind, row.special_type, row.households,
        row.population, row.attributes or {}, row.warnings or [], row.valid_from, row.valid_to, geometry,
    )  # fmt: skip


def unit_detail(session: Session, code: str, at: datetime | None = None) -> UnitDetail | None:
    """A unit's current (or dated) version with its parents, children count, staff and party-cell counts."""
    row = session.execute(
        text(
            f"""SELECT {VERSION_COLUMNS} FROM unit_versions v JOIN units u USING (code)
                WHERE v.code = :code AND {valid_at_sql("v", "at" if at else None)}"""
        ),
        {"code": code, "at": at},
    ).one_or_none()
    if row is None:
        return None
    parents = units_at(session, ancestor_codes(code), at)
    children = session.execute(
        text(
            f"""SELECT count(*) FROM units c JOIN unit_versions v ON v.code = c.code
                WHERE c.parent_code = :code AND {valid_at_sql("v", "at" if at else None)}"""
        ),
        {"code": code, "at": at},
    ).scalar_one()
    staff = dict(
        session.execute(
            text("SELECT role, count(*) FROM staff WHERE unit_code = :code GROUP BY role"), {"code": code}
        ).all()
    )
    party = dict(
        session.execute(
            text("SELECT kind, count(*) FROM party_cells WHERE unit_code = :code GROUP BY kind"),
            {"code": code},
        ).all()
    )
    return UnitDetail(
        unit=_version(row, from_wkb(row.wkb)),
        parents=[
            {"code": p.code, "name": p.name, "level": p.level}
            for c in ancestor_codes(code)
            if (p := parents.get(c))
        ],
        children_count=children,
        staff_counts=staff,
        party_cell_counts=party,
    )


def unit_versions(
    session: Session,
    *,
    level: str | None = None,
    kind: str | None = None,
    parent: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    at: datetime | None = None,
    limit: int | None = None,
) -> list[UnitVersion]:
    """The current (or dated) versions of the units matching the filters, by code."""
    where = [valid_at_sql("v", "at" if at else None)]
    params: dict[str, Any] = {"at": at}
    if level:
        where.append("u.level = :level")
        params["level"] = level
    if kind:
        where.append("v.kind = :kind")
        params["kind"] = kind
    if parent:
        # Every unit below `parent`, not only its children: codes are prefixes.
        where.append("v.code LIKE :prefix AND v.code <> :parent")
        params.update(prefix=parent + "%", parent=parent)
    if bbox:
        where.append(f"v.geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, {crs.STORAGE_SRID})")
        params.update(dict(zip(("minx", "miny", "maxx", "maxy"), bbox, strict=True)))
    limit_sql = ""
    if limit is not None:
        limit_sql = "LIMIT :limit"
        params["limit"] = limit
    rows = session.execute(
        text(
            f"""SELECT {VERSION_COLUMNS} FROM unit_versions v JOIN units u USING (code)
                WHERE {" AND ".join(where)} ORDER BY v.code {limit_sql}"""
        ),
        params,
    ).all()
    if not rows:
        return []
    geometries = from_wkb_array([r.wkb for r in rows])
    return [_version(r, g) for r, g in zip(rows, geometries, strict=True)]


def versions_of(session: Session, code: str) -> list[dict[str, Any]]:
    """Every version of a unit, oldest first (without geometry)."""
    rows = session.execute(
        text(
            """SELECT version, name, kind, valid_from, valid_to, ST_Area(geom::geography) AS area_m2
               FROM unit_versions WHERE code = :code ORDER BY version"""
        ),
        {"code": code},
    )
    return [dict(r._mapping) for r in rows]


def retire_units(session: Session, codes: Iterable[str], *, at: datetime) -> list[str]:
    """Close the current versions of `codes` at `at` (no new version follows); returns the codes closed."""
    codes = sorted(set(codes))
    if not codes:
        return []
    rows = session.execute(
        text(
            """UPDATE unit_versions SET valid_to = :at
               WHERE code = ANY(:codes) AND valid_to IS NULL RETURNING code"""
        ),
        {"at": at, "codes": codes},
    )
    return sorted(r.code for r in rows)
