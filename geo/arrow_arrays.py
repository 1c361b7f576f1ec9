"""numpy <-> Arrow arrays through their buffers, for `gridmap assign`'s CSV in and out.

pyarrow's own conversions (`pa.array`, `Array.to_numpy(zero_copy_only=False)`, `take` of a numpy
array) import pandas on first use to ask whether the input is a pandas object: a third of a second
or more of a command that otherwise needs no pandas. Building the arrays from their buffers does
the same work without it (tests/geo/test_arrow_arrays.py compares them with pyarrow's).
"""

from __future__ import annotations

from collections.abc import Sequence

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
