"""Rows for PostgreSQL's COPY (text format), made from numpy columns without a Python loop per row.

Formatting millions of rows field by field in Python (psycopg's `copy.write_row`, pandas'
`to_csv`) costs more than PostgreSQL's whole load. Here every column is a numpy array of
fixed-width byte strings (`S` dtype, padded with NUL bytes) or one constant; the columns are laid
side by side in one byte matrix, a tab after each field and a newline after the last, and the
NUL padding is dropped with one boolean mask: what is left, row after row, is the COPY text.
Values must hold no NUL, tab, newline or backslash (the generated ones do not); `NULL` is `\\N`.
"""

from __future__ import annotations

import numpy as np

NULL = b"\\N"
Piece = bytes | np.ndarray  # a constant, or one S-dtype value per row
Column = Piece | tuple[Piece, ...]  # pieces of one field, joined without a separator

_HEX = np.frombuffer(b"".join(b"%02X" % i for i in range(256)), np.uint8).reshape(256, 2)
_EWKB_POINT = b"0101000020"  # little-endian, Point, with an SRID


def rows(columns: list[Column], n: int) -> tuple[np.ndarray, np.ndarray]:
    """The COPY text of `n` rows (uint8 bytes, rows one after the other) and each row's length."""
    columns = [c if isinstance(c, tuple) else (c,) for c in columns]
    widths = [[len(p) if isinstance(p, bytes) else p.dtype.itemsize for p in c] for c in columns]
    matrix = np.zeros((n, sum(map(sum, widths)) + len(columns)), np.uint8)
    at = 0
    for i, (pieces, sizes) in enumerate(zip(columns, widths, strict=True)):
        for piece, size in zip(pieces, sizes, strict=True):
            if isinstance(piece, bytes):
                matrix[:, at : at + size] = np.frombuffer(piece, np.uint8)
            else:
                matrix[:, at : at + size] = np.ascontiguousarray(piece).view(np.uint8).reshape(n, size)
            at += size
        matrix[:, at] = ord("\n") if i == len(columns) - 1 else ord("\t")
        at += 1
    keep = matrix != 0
    return matrix[keep], keep.sum(axis=1)


def nullable(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """`values` where `present`, NULL elsewhere."""
    return np.where(present, values, NULL)


def integers(values: np.ndarray) -> np.ndarray:
    """Integers as text."""
    return values.astype(np.int64).astype("S20")


def decimals(values: np.ndarray, places: int) -> np.ndarray:
    """Numbers as text with at most `places` decimals (numpy's shortest repr of the rounded value)."""
    return np.round(values, places).astype("S24")


def timestamps(seconds: np.ndarray) -> np.ndarray:
    """Times (Unix seconds, floored to the second) as text without a zone: the COPY's session
    must run with `TimeZone` UTC."""
    stamps = np.floor(seconds).astype("int64").astype("datetime64[s]")
    return np.datetime_as_string(stamps, unit="s").astype("S19")


def points_ewkb(lon: np.ndarray, lat: np.ndarray, srid: int) -> tuple[bytes, np.ndarray]:
    """Points as hex EWKB (what PostGIS reads fastest from text): a constant head and the
    coordinates, one S32 per row."""
    xy = np.empty((len(lon), 2), "<f8")
    xy[:, 0], xy[:, 1] = lon, lat
    hexed = _HEX[xy.view(np.uint8).reshape(len(lon), 16)].reshape(len(lon), 32)
    head = _EWKB_POINT + bytes(_HEX[np.frombuffer(srid.to_bytes(4, "little"), np.uint8)].ravel())
    return head, np.ascontiguousarray(hexed).view("S32").ravel()
