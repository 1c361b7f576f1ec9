"""Uploaded photos: real JPEG, PNG and HEIC files, their EXIF GPS and time, and what is refused."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from datetime import UTC, datetime, timedelta, timezone
from io import BytesIO

import pytest
from PIL import Image

from cases.photos import MAX_PIXELS, PhotoRejected, inspect_photo
from tests.photos import exif_with_gps, flat_png, heic_with_gps, jpeg_bytes, jpeg_with_gps, png_bytes

LIMIT = 1024 * 1024


@pytest.mark.parametrize(
    ("lon", "lat"),
    [(113.6197, 33.8506), (-151.2093, -33.8688), (-0.1278, 51.5074), (174.7633, -36.8485)],
)
def test_jpeg_gps_round_trips_with_hemispheres(lon, lat):
    photo = inspect_photo(jpeg_with_gps(lon, lat), max_bytes=LIMIT)
    assert photo.content_type == "image/jpeg"
    assert (photo.width, photo.height) == (64, 48)
    assert photo.gps == pytest.approx((lon, lat), abs=1e-7)
    assert photo.notes == ()


def test_png_without_gps():
    photo = inspect_photo(png_bytes((30, 20)), max_bytes=LIMIT)
    assert (photo.content_type, photo.width, photo.height) == ("image/png", 30, 20)
    assert photo.gps is None and photo.taken_at is None


def test_heic_with_gps():
    photo = inspect_photo(heic_with_gps(114.02, 33.77, size=(80, 60)), max_bytes=LIMIT)
    assert (photo.content_type, photo.width, photo.height) == ("image/heic", 80, 60)
    assert photo.gps == pytest.approx((114.02, 33.77), abs=1e-7)


def test_taken_at_uses_the_recorded_offset():
    taken = datetime(2025, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=-5)))
    photo = inspect_photo(jpeg_bytes(exif=exif_with_gps(113.6, 33.9, taken_at=taken)), max_bytes=LIMIT)
    assert photo.taken_at == taken


def test_taken_at_without_offset_is_camera_local_time():
    exif = exif_with_gps(None, None, taken_at=datetime(2025, 3, 1, 9, 30))
    photo = inspect_photo(jpeg_bytes(exif=exif), max_bytes=LIMIT)
    assert photo.taken_at == datetime(2025, 3, 1, 1, 30, tzinfo=UTC)
    assert photo.gps is None


def test_a_quarter_turned_photo_reports_its_displayed_size():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    photo = inspect_photo(jpeg_bytes(size=(64, 48), exif=exif), max_bytes=LIMIT)
    assert (photo.width, photo.height) == (48, 64)


def test_gps_out_of_range_is_ignored_with_a_note():
    exif = exif_with_gps(113.6, 33.9)
    exif.get_ifd(0x8825)[2] = (95.0, 0.0, 0.0)  # latitude 95°
    photo = inspect_photo(jpeg_bytes(exif=exif), max_bytes=LIMIT)
    assert photo.gps is None
    assert photo.notes and "out of range" in photo.notes[0]


def test_gps_without_a_hemisphere_is_ignored_with_a_note():
    exif = exif_with_gps(113.6, 33.9)
    del exif.get_ifd(0x8825)[3]  # GPSLongitudeRef
    photo = inspect_photo(jpeg_bytes(exif=exif), max_bytes=LIMIT)
    assert photo.gps is None
    assert "neither E nor W" in photo.notes[0]


def test_zero_gps_means_no_fix():
    photo = inspect_photo(jpeg_with_gps(0.0, 0.0), max_bytes=LIMIT)
    assert photo.gps is None
    assert "no fix" in photo.notes[0]


def test_an_oversized_photo_is_refused_with_the_limit():
    data = jpeg_with_gps(113.6, 33.9, size=(320, 240))
    with pytest.raises(PhotoRejected, match="limit of 1,000 bytes") as raised:
        inspect_photo(data, max_bytes=1000)
    assert raised.value.kind == "too_big"
    assert inspect_photo(data, max_bytes=len(data)).width == 320  # exactly at the limit is fine


def test_a_text_file_is_not_an_image():
    with pytest.raises(PhotoRejected, match="not an image; accepted types are JPEG, PNG or HEIC") as raised:
        inspect_photo(b"lon,lat\n113.6,33.9\n", max_bytes=LIMIT)
    assert raised.value.kind == "unsupported"
    assert isinstance(raised.value, ValueError)


def test_other_image_types_are_named():
    buffer = BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="GIF")
    with pytest.raises(PhotoRejected, match="a GIF file; accepted"):
        inspect_photo(buffer.getvalue(), max_bytes=LIMIT)
    with pytest.raises(PhotoRejected, match="empty"):
        inspect_photo(b"", max_bytes=LIMIT)


@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_a_truncated_jpeg_is_corrupt(keep):
    data = jpeg_with_gps(113.6, 33.9, size=(320, 240))
    with pytest.raises(PhotoRejected, match="JPEG photo is corrupt or truncated") as raised:
        inspect_photo(data[: int(len(data) * keep)], max_bytes=LIMIT)
    assert raised.value.kind == "corrupt"


def test_a_truncated_png_and_heic_are_corrupt():
    data = png_bytes((320, 240))
    with pytest.raises(PhotoRejected, match="PNG photo is corrupt"):
        inspect_photo(data[: len(data) // 2], max_bytes=LIMIT)
    data = heic_with_gps(113.6, 33.9, size=(320, 240))
    with pytest.raises(PhotoRejected, match="HEIC photo is corrupt") as raised:
        inspect_photo(data[: len(data) // 2], max_bytes=LIMIT)
    assert "BytesIO" not in str(raised.value)


def test_a_jpeg_signature_on_other_bytes_is_corrupt():
    with pytest.raises(PhotoRejected, match="corrupt"):
        inspect_photo(b"\xff\xd8\xff" + b"not really a jpeg" * 10, max_bytes=LIMIT)


def test_a_decompression_bomb_is_refused_before_decoding():
    # A small PNG that claims 11000 × 10000 pixels: refused from its header alone.
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 11_000, 10_000, 8, 2, 0, 0, 0)
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")
    data = b"\x89PNG\r\n\x1a\n" + chunks
    assert MAX_PIXELS < 11_000 * 10_000
    with pytest.raises(PhotoRejected, match="pixels") as raised:
        inspect_photo(data, max_bytes=LIMIT)
    assert raised.value.kind == "too_big"


# The process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from pytest across exec).
PEAK_RSS = """
import sys
from cases.photos import PhotoRejected, inspect_photo
def peak_kib():
    status = open("/proc/self/status").read()
    return int(status.split("VmHWM:")[1].split()[0])
