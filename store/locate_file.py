"""/locate's copy of the grids as one file, mapped read-only by every server process.

Layout: MAGIC, the header's length (8 bytes, little-endian), the header (JSON), then each array's
bytes at an offset that is a multiple of _ALIGN. The header names each array (dtype, shape,
offset), what the copy was built from (`meta`: the database and its change count, chosen by
store.locate_copy) and a BLAKE2b digest of everything after it: a file cut short by a crash, or
altered, is refused rather than answered from.

A file is written under a temporary name and renamed into place (`os.replace`, atomic): a reader
maps either the old file or the new one, and a process that has mapped the old one keeps reading
it (its pages stay until unmapped) until it swaps.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
from pathlib import Path
from typing import Any

import numpy as np

MAGIC = b"GRIDMAP-LOCATE\n"
FORMAT = 1  # bump when the arrays or their meaning change: older files are then rebuilt
_ALIGN = 64
_CHUNK = 16 << 20  # digest this much at a time (hashlib lets go of the interpreter meanwhile)


class BadFile(Exception):
    """The file is not a whole, unaltered copy in this format."""


def write(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Write the arrays and `meta` (JSON values) to `path` atomically."""
    layout, pieces, offset = {}, [], 0
    for name, a in arrays.items():
        start = -(-offset // _ALIGN) * _ALIGN
        layout[name] = {"dtype": a.dtype.str, "shape": list(a.shape), "offset": start}
        # The arrays' own bytes (no copy of a copy: at 400,000 grids they are ~100 MB).
        pieces += [b"\0" * (start - offset), np.ascontiguousarray(a).reshape(-1).view(np.uint8)]
        offset = start + a.nbytes
    digest = hashlib.blake2b()
    for piece in pieces:
        digest.update(piece)
    header = json.dumps(
        {"format": FORMAT, "meta": meta, "arrays": layout, "size": offset, "digest": digest.hexdigest()}
    ).encode()
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as out:
            out.write(MAGIC + len(header).to_bytes(8, "little") + header)
            for piece in pieces:
                out.write(piece)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def read_meta(path: Path) -> dict[str, Any] | None:
    """The `meta` a file was written with (its header only; not checked), or None if unreadable."""
    try:
        with open(path, "rb") as f:
            return _header(f.read(len(MAGIC) + 8 + (1 << 16)), os.fstat(f.fileno()).st_size)[0]["meta"]
    except (OSError, BadFile):
        return None


def open_mapped(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Map a file read-only: its meta and its arrays (views of the mapping). Raises BadFile."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise BadFile(f"{path}: empty")
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    header, start = _header(mapped, size)
    view = memoryview(mapped)
    digest = hashlib.blake2b()
    for at in range(start, size, _CHUNK):
        digest.update(view[at : min(at + _CHUNK, size)])
    if digest.hexdigest() != header["digest"]:
        raise BadFile(f"{path}: its contents do not match their digest")
    arrays = {}
    for name, a in header["arrays"].items():
        dtype, shape = np.dtype(a["dtype"]), tuple(a["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        arrays[name] = np.frombuffer(mapped, dtype, count, start + a["offset"]).reshape(shape)
    return header["meta"], arrays


def _header(data: bytes | mmap.mmap, size: int) -> tuple[dict[str, Any], int]:
    """The parsed header and where the arrays begin; raises BadFile."""
    if data[: len(MAGIC)] != MAGIC:
        raise BadFile("not a /locate copy")
    length = int.from_bytes(data[len(MAGIC) : len(MAGIC) + 8], "little")
    start = len(MAGIC) + 8 + length
    try:
        header = json.loads(bytes(data[len(MAGIC) + 8 : start]))
    except ValueError as e:
        raise BadFile(f"unreadable header ({e})") from e
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BadFile("another format")
    if start + header["size"] != size:
        raise BadFile(f"{size} bytes where {start + header['size']} were written")
    return header, start
