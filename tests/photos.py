"""Real image files made in tests: JPEG and HEIC with EXIF GPS and time, PNG without."""

from __future__ import annotations

import struct
import zlib
from datetime import datetime
from fractions import Fraction
from io import BytesIO

import pillow_heif
from PIL import Image

pillow_heif.register_heif_opener()

EXIF_IFD = 0x8769
GPS_IFD = 0x8825


def exif_with_gps(lon: float | None, lat: float | None, *, taken_at: datetime | None = None) -> Image.Exif:
    """An EXIF block with a GPS position (S and W from the signs) and optionally a time."""
    exif = Image.Exif()
    if lon is not None and lat is not None:
        gps = exif.get_ifd(GPS_IFD)
        gps[1] = "N" if lat >= 0 else "S"
        gps[2] = dms(abs(lat))
        gps[3] = "E" if lon >= 0 else "W"
        gps[4] = dms(abs(lon))
    if taken_at is not None:
        details = exif.get_ifd(EXIF_IFD)
        details[0x9003] = taken_at.strftime("%Y:%m:%d %H:%M:%S")
        if taken_at.tzinfo is not None:
            offset = taken_at.strftime("%z")
            details[0x9011] = f"{offset[:3]}:{offset[3:]}"
    return exif


def dms(degrees: float) -> tuple[Fraction, Fraction, Fraction]:
    """Degrees as EXIF degrees, minutes, seconds rationals, seconds to 1/10000."""
    whole = int(degrees)
    minutes_float = (degrees - whole) * 60
    minutes = int(minutes_float)
    seconds = Fraction(round((minutes_float - minutes) * 60 * 10000), 10000)
    return Fraction(whole), Fraction(minutes), seconds


def jpeg_with_gps(lon: float, lat: float, *, size: tuple[int, int] = (64, 48)) -> bytes:
    """A real JPEG whose EXIF carries this WGS84 position."""
    return jpeg_bytes(size=size, exif=exif_with_gps(lon, lat))


def jpeg_bytes(*, size: tuple[int, int] = (64, 48), exif: Image.Exif | None = None) -> bytes:
    """A real JPEG, with an EXIF block if given."""
    buffer = BytesIO()
    _picture(size).save(buffer, format="JPEG", quality=85, exif=exif if exif is not None else Image.Exif())
    return buffer.getvalue()


def png_bytes(size: tuple[int, int] = (64, 48)) -> bytes:
    """A real PNG without EXIF."""
    buffer = BytesIO()
    _picture(size).save(buffer, format="PNG")
    return buffer.getvalue()


def heic_with_gps(lon: float, lat: float, *, size: tuple[int, int] = (64, 48)) -> bytes:
    """A real HEIC (HEVC-coded HEIF, as phones write) whose EXIF carries this position."""
    buffer = BytesIO()
    _picture(size).save(buffer, format="HEIF", exif=exif_with_gps(lon, lat).tobytes())
    return buffer.getvalue()


def _picture(size: tuple[int, int]) -> Image.Image:
    """A gradient rather than a flat colour, so the compressed data is not trivially small."""
    ramp = Image.linear_gradient("L")
    return Image.merge("RGB", (ramp.resize(size), ramp.rotate(90).resize(size), Image.new("L", size, 128)))


def flat_png(width: int, height: int) -> bytes:
    """A valid RGB PNG of one colour, compressed row by row: a few hundred KB for any size (what a
    decompression bomb looks like), made without ever holding its pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    packer, row = zlib.compressobj(6), bytes(1 + 3 * width)  # filter byte, then black pixels
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
