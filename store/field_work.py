"""A handler's moves from the field: each made once per idempotency key, with 处置后 photos."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from cases.model import PhotoUpload
from cases.photos import AFTER as AFTER  # 处置后: the stage the store keeps photos under
from cases.photos import BEFORE as BEFORE
from geo.crs import STORAGE_SRID
from store.cases import IdempotencyConflict


def claim_move_key(session: Session, key: str, case_id: int, request_hash: str) -> bool:
    """True when the key is new (the move is to be made now); False when a move made with it
    earlier is being sent again. A key used for another move or case is an IdempotencyConflict.

    The key row is inserted in the move's own transaction: a move that fails (409, 422) leaves no
    key behind, and two requests with one key at once wait for each other on the unique index.
    """
    claimed = session.execute(
        text(
            """INSERT INTO case_move_keys (key, case_id, request_hash) VALUES (:key, :case_id, :hash)
               ON CONFLICT (key) DO NOTHING RETURNING key"""
        ),
        {"key": key, "case_id": case_id, "hash": request_hash},
    ).first()
    if claimed is not None:
        return True
    earlier = session.execute(
        text("SELECT case_id, request_hash FROM case_move_keys WHERE key = :key"), {"key": key}
    ).one()
    if earlier.case_id != case_id or earlier.request_hash != request_hash:
        raise IdempotencyConflict(
            f"Idempotency-Key {key} was used for another move (case {earlier.case_id}); make a new key"
        )
    return False


def add_photos(session: Session, case_id: int, uploads: list[PhotoUpload], stage: str) -> list[int]:
    """Store checked photos of a case at a stage (before/after), numbered after its others."""
    seqs: list[int] = []
    for upload in uploads:
        photo, gps = upload.photo, upload.photo.gps
        seq = session.execute(
            text(
                f"""INSERT INTO case_photos (case_id, seq, content_type, width, height, bytes, sha256, gps,
                        taken_at, stage)
                    SELECT :case_id, coalesce(max(seq), 0) + 1, :content_type, :width, :height, :bytes,
                        :sha256,
                        CASE WHEN :has_gps THEN ST_SetSRID(ST_MakePoint(:lon, :lat), {STORAGE_SRID}) END,
                        :taken_at, :stage
                    FROM case_photos WHERE case_id = :case_id
                    RETURNING seq"""
            ),
            {
                "case_id": case_id,
                "content_type": photo.content_type,
                "width": photo.width,
                "height": photo.height,
                "bytes": upload.data,
                "sha256": upload.sha256,
                "has_gps": gps is not None,
                "lon": gps[0] if gps else None,
                "lat": gps[1] if gps else None,
                "taken_at": photo.taken_at,
                "stage": stage,
            },
        ).scalar_one()
        seqs.append(seq)
    return seqs
