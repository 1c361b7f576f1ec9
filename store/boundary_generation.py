"""The boundary generation: a number that grows with every change of unit versions.

The trigger of migration 0007 counts every statement that writes unit_versions (a publish, an
import, a CLI edit) in `unit_change_count`, in the writing transaction, so a reader sees the count
that belongs to the units it sees. Maps put it in their tile URLs: a new number is a new URL, so
no browser or proxy cache serves the old boundaries, and open maps poll it to redraw.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


def generation(session: Session) -> int:
    """The current boundary generation (0 before any unit was written)."""
    found = session.execute(text("SELECT n FROM unit_change_count WHERE id = 1")).scalar()
    return int(found or 0)


def database_identity(session: Session) -> tuple[str, str]:
    """Names this database: (server and database name, the oids that a re-created database changes).

    With `generation`, it names the boundaries a process can cache (services.grid_index).
    """
    row = session.execute(
        text(
            """SELECT coalesce(host(inet_server_addr()), 'local'), coalesce(inet_server_port(), 0),
                      current_database(), d.oid, 'unit_versions'::regclass::oid
               FROM pg_database d WHERE d.datname = current_database()"""
        )
    ).one()
    return "/".join(map(str, row[:3])), "/".join(map(str, row[3:]))
