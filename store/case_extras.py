"""What Open311 shows of cases beyond their rows: the last note of each one's history and its first photo."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

NOTES_AND_PHOTOS = text(
    """SELECT c.id,
              (SELECT h.note FROM case_history h WHERE h.case_id = c.id AND h.note IS NOT NULL
               ORDER BY h.id DESC LIMIT 1) AS note,
              (SELECT min(p.seq) FROM case_photos p WHERE p.case_id = c.id) AS photo
       FROM unnest(CAST(:ids AS bigint[])) AS c(id)"""
)


def notes_and_photos(session: Session, ids: list[int]) -> dict[int, tuple[str | None, int | None]]:
    """Per case: the last note of its history and the number of its first photo."""
    rows = session.execute(NOTES_AND_PHOTOS, {"ids": ids}).all()
    return {r.id: (r.note, r.photo) for r in rows}
