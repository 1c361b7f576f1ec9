"""Relating a legacy grid layer to the unified grids: load the grids near it, relate them (geo.crosswalk)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from geo import crosswalk
from store.coverage import grids_near


def relate(
    session: Session, legacy: Sequence[crosswalk.LegacyPolygon], *, min_share: float
) -> tuple[list[crosswalk.CrosswalkEntry], int]:
    """Each legacy polygon with the current grids it overlaps; and how many grids were compared."""
    grids = grids_near(session, [p.geometry for p in legacy])
    return crosswalk.crosswalk(legacy, grids, min_share=min_share), len(grids)
