"""Conditional GET for generated answers: an ETag of the bytes, and 304 when the client has them.

Starlette's StaticFiles does this for files; tiles and other answers made per request need it by
hand. The tag is weak (W/): the gzip middleware may change the bytes on the wire, not the content.
"""

from __future__ import annotations

import hashlib

from fastapi import Request


def etag_of(*parts: bytes) -> str:
    """A weak ETag of the content (BLAKE2b, 128 bits: no collision between two versions of a tile)."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))  # lengths first: ("ab", "c") differs from ("a", "bc")
        digest.update(part)
    return f'W/"{digest.hexdigest()}"'


def client_has(request: Request, etag: str) -> bool:
    """Whether If-None-Match names this ETag (weak comparison, RFC 9110 §13.1.2) or is `*`."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    if header.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == opaque for tag in header.split(","))
