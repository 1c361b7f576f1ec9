"""Batch assignment of CSV points (id,lon,lat) to grids, streamed in chunks for millions of rows."""

from __future__ import annotations

import csv
import ctypes
import math
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from geo import arrow_arrays, crs
from geo.lookup import STATUSES, GridIndex

REQUIRED_COLUMNS = ("id", "lon", "lat")
T = TypeVar("T")
INVALID = "invalid"  # a row whose coordinates cannot be used; reported, never guessed


def _count_rows(path: Path) -> int:
    with path.open("rb") as fh:
        return max(sum(buf.count(b"\n") for buf in iter(lambda: fh.read(1 << 20), b"")) - 1, 0)


def check_points_csv(source: Path, crs_name: str) -> str:
    """Refuse a points file the batch cannot read (missing, no id,lon,lat, unknown CRS) before any work."""
    crs_name = crs.normalize_crs(crs_name)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such file")
    # The header by the csv module: pandas took a third of a second to import for one line.
    try:
        with source.open(newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), None)
        if not header:
            raise csv.Error("no columns in the file")
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ValueError(f"{source.name} cannot be read as CSV ({exc}); expected id,lon,lat") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ValueError(
            f"{source.name} lacks column(s) {', '.join(missing)} (found: {', '.join(map(str, header))}); "
            "expected id,lon,lat"
        )
    return crs_name


class Progress:
    """Progress of a batch: a bar on a terminal, else a line at every tenth (logs, pipes, cron)."""

    def __init__(self, total: int, *, terminal: bool, say: Callable[[str], None]) -> None:
        self.total, self.done, self._say, self._next_tenth = total, 0, say, 1
        self._bar = None
        if terminal:  # tqdm only for a terminal: its import is 20 ms of every batch run by a script
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit=" points", unit_scale=True)

    def update(self, n: int) -> None:
        """Count n more points done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        while self.total and self.done * 10 >= self._next_tenth * self.total and self._next_tenth <= 10:
            self._say(f"  {self.done:,} of {self.total:,} points ({self._next_tenth * 10} %)")
            self._next_tenth += 1

    def close(self) -> None:
        """End the bar (a no-op for lines)."""
        if self._bar is not None:
            self._bar.close()


# About 50,000 rows of id,lon,lat a batch: small progress steps, cache-sized arrays.
BLOCK_BYTES = 2 << 20
_LABELS = arrow_arrays.strings([*map(str, STATUSES), INVALID])  # status number -> name; INVALID last
_INVALID_NUMBER = len(STATUSES)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h


def _batches(source: Path) -> Iterator[tuple[pa.Array, np.ndarray, np.ndarray]]:
    """(ids, lon, lat) batch by batch; lon/lat NaN where a cell is empty or not a number."""
    # pyarrow parses the CSV in C++ and keeps the ids as one Arrow column: pandas made a Python
    # object per id and per output cell, which took most of a million-row run (issue 19).
    options = pacsv.ConvertOptions(
        include_columns=list(REQUIRED_COLUMNS),
        column_types=dict.fromkeys(REQUIRED_COLUMNS, pa.string()),
        strings_can_be_null=True,
    )
    read = pacsv.ReadOptions(block_size=BLOCK_BYTES)
    with pacsv.open_csv(source, read_options=read, convert_options=options) as reader:
        for batch in reader:
            yield batch.column("id"), _numbers(batch.column("lon")), _numbers(batch.column("lat"))


def _ahead(items: Iterator[T]) -> Iterator[T]:
    """The items, each produced in a thread while the previous one is used.

    pyarrow parses and writes CSV without holding the interpreter: with the reading, the lookup
    and the writing of three batches overlapping, a second core shortens the run.
    """
    done = object()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(next, items, done)
        while (item := future.result()) is not done:
            future = pool.submit(next, items, done)
            yield item  # type: ignore[misc]


def _numbers(column: pa.Array) -> np.ndarray:
    """Floats of a text column, NaN for what is not a number."""
    try:
        return arrow_arrays.floats(column.cast(pa.float64()))
    except pa.ArrowInvalid:  # a stray word in the batch: parse this batch forgivingly
        return np.array([_number(text) for text in column.to_pylist()], dtype=np.float64)


def _number(text: str | None) -> float:
    """A cell's float, NaN if it is empty or not a number."""
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def keep_the_heap() -> None:
    """Let glibc's malloc reuse the heap between assign_csv's batches instead of giving it back
    after each one: a setting of the whole process, so its owner calls it (`gridmap assign`).

    Every batch allocates and frees the same few MB of arrays; by default glibc returns the freed
    top of its heap to the system and the next batch faults every page in again: ~0.06 s of system
    time per million points (1.2 against 0.55 s at 10 M). Arrays under 32 MB come from the heap and
    up to 128 MB of it is kept. Elsewhere than glibc (no mallopt) nothing changes.
    """
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 128 << 20)
    except (OSError, AttributeError):
        pass


