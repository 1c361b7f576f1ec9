"""Migration 0023_coverage_chain: a downgrade copies a refreshed report's kept findings back into it
(the old layout reads it as the chain did), and an upgrade makes every stored report its own root."""

from __future__ import annotations

from alembic import command
from shapely.geometry import box
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from geo.coverage import Tolerances
from services import coverage_refresh
from services.coverage import coverage_of
from services.imports import import_units
from store import coverage as store
from store.migrate import alembic_config
from tests import factories as f
from tests.conftest import COUNTY_FROM, DB_PREFIX, fresh_database

BEFORE = "0022_case_rollup_keys"


def _key(finding):
    area = None if finding.area_m2 is None else round(finding.area_m2, 2)
    return finding.kind.value, tuple(finding.units), area, sorted(finding.detail.items()), finding.new


def _own_rows(session, report_id):
    """The report's findings as the store before 0023 read them: its own rows."""
    rows = session.execute(
        text("SELECT kind, units, area_m2, detail, new FROM coverage_findings WHERE report_id = :id"),
        {"id": report_id},
    ).all()
    return sorted(
        (r.kind, tuple(r.units), None if r.area_m2 is None else round(r.area_m2, 2),
         sorted(r.detail.items()), r.new)
        for r in rows
    )  # fmt: skip


def test_downgrade_copies_kept_findings_back_and_upgrade_makes_every_report_a_root(settings, tmp_path):
    url = fresh_database(settings, f"{DB_PREFIX}_coverage_chain")
    engine = create_engine(url)
    tol = Tolerances.from_settings(settings)
    with Session(engine) as session, session.begin():
        # The street short of the county's east edge: a gap in the county's group and an overhang
        # in the street's, both replaced by a refresh of the street; the grids' people findings kept.
        features = f.hierarchy()
        features[1] = f.feature(f.STREET, box(f.X0, f.Y0, f.X0 + f.SIZE - 0.002, f.Y0 + f.SIZE))
        path = f.write_geojson(tmp_path / "county.geojson", features)
        import_units(session, path, valid_from=COUNTY_FROM, settings=settings)
        root = coverage_of(session, f.COUNTY, tol, save=True).report_id
        [refreshed] = coverage_refresh.refresh_after_changes(session, [f.STREET], tol)
    with Session(engine) as session:
        reads = {r: sorted(map(_key, store.report_findings(session, r))) for r in (root, refreshed.report_id)}
        assert {k[0] for k in reads[root]} == {"gap", "outside_parent", "no_staff", "no_party_cell"}
        assert refreshed.replaced == len(refreshed.findings) == 2 and len(reads[refreshed.report_id]) == 10
        assert len(_own_rows(session, refreshed.report_id)) == len(refreshed.findings)
    command.downgrade(alembic_config(url), BEFORE)
    with Session(engine) as session:
        for report_id, read in reads.items():
            assert _own_rows(session, report_id) == read
    command.upgrade(alembic_config(url), "head")
    with Session(engine) as session:
        roots = session.execute(text("SELECT id, base_report_id, grew_from FROM coverage_reports")).all()
        assert sorted(roots) == [(root, root, None), (refreshed.report_id, refreshed.report_id, None)]
        for report_id, read in reads.items():
            assert sorted(map(_key, store.report_findings(session, report_id))) == read
    engine.dispose()
