"""GDAL's own command-line tools (Debian's gdal-bin) reading what the service writes, as a GIS user would."""

from __future__ import annotations

import subprocess


def ogrinfo(path) -> str:
    """`ogrinfo -al -so` on a file as a GIS user runs it: no warning, no error; its summary."""
    result = subprocess.run(["ogrinfo", "-al", "-so", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr and "ERROR" not in result.stderr, result.stderr
    return result.stdout


def check_gdal_reads(path, layer: str, count: int) -> None:
    """GDAL reads the file without a word: the layer, its feature count, CRS EPSG:4490."""
    summary = ogrinfo(path)
    assert f"Layer name: {layer}" in summary, summary
    assert f"Feature Count: {count}\n" in summary, summary
    assert 'ID["EPSG",4490]' in summary, summary  # the layer's CRS is CGCS2000, named by its code
