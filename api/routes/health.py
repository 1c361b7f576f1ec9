"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from api.deps import SessionDep
from api.schemas.units import Health
from store.migrate import current_revision

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health(session: SessionDep) -> dict:
    """The service is up, the database answers, and its schema revision and PostGIS version."""
    postgis = session.execute(text("SELECT postgis_lib_version()")).scalar_one()
    return {
        "status": "ok",
        "database": "ok",
        "schema": current_revision(session.connection()),
        "postgis": postgis,
    }
