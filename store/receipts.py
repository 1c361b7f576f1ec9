"""Receipts: the first answer to each report sent with an Idempotency-Key, as it was sent.

A retry of the report gets this answer again, not the case as it is now: later history, notes and
names of whoever handled it since are not the reporter's to see (and the key alone is no proof
of being allowed to). Written in the intake's own transaction (see api.intake). Kept for
GRIDMAP_RECEIPT_RETENTION_DAYS, then deleted by serve's periodic job: a retry that late is answered
with the case's id alone.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session


def keep(session: Session, answers: dict[int, str]) -> None:
    """Store the first answers (JSON text) of new keyed cases, by case id."""
    if not answers:
        return
    # One JSON document, as intake's other statements take their rows: sent as text[] instead,
    # psycopg escaped every quote of the answers in Python (0.29 ms of the service's CPU a report).
    rows = json.dumps(list(answers.items()), ensure_ascii=False)
    session.execute(KEEP, {"rows": rows})


KEEP = text(
    """INSERT INTO case_receipts (case_id, answer)
       SELECT CAST(e ->> 0 AS bigint), e ->> 1 FROM json_array_elements(CAST(:rows AS json)) e"""
)


def first_answers(session: Session, case_ids: list[int]) -> dict[int, str]:
    """The stored first answers (JSON text) of these cases, by case id; a case without one is absent."""
    if not case_ids:
        return {}
    rows = session.execute(
        text("SELECT case_id, answer FROM case_receipts WHERE case_id = ANY(:ids)"),
        {"ids": sorted(set(case_ids))},
    )
    return {row.case_id: row.answer for row in rows}


def delete_expired(session: Session, retention_days: int, now: datetime | None = None) -> int:
    """Delete the receipts stored more than `retention_days` ago; how many."""
    now = now or session.execute(text("SELECT now()")).scalar_one()
    limit = now - timedelta(days=retention_days)
    deleted = session.execute(text("DELETE FROM case_receipts WHERE stored_at < :limit"), {"limit": limit})
    return deleted.rowcount
