"""A built GridIndex saved as plain arrays, so that a batch can load it instead of building it.

Building the index rasterizes every grid and buckets every boundary segment (seconds at 100,000
grids); what it builds is numpy arrays, a few numbers and the polygons. `save` writes each array
as one `.npy` file (loaded memory-mapped: nothing is read until used), the polygons as WKB and
the codes as UTF-8 bytes (geo.arrow_arrays.Texts: the output's Arrow column is made on them);
`load` puts the same objects back without recomputing anything. The polygons are decoded only
when an answer needs GEOS (a point on an edge, a polygon with many vertices, a near tie), and then
all at once, as the built index has them.

Why not pickle: a cache file is read back by another process; `.npy` read with
`allow_pickle=False` and JSON cannot run code, whoever wrote them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from geo.arrow_arrays import Texts
from geo.crs import STORAGE_CRS, transformer
from geo.grid_raster import Cells, Layer
from geo.lookup import GridIndex
from geo.nearest import Nearest

FORMAT = 2  # bump when the saved layout changes (GridIndex, Layer, Nearest attributes)
_SKIP = {"tree", "_to_metric"}  # rebuilt on use / from metric_crs
_MMAP_BYTES = 1 << 20  # smaller arrays are read at once (an empty array cannot be mapped)


class LazyGeometries:
    """Polygons kept as WKB, each decoded (and prepared) the first time it is indexed."""

    def __init__(self, wkb: np.ndarray, offsets: np.ndarray) -> None:
        """WKB of every polygon end to end, and offsets (n + 1; a missing polygon has length 0)."""
        self._wkb, self._offsets = wkb, offsets
        self._polygons = np.full(len(offsets) - 1, None, dtype=object)
        self._done = np.zeros(len(offsets) - 1, dtype=bool)

    def __len__(self) -> int:
        """Number of polygons."""
        return len(self._offsets) - 1

    def _decode(self, which: np.ndarray) -> None:
        """Decode the polygons `which` (unique indices) not decoded yet."""
        which = which[~self._done[which]]
        if not len(which):
            return
        start, end = self._offsets[which], self._offsets[which + 1]
        parts = np.array(
            [
                self._wkb[a:b].tobytes() if b > a else None
                for a, b in zip(start.tolist(), end.tolist(), strict=True)
            ],
            dtype=object,
        )
        polygons = shapely.from_wkb(parts)
        shapely.prepare(polygons)
        self._polygons[which], self._done[which] = polygons, True

    @property
    def decoded(self) -> np.ndarray:
        """Every polygon (None where missing)."""
        self._decode(np.arange(len(self)))
        return self._polygons

    def __getitem__(self, item: Any) -> Any:
        """Index like the array of polygons (only the polygons asked for are decoded)."""
        self._decode(np.unique(np.arange(len(self))[item]))
        return self._polygons[item]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """The array of polygons (for shapely functions and STRtree)."""
        return self.decoded


def _wkb_arrays(geometries: Any) -> tuple[np.ndarray, np.ndarray]:
    """Polygons as (concatenated WKB bytes, offsets)."""
    geometries = np.asarray(geometries, dtype=object)
    wkb = shapely.to_wkb(geometries)
    sizes = np.array([0 if w is None else len(w) for w in wkb], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    data = b"".join(w for w in wkb if w is not None)
    return np.frombuffer(data, dtype=np.uint8), offsets


def _plain(value: Any) -> Any:
    """A JSON value for a number, text, None, Cells or a tuple of numbers."""
    if isinstance(value, Cells):
        return {"cells": [value.x0, value.y0, value.dx, value.dy, value.ncols, value.nrows]}
    if isinstance(value, tuple):
        return {"tuple": [float(v) for v in value]}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, int | float | str):
        return value
    raise TypeError(f"cannot save a {type(value).__name__}")


def _unplain(value: Any) -> Any:
    """The value _plain saved."""
    if isinstance(value, dict) and "cells" in value:
        x0, y0, dx, dy, ncols, nrows = value["cells"]
        return Cells(x0, y0, dx, dy, int(ncols), int(nrows))
    if isinstance(value, dict) and "tuple" in value:
        return tuple(value["tuple"])
    return value


def _save_object(obj: object, name: str, folder: Path) -> dict[str, Any]:
    """Write the object's arrays to folder/name.attr.npy; its other attributes as a JSON dict."""
    meta: dict[str, Any] = {}
    for attr, value in vars(obj).items():
        if attr in _SKIP:
            continue
        if attr == "geometries":
            wkb, offsets = _wkb_arrays(value)
            np.save(folder / f"{name}.wkb.npy", wkb)
            np.save(folder / f"{name}.wkb_offsets.npy", offsets)
            meta[attr] = {"wkb": True}
        elif isinstance(value, np.ndarray):
            np.save(folder / f"{name}.{attr}.npy", value, allow_pickle=False)
            meta[attr] = {"array": True}
        elif isinstance(value, list | Texts) and all(v is None or isinstance(v, str) for v in value):
            texts = value if isinstance(value, Texts) else Texts.of(value)  # codes, kinds (None kept)
            for part in ("data", "offsets", "present"):
                np.save(folder / f"{name}.{attr}.{part}.npy", getattr(texts, part), allow_pickle=False)
            meta[attr] = {"texts": True}
        elif isinstance(value, list):
            meta[attr] = {"list": value}
        else:
            meta[attr] = {"value": _plain(value)}
    return meta


