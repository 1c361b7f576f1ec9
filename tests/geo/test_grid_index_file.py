"""A GridIndex saved by geo.grid_index_file and loaded back answers exactly as the built one."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo import grid_index_file
from geo.arrow_arrays import Texts
from geo.grid_index_file import LazyGeometries
from tests.geo.test_lookup import build, check_against_reference, partition, sample


def _same_answers(a, b) -> None:
    for field in dataclasses.fields(a):
        np.testing.assert_array_equal(getattr(a, field.name), getattr(b, field.name), err_msg=field.name)


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    n=st.integers(3, 25),
    max_cells=st.sampled_from([16, 2_000, 16_000_000]),
    multi=st.booleans(),
)
def test_a_loaded_index_gives_the_built_ones_answers(tmp_path_factory, seed, n, max_cells, multi):
    data = partition(seed, n, 2)
    built = build(data, max_cells, multi)
    folder = tmp_path_factory.mktemp("index") / "saved"
    grid_index_file.save(built, folder)
    loaded = grid_index_file.load(folder)
    assert isinstance(loaded._grids.geometries, LazyGeometries)
    xy = sample(data, np.random.default_rng(seed))
    _same_answers(built.assign(xy[:, 0], xy[:, 1], chunk=97), loaded.assign(xy[:, 0], xy[:, 1], chunk=97))
    assert (list(loaded.codes), list(loaded.kinds), list(loaded.micro_codes), loaded.metric_crs) == (
        built.codes,
        built.kinds,
        built.micro_codes,
        built.metric_crs,
    )
    assert isinstance(loaded.codes, Texts)  # kept as the saved bytes, not 400,000 Python texts
    check_against_reference(data, grid_index_file.load(folder), xy)  # and the rule itself, from a fresh load


def test_polygons_are_decoded_only_when_an_answer_needs_them(tmp_path):
    data = partition(7, 25, 1)
    built = build(data)
    grid_index_file.save(built, tmp_path / "saved")
    loaded = grid_index_file.load(tmp_path / "saved")
    grids, nearest = loaded._grids.geometries, loaded._nearest.geometries
    inside = np.array([g.representative_point().coords[0] for _, k, g in data["grids"] if k != "special"])
    loaded.assign(inside[:, 0], inside[:, 1])
    assert grids._done.sum() < len(grids) and not nearest._done.any()
    # GEOS's nearest (near ties) asks only the polygons near the point, not a tree of them all.
    code, (x, y) = data["grids"][0][0], inside[0]
    mx, my = loaded._to_metric.transform(np.array([x + 0.004]), np.array([y]))
    for a, b in zip(
        built._nearest._geos(mx, my), loaded._nearest._geos(mx, my, np.array([300.0])), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert 0 < nearest._done.sum() < len(nearest)
    np.testing.assert_array_equal(grids.decoded, built._grids.geometries)  # the same polygons
    assert code in loaded.codes


def test_another_format_is_refused_and_a_save_replaces_nothing(tmp_path):
    built = build(partition(3, 5, 1))
    folder = tmp_path / "saved"
    grid_index_file.save(built, folder)
    before = sorted(p.name for p in folder.iterdir())
    grid_index_file.save(built, folder)  # already there (another process saved it first): kept
    assert sorted(p.name for p in folder.iterdir()) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".writing-")]
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "format": grid_index_file.FORMAT + 1}))
    with pytest.raises(ValueError, match="format"):
        grid_index_file.load(folder)
