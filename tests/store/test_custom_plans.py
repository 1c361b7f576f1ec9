"""The case list on the service's connections (generic plans for everything else) is planned for
its own parameters (store.custom_plans): a unit's prefix and the statuses pick the indexes of
each month's partition, instead of a plan that reads every case."""

from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from cases.filters import CaseFilter
from cases.rules import Rules
from services import case_reads
from services.escalation import escalate_overdue
from store.engine import SERVICE_CONNECT_ARGS

PLANS = """SELECT coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0)
           FROM pg_prepared_statements WHERE statement LIKE '%FROM cases c WHERE%'"""


def test_the_case_list_is_planned_for_its_parameters(database_url, settings):
    """Both of the list's statements (count and page) get plans of their own; the connection's
    generic mode is back afterwards."""
    engine = create_engine(database_url, connect_args=SERVICE_CONNECT_ARGS)
    with Session(engine) as session:
        f = CaseFilter(unit="410101001", status=["dispatched", "accepted"], light="red")
        for _ in range(3):  # psycopg prepares a statement the second time it runs
            case_reads.list_cases(session, f, Rules.load(settings))
        generic, custom = session.execute(text(PLANS)).one()
        mode = session.execute(text("SHOW plan_cache_mode")).scalar_one()
    engine.dispose()
    assert generic == 0 and custom >= 2
    assert mode == "force_generic_plan"


def test_the_escalation_pass_is_planned_for_its_parameters(database_url, settings):
    """The pass's search for overdue cases gets a plan for its clock and batch (a generic one sorted
    every overdue case of every month)."""
    engine = create_engine(database_url, connect_args=SERVICE_CONNECT_ARGS)
    with Session(engine) as session:
        for _ in range(3):
            escalate_overdue(session, Rules.load(settings))
        generic, custom = session.execute(text(PLANS.replace("FROM cases c WHERE", "SKIP LOCKED"))).one()
        session.rollback()
    engine.dispose()
    assert generic == 0 and custom >= 1


def test_the_service_never_compiles_a_plan(database_url):
    """No JIT on the service's connections, however costly a plan looks (the thresholds at 0 here;
    at 10 M cases intake's generic read-back of a batch was estimated costly and compiled for 27 s)."""
    engine = create_engine(database_url, connect_args=SERVICE_CONNECT_ARGS)
    with engine.connect() as conn:
        conn.execute(text("SET jit_above_cost = 0"))
        explain = "EXPLAIN (ANALYZE) SELECT count(*) FROM cases WHERE id > 0"
        plan = "\n".join(conn.execute(text(explain)).scalars())
    engine.dispose()
    assert "JIT" not in plan
