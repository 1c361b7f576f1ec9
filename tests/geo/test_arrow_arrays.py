"""geo.arrow_arrays builds the arrays pyarrow's own conversions build (without importing pandas)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow as pa

from geo import arrow_arrays


def test_strings_numbers_and_floats_equal_pyarrows():
    texts = ["", "assigned", "网格 Grid", 'a "quoted", text']
    assert arrow_arrays.strings(texts).equals(pa.array(texts, type=pa.string()))
    values = np.array([1.5, np.nan, -0.0, 2.25, np.nan])
    assert arrow_arrays.numbers(values).equals(pa.array(values, from_pandas=True))
    ints = np.array([3, -1, 0], dtype=np.int64)
    assert arrow_arrays.numbers(ints).equals(pa.array(ints))
    column = pa.array(["1.5", None, "3", "nan", "-2e3", None, "7"]).cast(pa.float64())
    for sliced in (column, column.slice(1), column.slice(3, 3)):  # offsets into the bitmap
        np.testing.assert_array_equal(
            arrow_arrays.floats(sliced), sliced.to_numpy(zero_copy_only=False).astype(float)
        )


def test_texts_read_back_and_are_the_arrow_column_pyarrow_makes():
    texts = ["411681001001001", None, "网格 Grid", "", 'a "quoted", text']
    kept = arrow_arrays.Texts.of(texts)
    assert list(kept) == texts and len(kept) == 5
    assert (kept[2], kept[-1], kept[1:3]) == ("网格 Grid", 'a "quoted", text', [None, "网格 Grid"])
    assert kept.arrow().equals(pa.array(texts, type=pa.string()))
    assert arrow_arrays.Texts.of(texts[:1]).arrow().null_count == 0


def test_the_assign_command_path_does_not_import_pandas(tmp_path):
    points, out = tmp_path / "p.csv", tmp_path / "out.csv"
    points.write_text("id,lon,lat\n1,114.905,33.405\n2,x,33.4\n3,114.95,33.45\n")
    code = f"""
import sys
from pathlib import Path
import numpy as np
from shapely.geometry import box
from geo.batch import assign_csv
from geo.lookup import GridIndex
index = GridIndex(["411681001001001"], ["urban"], np.array([box(114.9, 33.4, 114.91, 33.41)]))
print(assign_csv(Path({str(points)!r}), Path({str(out)!r}), "wgs84", index, progress=False))
assert "pandas" not in sys.modules, "pandas imported"
"""
    subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.read_text().splitlines() == [
        "id,status,grid_code,distance_m",
        '"1","assigned","411681001001001",0',
        '"2","invalid","",',
        '"3","unassigned","",',
    ]
