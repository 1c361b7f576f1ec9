"""Bulk loading of the cases table a month at a time, without its indexes and triggers in the way.

COPY into a table with nine indexes (a GiST one among them), a row trigger that registers each id
and another that writes a live-feed event, costs many times the COPY itself. So each month's new
rows go into a bare staging table (`cases_2026_01_load`: the columns, defaults and checks of
`cases`, nothing else); when every chunk is in, each month is swapped in one transaction: its
stored rows join the staging table, which gets the partitioned table's indexes (built once, in
bulk), the old partition is detached and dropped, and the staging table is attached in its place
(PostgreSQL then adopts the matching indexes, clones the triggers and foreign keys and checks
them). `case_history`'s plain indexes are dropped for the load and built again after it, in the
same transaction. For benchmark databases: writers to `cases` wait while a month is swapped.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

STAGING = "{}_load"


@dataclass(frozen=True)
class ParentIndex:
    """An index of the partitioned `cases` table: its name, definition and (for the primary key)
    its constraint's definition."""

    name: str
    definition: str
    constraint: str | None

    def statement(self, table: str) -> str:
        """The statement that makes the same index on one partition-to-be, named for it."""
        name = f"{table}_{self.name.removeprefix('cases_')}"
        if self.constraint:
            return f"ALTER TABLE {table} ADD CONSTRAINT {name} {self.constraint}"
        return (
            f"CREATE INDEX {name} ON public.{table} {self.definition.split(' ON ONLY public.cases ', 1)[1]}"
        )


def parent_indexes(conn: psycopg.Connection) -> list[ParentIndex]:
    """The partitioned table's indexes (each partition has one of each)."""
    rows = conn.execute(
        """SELECT i.relname, pg_get_indexdef(x.indexrelid), pg_get_constraintdef(c.oid)
           FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
           LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid
           WHERE x.indrelid = 'cases'::regclass ORDER BY i.relname"""
    ).fetchall()
    return [ParentIndex(*row) for row in rows]


def case_columns(conn: psycopg.Connection) -> str:
    """The columns of `cases`, in order (a partition and its staging table have the same)."""
    names = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'cases'::regclass AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum"
    ).fetchall()
    return ", ".join(name for (name,) in names)


def create_staging(conn: psycopg.Connection, partitions: list[str]) -> None:
    """A bare staging table for each partition (one left by a failed load is replaced)."""
    for partition in partitions:
        staging = STAGING.format(partition)
        conn.execute(f"DROP TABLE IF EXISTS {staging}")
        conn.execute(f"CREATE TABLE {staging} (LIKE cases INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")


def swap_in(conn: psycopg.Connection, partition: str, indexes: list[ParentIndex], columns: str) -> None:
    """Replace `partition` by its staging table holding its stored rows too, in one transaction."""
    staging = STAGING.format(partition)
    with conn.transaction():
        conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
        conn.execute(f"LOCK TABLE {partition} IN SHARE MODE")  # its rows are copied: no writer meanwhile
        conn.execute(f"INSERT INTO {staging} ({columns}) SELECT {columns} FROM {partition}")
        for index in indexes:
            conn.execute(index.statement(staging))
        bound = conn.execute(
            "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE oid = %s::regclass", (partition,)
        ).fetchone()[0]
        conn.execute(f"ALTER TABLE cases DETACH PARTITION {partition}")
        conn.execute(f"DROP TABLE {partition}")
        conn.execute(f"ALTER TABLE {staging} RENAME TO {partition}")
        for index in indexes:
            old, new = (f"{t}_{index.name.removeprefix('cases_')}" for t in (staging, partition))
            conn.execute(f"ALTER INDEX {old} RENAME TO {new}")
        conn.execute(f"ALTER TABLE cases ATTACH PARTITION {partition} {bound}")


def drop_history_indexes(conn: psycopg.Connection) -> list[str]:
    """Drop `case_history`'s indexes that back no constraint: the statements that make them again."""
    rows = conn.execute(
        """SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x
           JOIN pg_class i ON i.oid = x.indexrelid
           WHERE x.indrelid = 'case_history'::regclass
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)"""
    ).fetchall()
    for name, _ in rows:
        conn.execute(f"DROP INDEX {name}")
    return [definition for _, definition in rows]
