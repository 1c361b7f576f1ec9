"""Where the API serves a case's photos: the store keeps photos by case and number, the API
gives each its URL (GET /cases/{id}/photos/{seq})."""

from __future__ import annotations

from typing import Any


def photo_url(case_id: int, seq: int) -> str:
    """The URL of one photo of a case."""
    return f"/cases/{case_id}/photos/{seq}"


def with_photo_urls(detail: dict[str, Any]) -> dict[str, Any]:
    """A case's detail (store.cases.detail_of) with each photo's URL."""
    photos = [{"url": photo_url(detail["id"], p["seq"]), **p} for p in detail["photos"]]
    return {**detail, "photos": photos}