data = open(sys.argv[1], "rb").read()
before = peak_kib()
try:
    answer = inspect_photo(data, max_bytes=len(data))
except PhotoRejected as e:
    answer = e.kind
print((peak_kib() - before) // 1024, answer)
"""


def inspected_in_a_fresh_process(data: bytes, tmp_path) -> tuple[int, object]:
    """(how many MiB inspecting `data` added to a fresh process's peak memory, its answer)."""
    path = tmp_path / "photo.bin"
    path.write_bytes(data)
    run = subprocess.run([sys.executable, "-c", PEAK_RSS, str(path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    mib, answer = run.stdout.split(maxsplit=1)
    return int(mib), answer.strip()


def test_a_png_bomb_under_the_pixel_limit_is_checked_without_decoding_its_pixels(tmp_path):
    # 7000 × 7000 RGB: 147 MB of pixels in a 140 KB file; accepted, its chunks checked, not inflated.
    data = flat_png(7000, 7000)
    assert len(data) < 200_000 and MAX_PIXELS >= 7000 * 7000
    mib, answer = inspected_in_a_fresh_process(data, tmp_path)
    assert "width=7000, height=7000" in answer
    assert mib < 40, f"inspecting the photo took {mib} MiB"


def test_the_bomb_of_the_report_is_refused_from_its_header_in_little_memory(tmp_path):
    data = flat_png(10_000, 9_999)  # ~290 KB; decoded in full it took 370 MB
    mib, answer = inspected_in_a_fresh_process(data, tmp_path)
    assert answer == "too_big" and mib < 40, (mib, answer)
