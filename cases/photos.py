"""Checking an uploaded photo and reading where and when it was taken from its EXIF.

The type is sniffed from the bytes (the declared content type is never trusted), the image is
decoded to catch corrupt or truncated files, and the GPS position is read from the EXIF GPS IFD
as (lon, lat) in WGS84 decimal degrees. A bad GPS block is ignored, with a note, rather than
rejecting the photo: the picture itself is still evidence.
"""

from __future__ import annotations

import math
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from io import BytesIO
from typing import Any, ClassVar, Literal

import pillow_heif
from PIL import Image

from errors import Invalid, TooLarge, Unsupported

pillow_heif.register_heif_opener()

ContentType = Literal["image/jpeg", "image/png", "image/heic"]
BEFORE, AFTER = "before", "after"  # 处置前 (with the report) / 处置后 (with the handled move)
ACCEPTED = "JPEG, PNG or HEIC"
# Pillow's format name for each accepted type; HEIC opens through pillow-heif as "HEIF".
PILLOW_FORMAT: dict[ContentType, str] = {"image/jpeg": "JPEG", "image/png": "PNG", "image/heic": "HEIF"}
# ISO BMFF major brands of HEIF images coded with HEVC (what phones write) and the generic ones.
HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}
# The largest photos phones take (48–50 MP full-resolution modes); above this a file is refused from
# its header, before anything is decoded: a decompression bomb (a 388 KB PNG of 10,000 × 9,999
# pixels decoded to 370 MB), not a photo.
MAX_PIXELS = 50_000_000
# Progressive JPEG and HEIC can only be decoded in full (libjpeg keeps every coefficient of a
# progressive file, whatever the draft scale): at most this many such decodes run at once per
# process, which bounds their memory (~150 MB each at MAX_PIXELS).
FULL_DECODES = threading.BoundedSemaphore(2)
CAMERA_TZ = timezone(timedelta(hours=8))  # Cameras record local time without a zone; assume China's.

BUFFER_REPR = re.compile(r" <_io\.BytesIO object at 0x[0-9a-fA-F]+>")

EXIF_IFD = 0x8769
GPS_IFD = 0x8825
DATETIME = 0x0132
DATETIME_ORIGINAL = 0x9003
OFFSET_TIME_ORIGINAL = 0x9011
ORIENTATION = 0x0112
GPS_LAT_REF, GPS_LAT, GPS_LON_REF, GPS_LON = 1, 2, 3, 4


class PhotoRejected(Invalid):
    """A photo the service does not accept; `kind` is too_big, unsupported or corrupt."""

    kind: ClassVar[Literal["too_big", "unsupported", "corrupt"]] = "corrupt"


class PhotoTooBig(PhotoRejected, TooLarge):
    """A photo over the byte or pixel limit."""

    kind = "too_big"


class PhotoUnsupported(PhotoRejected, Unsupported):
    """A file that is not a photo of an accepted type (or empty)."""

    kind = "unsupported"


class PhotoCorrupt(PhotoRejected):
    """A photo of an accepted type that cannot be decoded to its end."""

    kind = "corrupt"


@dataclass(frozen=True)
class Photo:
    """What the service keeps to know about an accepted photo."""

    content_type: ContentType
    width: int
    height: int
    gps: tuple[float, float] | None  # (lon, lat), WGS84 decimal degrees, S and W negative
    taken_at: datetime | None
    notes: tuple[str, ...] = ()  # Why GPS or time were ignored, for the response and the log.


