"""Tables of the store, mapped with SQLAlchemy 2 and GeoAlchemy2.

The schema itself is created by the Alembic migrations in `migrations/`; these classes describe it
for queries. Every geometry column is in the storage SRID of `geo.crs` (EPSG:4490).
"""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import BigInteger, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from geo.crs import STORAGE_SRID


class Base(DeclarativeBase):
    """Declarative base of the store's tables."""


class Unit(Base):
    """The identity of a unit (county ... micro-grid): its code, level and parent. Never deleted."""

    __tablename__ = "units"

    code: Mapped[str] = mapped_column(String(18), primary_key=True)
    level: Mapped[str] = mapped_column(Text)
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("units.code"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class UnitVersion(Base):
    """One version of a unit's boundary and attributes, valid over [valid_from, valid_to)."""

    __tablename__ = "unit_versions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    code: Mapped[str] = mapped_column(ForeignKey("units.code"))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(Text)
    special_type: Mapped[str | None] = mapped_column(Text)
    households: Mapped[int | None] = mapped_column(Integer)
    population: Mapped[int | None] = mapped_column(Integer)
    attributes: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    warnings: Mapped[list] = mapped_column(JSONB, server_default="[]")
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=STORAGE_SRID, spatial_index=False))
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class UnitPart(Base):
    """A small piece (ST_Subdivide) of a unit version's polygon, kept by a trigger for fast lookups."""

    __tablename__ = "unit_parts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("unit_versions.id"))
    code: Mapped[str] = mapped_column(String(18))
    level: Mapped[str] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(Text)
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    geom = mapped_column(Geometry("POLYGON", srid=STORAGE_SRID, spatial_index=False))


class Staff(Base):
    """A person working for a unit: grid chief, full-time or part-time worker, volunteer, building head."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code"))
    role: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)  # personal data: never returned by default
    attributes: Mapped[dict] = mapped_column(JSONB, server_default="{}")


class PartyCell(Base):
    """A party-building cell of a unit: branch, group, member central household (a point), instructor."""

    __tablename__ = "party_cells"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code"))
    kind: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    members: Mapped[int | None] = mapped_column(Integer)
    phone: Mapped[str | None] = mapped_column(Text)  # personal data: never returned by default
    location = mapped_column(Geometry("POINT", srid=STORAGE_SRID, spatial_index=False), nullable=True)


class Plan(Base):
    """A draft redrawing of the units below `unit_code`; `base` = {code: version} when it was opened."""

    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code"))
    title: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="draft")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    published_by: Mapped[str | None] = mapped_column(Text)
    abandoned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    base: Mapped[dict] = mapped_column(JSONB, server_default="{}")


class PlanEdit(Base):
    """One edit of a draft (replace, split, merge, move, create, retire), replayed in `seq` order."""

    __tablename__ = "plan_edits"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    seq: Mapped[int] = mapped_column(Integer)
    operation: Mapped[str] = mapped_column(Text)
    params: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    geom = mapped_column(Geometry("GEOMETRY", srid=STORAGE_SRID, spatial_index=False), nullable=True)
    author: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PlanChange(Base):
    """What a published plan did to one unit: created, changed or retired (with the versions)."""

    __tablename__ = "plan_changes"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    code: Mapped[str] = mapped_column(ForeignKey("units.code"))
    change: Mapped[str] = mapped_column(Text)
    old_version: Mapped[int | None] = mapped_column(Integer)
    new_version: Mapped[int | None] = mapped_column(Integer)


class RetiredCode(Base):
    """A code that is never used again (a trigger refuses new versions of it)."""

    __tablename__ = "retired_codes"

    code: Mapped[str] = mapped_column(ForeignKey("units.code"), primary_key=True)
    retired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"))


class CoverageReport(Base):
    """One dated run of the coverage analysis of a unit's subtree (store.coverage)."""

    __tablename__ = "coverage_reports"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    as_of: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    tolerances: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    summary: Mapped[dict] = mapped_column(JSONB, server_default="{}")


class CoverageFinding(Base):
    """A finding of a report: kind, unit codes, geometry (area, case point or none), new since the last."""

    __tablename__ = "coverage_findings"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("coverage_reports.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(Text)
    units: Mapped[list[str]] = mapped_column(ARRAY(String(18)))
    area_m2: Mapped[float | None] = mapped_column(Float)
    new: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    geom = mapped_column(Geometry("GEOMETRY", srid=STORAGE_SRID, spatial_index=False), nullable=True)
