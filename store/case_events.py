"""The live feed's event log (`case_events`): where a subscriber starts, and what it may read next.

A trigger on `cases` appends an event for every change, stamped with its writer's 64-bit
transaction id (xid8). Event ids are not in commit order (a slow transaction commits a lower id
late), so events are delivered in (txid, id) order and only below the horizon of the reading
statement's snapshot: the oldest transaction still running (migration 0009_events_horizon). Below
it every transaction has finished and every committed event is visible, so a cursor once passed
is never passed again by an event committing late: a reader sees each committed event once, in
order, and a client resuming from its last event id misses none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

EVENT_BATCH = 500  # events read from the log at a time


@dataclass(frozen=True, order=True)
class EventCursor:
    """Position in the event log: (transaction id, event id), in the order events are delivered."""

    txid: int
    id: int

    def __str__(self) -> str:
        return f"{self.txid}-{self.id}"

    @classmethod
    def parse(cls, text_: str) -> EventCursor:
        """From the `id` of a delivered event (SSE Last-Event-ID); ValueError if it is not one."""
        txid, dash, event_id = text_.partition("-")
        if not dash or not txid.isdigit() or not event_id.isdigit():
            raise ValueError(f"not an event id: {text_!r}")
        cursor = cls(int(txid), int(event_id))
        if cursor.txid >= 2**63 or cursor.id >= 2**63:  # xid8 and bigint: out of range for both
            raise ValueError(f"not an event id: {text_!r}")
        return cursor


START = EventCursor(0, 0)  # before every event


def event_head(session: Session) -> EventCursor:
    """The position after which a new subscriber's events start (now)."""
    row = session.execute(
        text(
            """SELECT txid::text::bigint AS txid, id FROM case_events
               WHERE txid < case_events_horizon()
               ORDER BY txid DESC, id DESC LIMIT 1"""
        )
    ).first()
    return EventCursor(row.txid, row.id) if row else START


def read_events(session: Session, after: EventCursor, limit: int = EVENT_BATCH) -> list[dict[str, Any]]:
    """Events after `after` in delivery order, none from a transaction that might still commit.

    One statement: the horizon and the rows come from the same snapshot (see the module's doc).
    """
    rows = session.execute(
        text(
            """SELECT txid::text::bigint AS txid, id, case_id, at, kind, body FROM case_events
               WHERE txid < case_events_horizon()
                 AND (txid, id) > (CAST(CAST(:txid AS text) AS xid8), :id)
               ORDER BY txid, id LIMIT :limit"""
        ),
        {"txid": after.txid, "id": after.id, "limit": limit},
    ).all()
    return [
        {
            "cursor": EventCursor(r.txid, r.id),
            "case_id": r.case_id,
            "at": r.at,
            "kind": r.kind,
            "body": r.body,
        }
        for r in rows
    ]
