"""`GET /map/boundaries`: the boundary generation that open maps poll (see store.boundary_generation)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel

from api.deps import SessionDep
from services import map_views

router = APIRouter(tags=["map"])
POLL_S = 4  # how often open maps ask: a published boundary shows within this plus a tile load


class BoundariesOut(BaseModel):
    """The current boundary generation; tile URLs carry it as `g`, a new one means redraw."""

    generation: int
    poll_s: int = POLL_S


@router.get("/map/boundaries")
def boundaries(session: SessionDep, response: Response) -> BoundariesOut:
    """The boundary generation (grows with every change of units: publish, import)."""
    response.headers["Cache-Control"] = "no-store"
    return BoundariesOut(generation=map_views.generation(session))