def inspect_photo(data: bytes, *, max_bytes: int, camera_tz: tzinfo = CAMERA_TZ) -> Photo:
    """Check an uploaded photo and read its size, GPS and time; PhotoRejected says why not."""
    if len(data) > max_bytes:
        raise PhotoTooBig(f"the photo is larger than the limit of {_size_text(max_bytes)}")
    content_type = sniff_content_type(data)
    with _rejecting_bad_files(content_type):
        image = _open(data, content_type)
        width, height = image.size  # Before decoding: a JPEG draft decode shrinks the size.
        # A PNG's EXIF is read from the chunks before its pixels (Pillow would decode them all to
        # look for one after); its check then leaves the file closed.
        exif = _png_exif(image) if content_type == "image/png" else None
        _decode(image, content_type)
        exif = exif if exif is not None else image.getexif()
    if exif.get(ORIENTATION) in (5, 6, 7, 8):
        # Rotated a quarter turn when displayed: report the size people see.
        width, height = height, width
    notes: list[str] = []
    return Photo(
        content_type=content_type,
        width=width,
        height=height,
        gps=_gps(exif, notes),
        taken_at=_taken_at(exif, camera_tz, notes),
        notes=tuple(notes),
    )


def sniff_content_type(data: bytes) -> ContentType:
    """The real type of an image from its first bytes; PhotoRejected unless JPEG, PNG or HEIC."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[4:8] == b"ftyp" and data[8:12] in HEIC_BRANDS:
        return "image/heic"
    if not data:
        raise PhotoUnsupported(f"the photo is empty; send a {ACCEPTED} image")
    known = _other_type(data)
    what = f"a {known} file" if known else "not an image"
    raise PhotoUnsupported(f"the photo is {what}; accepted types are {ACCEPTED}")


def _other_type(data: bytes) -> str | None:
    """A name for common files that are not accepted, to make the rejection clear."""
    signatures = {
        b"GIF87a": "GIF",
        b"GIF89a": "GIF",
        b"BM": "BMP",
        b"II*\x00": "TIFF",
        b"MM\x00*": "TIFF",
        b"%PDF": "PDF",
        b"PK\x03\x04": "ZIP",
    }
    for magic, name in signatures.items():
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if data[4:8] == b"ftyp":
        brand = data[8:12].decode("ascii", "replace")
        return "AVIF" if brand.startswith("avi") else f"ISO media ({brand})"
    return None


@contextmanager
def _rejecting_bad_files(content_type: ContentType) -> Iterator[None]:
    """Turn whatever Pillow or pillow-heif raise on a bad file into PhotoRejected."""
    name = content_type.removeprefix("image/").upper()
    try:
        with warnings.catch_warnings():
            # The pixel limit is checked in _open with a clear message instead of Pillow's warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    except PhotoRejected:
        raise
    except Image.DecompressionBombError as error:
        raise PhotoTooBig(f"the photo has too many pixels: {error}") from None
    except Exception as error:
        # Bad files raise many kinds of errors (OSError, SyntaxError, ValueError, EOFError…):
        # all mean the same thing here.
        detail = BUFFER_REPR.sub("", str(error))  # Pillow names the in-memory file: noise to a client.
        raise PhotoCorrupt(f"the {name} photo is corrupt or truncated ({detail})") from None


def _open(data: bytes, content_type: ContentType) -> Image.Image:
    """Open the image (headers only) as the sniffed format and check its pixel count."""
    image = Image.open(BytesIO(data), formats=[PILLOW_FORMAT[content_type]])
    if image.width * image.height > MAX_PIXELS:
        raise PhotoTooBig(
            f"the photo has {image.width}×{image.height} pixels; the limit is {MAX_PIXELS:,} pixels"
        )
    return image


def _decode(image: Image.Image, content_type: ContentType) -> None:
    """Read all the image data, so that a corrupt or truncated file is caught now, decoding no more
    than needed: a PNG's chunks are checked (CRCs, through to IEND) without inflating its pixels; a
    baseline JPEG is decoded at 1/8 scale (all its compressed data is still read, so truncation
    shows); progressive JPEG and HEIC, which only decode in full, a few at a time."""
    if content_type == "image/png":
        image.verify()
        return
    if content_type == "image/jpeg":
        image.draft("RGB", (max(image.width // 8, 1), max(image.height // 8, 1)))
        if not image.info.get("progressive"):
            image.load()
            return
    with FULL_DECODES:
        image.load()


def _png_exif(image: Image.Image) -> Image.Exif:
    """The EXIF of a PNG from an eXIf chunk before the image data (where phones put it), else empty."""
    return image.getexif() if "exif" in image.info else Image.Exif()


def _gps(exif: Image.Exif, notes: list[str]) -> tuple[float, float] | None:
    """(lon, lat) from the EXIF GPS IFD, or None when absent or unusable (with a note why)."""
    gps = exif.get_ifd(GPS_IFD)
    if GPS_LAT not in gps and GPS_LON not in gps:
        return None
    try:
        lat = _degrees(gps[GPS_LAT]) * _sign(gps.get(GPS_LAT_REF), "N", "S")
        lon = _degrees(gps[GPS_LON]) * _sign(gps.get(GPS_LON_REF), "E", "W")
    except (KeyError, ValueError, TypeError, ZeroDivisionError) as error:
        notes.append(f"EXIF GPS ignored: unreadable ({error or type(error).__name__})")
        return None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        notes.append(f"EXIF GPS ignored: out of range (lat {lat}, lon {lon})")
        return None
    if lat == 0 and lon == 0:
        # Cameras without a fix often write zeros.
        notes.append("EXIF GPS ignored: 0, 0 means no fix")
        return None
    return lon, lat


def _degrees(value: object) -> float:
    """Degrees from EXIF (degrees, minutes, seconds) rationals."""
    if not isinstance(value, tuple) or len(value) != 3:
        raise ValueError(f"expected degrees, minutes, seconds, got {value!r}")
    degrees, minutes, seconds = (float(part) for part in value)
    if minutes < 0 or seconds < 0:
        raise ValueError(f"negative minutes or seconds in {value!r}")
    return degrees + minutes / 60 + seconds / 3600


def _sign(ref: object, positive: str, negative: str) -> int:
    text = ref.decode("ascii", "replace") if isinstance(ref, bytes) else str(ref or "")
    text = text.strip("\x00 ").upper()
    if text == positive:
        return 1
    if text == negative:
        return -1
    raise ValueError(f"hemisphere reference {text!r} is neither {positive} nor {negative}")


def _taken_at(exif: Image.Exif, camera_tz: tzinfo, notes: list[str]) -> datetime | None:
    """When the photo was taken: DateTimeOriginal, else DateTime; aware (camera zone if unsaid)."""
    details = exif.get_ifd(EXIF_IFD)
    text = details.get(DATETIME_ORIGINAL) or exif.get(DATETIME)
    if not text:
        return None
    try:
        taken = datetime.strptime(str(text).strip("\x00 "), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        notes.append(f"EXIF time ignored: {text!r} is not YYYY:MM:DD HH:MM:SS")
        return None
    offset = details.get(OFFSET_TIME_ORIGINAL) if details.get(DATETIME_ORIGINAL) else None
    return taken.replace(tzinfo=_offset(offset, notes) or camera_tz)


def _offset(text: object, notes: list[str]) -> tzinfo | None:
    """A zone from an EXIF offset such as "+08:00"."""
    if not text:
        return None
    try:
        return datetime.strptime(str(text).strip("\x00 "), "%z").tzinfo
    except ValueError:
        notes.append(f"EXIF time offset {text!r} ignored")
        return None


def _size_text(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):g} MiB ({size:,} bytes)"
    return f"{size:,} bytes"


def photos_by_stage(photos: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """A case's photos kept apart: 处置前 (before) and 处置后 (after).

    >>> photos_by_stage([{"seq": 1}, {"seq": 2, "stage": "after"}])
    {'before': [{'seq': 1}], 'after': [{'seq': 2, 'stage': 'after'}]}
    """
    return {s: [p for p in photos if p.get("stage", BEFORE) == s] for s in (BEFORE, AFTER)}
