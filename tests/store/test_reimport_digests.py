"""Re-importing a file (issue 19 §2): what its digests say is unchanged is neither converted, checked
nor written; a changed feature is, with its children in the file; the report names it by its place."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from shapely.geometry import Polygon
from sqlalchemy import text

from benchmarks.province import SIZES, make_province, write_province
from geo.importer import ImportRejected
from services.imports import import_units
from store import units

WHEN = datetime(2024, 1, 1, tzinfo=UTC)
LATER = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def tiny_province():
    """The tiny synthetic province: 2 cities × 2 counties with special grids and micro-grids."""
    return make_province(SIZES["tiny"], seed=3)


def _import(session, settings, path, when=WHEN):
    lines: list[str] = []
    result = import_units(session, path, valid_from=when, settings=settings, progress=lines.append)
    return result, "\n".join(lines)


def _history(session) -> tuple:
    """Everything an import writes: units, versions and their lookup parts, the boundary generation."""
    return session.execute(
        text(
            """SELECT (SELECT count(*) FROM units), (SELECT count(*) FROM unit_versions),
                      (SELECT max(id) FROM unit_versions), (SELECT count(*) FROM unit_parts),
                      (SELECT n FROM unit_change_count), (SELECT count(*) FROM unit_import_digests)"""
        )
    ).one()


def test_an_unchanged_file_is_confirmed_by_its_digests_and_writes_nothing(
    session, settings, tmp_path, tiny_province
):
    path = write_province(tiny_province, tmp_path / "p.gpkg")
    first, said = _import(session, settings, path)
    assert len(first.summary.created) == len(tiny_province)
    assert "same digest" not in said
    before = _history(session)
    assert before[5] == len(tiny_province)  # a digest per version written
    again, said = _import(session, settings, path, LATER)
    assert again.summary.created == [] and again.summary.versioned == []
    assert len(again.summary.unchanged) == len(tiny_province)
    assert f"{len(tiny_province):,} unchanged since they were imported (same digest), 0 to check" in said
    assert "stored 0 new, 0 new versions" in said
    assert _history(session) == before


def test_a_one_feature_change_writes_that_feature_only(session, settings, tmp_path, tiny_province):
    _import(session, settings, write_province(tiny_province, tmp_path / "p.gpkg"))
    before = _history(session)
    changed = tiny_province.copy()
    grid = changed.index[(changed["code"].str.len() == 15) & (changed["kind"] == "urban")][0]
    code = changed.at[grid, "code"]
    assert not changed["code"].str.startswith(code).sum() > 1, "a grid without micro-grids"
    changed.at[grid, "name"] = "改名的网格 Renamed grid"
    result, said = _import(session, settings, write_province(changed, tmp_path / "p2.gpkg"), LATER)
    assert result.summary.versioned == [code] and result.summary.created == []
    assert len(result.summary.unchanged) == len(tiny_province) - 1
    assert f"{len(tiny_province) - 1:,} unchanged since they were imported (same digest), 1 to check" in said
    after = _history(session)
    assert after[1] == before[1] + 1  # one new version, the old one closed
    assert units.units_at(session, [code])[code].name == "改名的网格 Renamed grid"
    assert units.units_at(session, [code], at=WHEN)[code].version == 1
    # And the changed file is now the one its digests know.
    again, said = _import(session, settings, write_province(changed, tmp_path / "p3.gpkg"), LATER)
    assert again.summary.versioned == [] and "0 to check" in said


def test_a_changed_grid_brings_its_micro_grids_to_be_checked(session, settings, tmp_path, tiny_province):
    _import(session, settings, write_province(tiny_province, tmp_path / "p.gpkg"))
    micro = tiny_province[tiny_province["code"].str.len() == 18]
    grid = micro["code"].iloc[0][:15]
    changed = tiny_province.copy()
    changed.loc[changed["code"] == grid, "households"] = 4321
    result, said = _import(session, settings, write_province(changed, tmp_path / "p2.gpkg"), LATER)
    children = int((micro["code"].str[:15] == grid).sum())
    assert result.summary.versioned == [grid]
    assert f"{1 + children:,} to check" in said  # the grid and its micro-grids, none of them rewritten


def test_versions_without_a_digest_are_compared_then_given_one(session, settings, tmp_path, tiny_province):
    path = write_province(tiny_province, tmp_path / "p.gpkg")
    _import(session, settings, path)
    session.execute(text("DELETE FROM unit_import_digests"))  # as stored before migration 0019
    result, said = _import(session, settings, path, LATER)
    assert result.summary.versioned == [] and "same digest" not in said
    assert _history(session)[5] == len(tiny_province)
    _, said = _import(session, settings, path, LATER)
    assert "0 to check" in said


def test_a_changed_bad_feature_is_refused_by_its_place_in_the_file(
    session, settings, tmp_path, tiny_province
):
    _import(session, settings, write_province(tiny_province, tmp_path / "p.gpkg"))
    before = _history(session)
    changed = tiny_province.copy()
    at = len(changed) - 1
    x0, y0, x1, y1 = changed.geometry.iloc[at].bounds
    changed.loc[changed.index[at], "geometry"] = Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    with pytest.raises(ImportRejected) as caught:
        _import(session, settings, write_province(changed, tmp_path / "p2.gpkg"), LATER)
    message = "\n".join(caught.value.report.errors)
    assert f"feature {at + 1} (code {changed['code'].iloc[at]}): invalid geometry" in message, message
    assert _history(session) == before


def test_a_duplicate_code_is_refused_even_when_one_copy_is_unchanged(
    session, settings, tmp_path, tiny_province
):
    _import(session, settings, write_province(tiny_province, tmp_path / "p.gpkg"))
    doubled = tiny_province.iloc[[*range(len(tiny_province)), len(tiny_province) - 1]]
    with pytest.raises(ImportRejected) as caught:
        _import(session, settings, write_province(doubled, tmp_path / "p2.gpkg"), LATER)
    assert "appears twice" in "\n".join(caught.value.report.errors)
