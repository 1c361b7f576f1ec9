"""The digests of the features imports read, per unit version (migration 0019): SQL only.

geo/import_digest.py says what a digest is; services/imports.py decides with them.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import text
from sqlalchemy.orm import Session


def current(session: Session) -> dict[str, bytes]:
    """Code → digest of every current unit version that has one."""
    # A plain cursor: half a million rows through SQLAlchemy's result rows cost seconds.
    cursor = session.connection().connection.cursor()
    cursor.execute(
        """SELECT v.code, d.digest FROM unit_versions v
           JOIN unit_import_digests d ON d.version_id = v.id
           WHERE v.valid_to IS NULL"""
    )
    return {code: bytes(digest) for code, digest in cursor.fetchall()}


def record(session: Session, digests: Mapping[str, bytes]) -> None:
    """Store `digests` (code → digest) for the current versions of those codes, replacing older ones."""
    if not digests:
        return
    cursor = session.connection().connection.cursor()
    # COPY, not an array parameter: half a million codes and digests as arrays cost seconds to send.
    cursor.execute("CREATE TEMP TABLE import_digests_in (code text, digest bytea) ON COMMIT DROP")
    with cursor.copy("COPY import_digests_in (code, digest) FROM STDIN") as copy:
        for code, digest in digests.items():
            copy.write_row((code, digest))
    session.execute(
        text(
            """INSERT INTO unit_import_digests (version_id, digest)
               SELECT v.id, i.digest FROM import_digests_in i
               JOIN unit_versions v ON v.code = i.code AND v.valid_to IS NULL
               ON CONFLICT (version_id) DO UPDATE SET digest = EXCLUDED.digest"""
        )
    )
    session.execute(text("DROP TABLE import_digests_in"))
