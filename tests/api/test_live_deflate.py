"""The live feed's shared deflate segments: any sequence of them is one valid zlib stream."""

from __future__ import annotations

import zlib

from hypothesis import given
from hypothesis import strategies as st

from api.live_deflate import DeflatedStream, accepts_deflate, adler32_combine, segment

chunks = st.lists(st.binary(max_size=3000), max_size=12)


@given(st.binary(max_size=5000), st.binary(max_size=5000))
def test_adler32_combine_is_the_checksum_of_the_concatenation(a: bytes, b: bytes) -> None:
    assert adler32_combine(zlib.adler32(a), zlib.adler32(b), len(b)) == zlib.adler32(a + b)


@given(chunks)
def test_segments_sent_one_after_another_inflate_to_what_was_sent(parts: list[bytes]) -> None:
    out = DeflatedStream()
    wire = b"".join(out.send(segment(p)) for p in parts) + out.end()
    inflate = zlib.decompressobj()
    assert inflate.decompress(wire) == b"".join(parts)
    assert inflate.eof and not inflate.unused_data  # the end is there and its checksum is right


def test_each_segment_inflates_as_soon_as_it_arrives() -> None:
    """A browser shows an event when its segment arrives, not when the stream ends."""
    out, inflate = DeflatedStream(), zlib.decompressobj()
    for text in (b": connected\r\n\r\n", b"event: created\r\ndata: {}\r\n\r\n" * 50, b": ping\r\n\r\n"):
        assert inflate.decompress(out.send(segment(text))) == text


def test_a_segment_is_the_same_bytes_whichever_stream_sends_it() -> None:
    """Shared by every stream: the zlib header goes first on each stream, not into the segment."""
    shared = segment(b"data: 1\r\n\r\n")
    first, later = DeflatedStream(), DeflatedStream()
    later.send(segment(b": connected\r\n\r\n"))
    assert first.send(shared).endswith(shared.data) and later.send(shared) == shared.data


def test_accept_encoding_is_read_as_clients_send_it() -> None:
    assert accepts_deflate("gzip, deflate, br, zstd")  # Chromium
    assert accepts_deflate("DEFLATE;q=0.5")
    assert not accepts_deflate("gzip, deflate;q=0")
    assert not accepts_deflate("identity") and not accepts_deflate(None) and not accepts_deflate("")
