"""Statements over the cases table planned for their own parameters, on the service's connections.

The service's connections plan each statement once, for any parameters (store.engine's
SERVICE_CONNECT_ARGS: `plan_cache_mode = force_generic_plan`), which spares the planning of its
point lookups. A generic plan of the case list cannot use what its parameters say: a unit's code
prefix (`LIKE :prefix`) gives no index range, and a list of statuses does not imply the open-case
indexes' predicate, so over a year of monthly partitions it read every case (at 1 M cases over the
province ~580 ms a list where a plan for the parameters took ~60 ms, planning included, on a busy
machine). Inside `custom_plans` each statement is planned for its parameters again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.orm import Session


@contextmanager
def custom_plans(session: Session) -> Iterator[None]:
    """Plan the statements run inside for their parameters; the transaction's mode is restored after."""
    before = session.execute(text("SELECT current_setting('plan_cache_mode')")).scalar_one()
    session.execute(text("SELECT set_config('plan_cache_mode', 'force_custom_plan', true)"))
    yield  # on an error the transaction ends, and the setting with it (it is local to it)
    session.execute(text("SELECT set_config('plan_cache_mode', :mode, true)"), {"mode": before})