def _load_array(path: Path) -> np.ndarray:
    """A saved array, memory-mapped when large."""
    mode = "r" if path.stat().st_size > _MMAP_BYTES else None
    return np.load(path, mmap_mode=mode, allow_pickle=False)


def _load_object(cls: type, name: str, meta: dict[str, Any], folder: Path) -> Any:
    """The object _save_object wrote, without running its constructor."""
    obj = cls.__new__(cls)
    for attr, how in meta.items():
        if "wkb" in how:
            value: Any = LazyGeometries(
                _load_array(folder / f"{name}.wkb.npy"), _load_array(folder / f"{name}.wkb_offsets.npy")
            )
        elif "array" in how:
            value = _load_array(folder / f"{name}.{attr}.npy")
        elif "texts" in how:
            value = Texts(
                *(
                    _load_array(folder / f"{name}.{attr}.{part}.npy")
                    for part in ("data", "offsets", "present")
                )
            )
        elif "list" in how:
            value = how["list"]
        else:
            value = _unplain(how["value"])
        setattr(obj, attr, value)
    return obj


def save(index: GridIndex, folder: Path) -> None:
    """Write the index into `folder` (created whole or not at all: written aside, then renamed)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".writing-", dir=folder.parent))
    try:
        parts = {"grids": index._grids, "nearest": index._nearest}
        if index._micro is not None:
            parts["micro"] = index._micro
        meta = {name: _save_object(part, name, work) for name, part in parts.items()}
        own = {k: v for k, v in vars(index).items() if k not in {"_grids", "_micro", "_nearest"}}
        meta["index"] = _save_object(_Attributes(own), "index", work)
        (work / "meta.json").write_text(json.dumps({"format": FORMAT, "parts": meta}))
        os.rename(work, folder)  # atomic; fails if another process saved it first (same content)
    except OSError:
        if not folder.exists():
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


class _Attributes:
    """A bag of attributes (the GridIndex's own, without its parts)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


def load(folder: Path) -> GridIndex:
    """The index `save` wrote; ValueError if the folder holds another format."""
    meta = json.loads((folder / "meta.json").read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{folder}: saved grid index of format {meta.get('format')}, not {FORMAT}")
    parts = meta["parts"]
    index = _load_object(GridIndex, "index", parts["index"], folder)
    index._grids = _load_object(Layer, "grids", parts["grids"], folder)
    index._micro = _load_object(Layer, "micro", parts["micro"], folder) if "micro" in parts else None
    index._nearest = _load_object(Nearest, "nearest", parts["nearest"], folder)
    index._to_metric = transformer(STORAGE_CRS, index.metric_crs)
    return index
