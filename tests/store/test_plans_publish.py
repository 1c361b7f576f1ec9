"""Two publishes at the same time, in real transactions on a database of their own (they commit)."""

from __future__ import annotations

import threading

import pytest
from shapely.geometry import LineString, box
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from geo.plans import Edit, Operation, PlanConflict
from services import plan_publish, plans
from tests import factories as f
from tests.conftest import DB_PREFIX, county_database

HALF = f.SIZE / 2


@pytest.fixture(scope="module")
def committed(settings):
    """An engine on a fresh database holding the test county, committed."""
    engine = create_engine(county_database(settings, f"{DB_PREFIX}_plans"), pool_size=4)
    yield engine
    engine.dispose()


def versions(engine) -> list[tuple]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT code, version, valid_to IS NULL FROM unit_versions ORDER BY 1, 2"))
        return [tuple(r) for r in rows]


def test_concurrent_publishes_of_drafts_on_one_grid_one_wins_and_the_other_changes_nothing(
    committed, settings
):
    x = f.X0 + HALF - 0.004
    with Session(committed) as session, session.begin():
        first = plans.open_plan(session, f.COMMUNITY, "东移边界", author="a")
        for code, geometry in (
            (f.grid_code(1), box(f.X0, f.Y0 + HALF, x, f.Y0 + f.SIZE)),
            (f.grid_code(2), box(x, f.Y0 + HALF, f.X0 + f.SIZE, f.Y0 + f.SIZE)),
        ):
            plans.add_edit(session, first, Edit(Operation.REPLACE, {"code": code}, geometry), author="a")
        second = plans.open_plan(session, f.COMMUNITY, "拆分网格", author="b")
        cut = LineString([(f.X0 + 0.006, f.Y0 + HALF - 0.001), (f.X0 + 0.006, f.Y0 + f.SIZE + 0.001)])
        plans.add_edit(session, second, Edit(Operation.SPLIT, {"code": f.grid_code(1)}, cut), author="b")

    outcome: dict[str, object] = {}

    def publish_second() -> None:
        with Session(committed) as session:
            try:
                plan_publish.publish(session, second, settings, actor="b")
                session.commit()
                outcome["published"] = True
            except PlanConflict as exc:
                session.rollback()
                outcome["conflict"] = exc

    holder = Session(committed)
    try:
        plan_publish.publish(holder, first, settings, actor="a")  # holds its locks until commit
        rival = threading.Thread(target=publish_second)
        rival.start()
        rival.join(timeout=1.5)
        assert rival.is_alive(), "the second publish must wait for the first one's locks"
        holder.commit()
    finally:
        holder.close()
    rival.join(timeout=30)
    conflict = outcome.get("conflict")
    assert isinstance(conflict, PlanConflict), outcome
    assert [c["code"] for c in conflict.conflicts] == [f.grid_code(1)]
    assert conflict.conflicts[0]["by_plan"] == first
    # Exactly the first plan's versions, no trace of the second: no 005, 001 at version 2.
    assert versions(committed) == [
        (f.COUNTY, 1, True),
        (f.STREET, 1, True),
        (f.COMMUNITY, 1, True),
        (f.grid_code(1), 1, False),
        (f.grid_code(1), 2, True),
        (f.grid_code(2), 1, False),
        (f.grid_code(2), 2, True),
        (f.grid_code(3), 1, True),
        (f.grid_code(4), 1, True),
    ]
    with Session(committed) as session:
        statuses = dict(session.execute(text("SELECT id, status FROM plans")).all())
    assert statuses == {first: "published", second: "draft"}


def test_impact_in_an_autocommit_session_writes_nothing(committed, settings):
    """GET requests read in autocommit (api/deps.py): the rehearsed publish must still roll back."""
    cut = LineString([(f.X0 + 0.03, f.Y0 - 0.001), (f.X0 + 0.03, f.Y0 + HALF + 0.001)])
    with Session(committed) as session, session.begin():
        plan_id = plans.open_plan(session, f.COMMUNITY, "拆分东南网格", author="c")
        plans.add_edit(session, plan_id, Edit(Operation.SPLIT, {"code": f.grid_code(4)}, cut), author="c")
    before = versions(committed)
    with Session(committed.execution_options(isolation_level="AUTOCOMMIT")) as session:
        impact = plan_publish.impact(session, plan_id, settings)
    assert {u["code"]: u["change"] for u in impact["units"]} == {
        f.grid_code(4): "changed",
        f.grid_code(5): "created",
    }
    assert versions(committed) == before
