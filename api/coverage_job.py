"""The background job that refreshes stored coverage reports after a publish (issue 19 §2):
every few seconds it asks for plans published since its last look and, when there are, merges the
changed groups into the reports above them (services.coverage_refresh), in a transaction of its own."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from fastapi import FastAPI

from geo.coverage import Tolerances
from services import coverage_refresh

log = logging.getLogger("gridmap.coverage")

REFRESH_INTERVAL_S = 5.0  # how soon after a publish the stored reports follow it


async def refresh_coverage_periodically(app: FastAPI, interval_s: float = REFRESH_INTERVAL_S) -> None:
    """Refresh the reports above every publish, from the service's start on."""
    since: datetime | None = None
    while True:
        try:
            since = await asyncio.to_thread(refresh_once, app, since)
        except Exception:  # keep the job alive through a database restart
            log.exception("coverage refresh failed; trying again in %s s", interval_s)
        await asyncio.sleep(interval_s)


def refresh_once(app: FastAPI, since: datetime | None) -> datetime:
    """One step: the plans published after `since` (None: start from now); the new mark."""
    tolerances = Tolerances.from_settings(app.state.settings)
    with app.state.sessions() as session:
        if since is None:
            return coverage_refresh.now(session)
        done, mark = coverage_refresh.refresh_pending(session, tolerances, since)
        session.commit()
    for refreshed in done:
        log.info("coverage report %d of %s refreshed after a publish", refreshed.report_id, refreshed.unit)
    return mark
