"""numpy <-> Arrow arrays through their buffers, for `gridmap assign`'s CSV in and out.

pyarrow's own conversions (`pa.array`, `Array.to_numpy(zero_copy_only=False)`, `take` of a numpy
array) import pandas on first use to ask whether the input is a pandas object: a third of a second
or more of a command that otherwise needs no pandas. Building the arrays from their buffers does
the same work without it (tests/geo/test_arrow_arrays.py compares them with pyarrow's).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa


def strings(texts: Sequence[str]) -> pa.Array:
    """An Arrow string array of the texts."""
    encoded = [t.encode() for t in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    if offsets[-1] >= 2**31:
        return pa.LargeStringArray.from_buffers(
            len(encoded), pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))
        )
    return pa.StringArray.from_buffers(
        len(encoded), pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(b"".join(encoded))
    )


def numbers(values: np.ndarray) -> pa.Array:
    """An Arrow array of a numeric numpy array, null where a float is NaN."""
    values = np.ascontiguousarray(values)
    validity = None
    if values.dtype.kind == "f":
        present = ~np.isnan(values)
        if not present.all():
            validity = pa.py_buffer(np.packbits(present, bitorder="little"))
    return pa.Array.from_buffers(
        pa.from_numpy_dtype(values.dtype), len(values), [validity, pa.py_buffer(values)]
    )


def floats(column: pa.Array) -> np.ndarray:
    """A float64 Arrow array as numpy, NaN where null."""
    validity, data = column.buffers()[:2]
    start, n = column.offset, len(column)
    values = np.frombuffer(data, dtype=np.float64, count=start + n)[start:].copy()
    if column.null_count:
        bits = np.frombuffer(validity, dtype=np.uint8)
        present = np.unpackbits(bits, bitorder="little", count=start + n)[start:].astype(bool)
        values[~present] = np.nan
    return values


class Texts(Sequence):
    """Texts (None where missing) kept as UTF-8 bytes end to end; one is decoded when asked for.

    What a saved grid index keeps its 400,000 codes in (geo.grid_index_file): as JSON lists they
    took ~0.25 s of every `gridmap assign` to parse and to turn into the Arrow column it writes.
    """

    def __init__(self, data: np.ndarray, offsets: np.ndarray, present: np.ndarray) -> None:
        """UTF-8 bytes (uint8), n + 1 int64 offsets into them, n booleans (False: None)."""
        self.data, self.offsets, self.present = data, offsets, present

    @classmethod
    def of(cls, texts: Sequence[str | None]) -> Texts:
        """The texts as bytes and offsets."""
        encoded = [b"" if t is None else t.encode() for t in texts]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
        present = np.array([t is not None for t in texts], dtype=bool)
        return cls(np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets, present)

    def __len__(self) -> int:
        """Number of texts."""
        return len(self.offsets) - 1

    def __getitem__(self, item: Any) -> Any:
        """The text at `item` (None if missing), or a list of them for a slice."""
        if isinstance(item, slice):
            return [self[i] for i in range(*item.indices(len(self)))]
        i = range(len(self))[item]  # negative indices, IndexError past the end
        if not self.present[i]:
            return None
        return self.data[self.offsets[i] : self.offsets[i + 1]].tobytes().decode()

    def arrow(self) -> pa.Array:
        """An Arrow string array on the same bytes (null where missing)."""
        n = len(self)
        validity = None if self.present.all() else pa.py_buffer(np.packbits(self.present, bitorder="little"))
        data = pa.py_buffer(np.ascontiguousarray(self.data))
        if self.offsets[-1] >= 2**31:
            return pa.LargeStringArray.from_buffers(n, pa.py_buffer(self.offsets), data, validity)
        return pa.StringArray.from_buffers(n, pa.py_buffer(self.offsets.astype(np.int32)), data, validity)