def _code_column(codes: Sequence[str]) -> pa.Array:
    """The grids' codes as an Arrow column with "" last (a saved index's own bytes, not copied per code)."""
    if isinstance(codes, arrow_arrays.Texts):
        end = codes.offsets[-1:]
        blank = np.concatenate([codes.offsets, end])  # one more text, empty
        return arrow_arrays.Texts(codes.data, blank, np.append(codes.present, True)).arrow()
    return arrow_arrays.strings([*codes, ""])


def assign_csv(
    source: Path,
    target: Path,
    crs_name: str,
    index: GridIndex,
    *,
    progress: bool = True,
    say: Callable[[str], None] | None = None,
) -> str:
    """Assign every row of `source`, write id,status,grid_code,distance_m to `target`; returns a summary.

    Progress goes to a bar when `progress` (a terminal), else to `say` a line at every tenth.
    """
    crs_name = check_points_csv(source, crs_name)
    counts = np.zeros(len(_LABELS), dtype=np.int64)
    first_invalid = ""
    started = time.perf_counter()
    codes = _code_column(index.codes)  # grid number -> code; -1 (no grid) takes the last, ""
    bar = Progress(_count_rows(source), terminal=progress, say=say or (lambda _line: None))
    schema = pa.schema([("id", pa.string()), ("status", pa.string()), ("grid_code", pa.string()),
                        ("distance_m", pa.float64())])
    # The header by hand: Arrow quotes a header's names whatever the quoting style.
    written = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    with (
        target.open("wb") as sink,
        pacsv.CSVWriter(sink, schema, write_options=written) as out,
        ThreadPoolExecutor(1) as writer,
    ):
        sink.write(b"id,status,grid_code,distance_m\n")
        writing: Future | None = None
        for ids, lon, lat in _ahead(_batches(source)):
            x, y = crs.to_storage(lon, lat, crs_name)
            minx, miny, maxx, maxy = crs.CHINA_BOUNDS
            ok = np.isfinite(x) & np.isfinite(y) & (x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy)
            status = np.full(len(ids), _INVALID_NUMBER, dtype=np.int8)
            grid = np.full(len(ids), -1, dtype=np.int64)
            distance = np.full(len(ids), np.nan)
            if ok.any():
                result = index.assign(x[ok], y[ok], nearest=False)
                status[ok], grid[ok], distance[ok] = result.status, result.grid, result.distance_m
            if not first_invalid and not ok.all():
                bad = int(np.argmin(ok))
                first_invalid = f" (first: id {ids[bad].as_py()}: lon={lon[bad]}, lat={lat[bad]})"
            counts += np.bincount(status, minlength=len(_LABELS))
            grid[grid < 0] = len(codes) - 1
            distance_m = arrow_arrays.numbers(np.round(distance, 2))  # NaN: an empty cell
            labels = _LABELS.take(arrow_arrays.numbers(status))
            columns = [ids, labels, codes.take(arrow_arrays.numbers(grid)), distance_m]
            if writing is not None:
                writing.result()  # one batch in writing at a time: memory stays bounded, order kept
            writing = writer.submit(out.write_batch, pa.RecordBatch.from_arrays(columns, schema=schema))
            bar.update(len(ids))
        if writing is not None:
            writing.result()
    bar.close()
    named = dict(zip(_LABELS.to_pylist(), counts.tolist(), strict=True))
    total = int(counts.sum())
    seconds = time.perf_counter() - started
    summary = ", ".join(f"{n} {name}" for name, n in named.items() if n)
    rate = total / seconds if seconds else float("inf")
    text = f"{total} points → {target}: {summary or 'nothing'} in {seconds:.1f} s ({rate:,.0f} points/s)"
    if named[INVALID]:
        text += (
            f"\n{named[INVALID]} rows had unusable coordinates{first_invalid}: "
            "check the CRS (--crs) and the lon/lat columns"
        )
    return text
