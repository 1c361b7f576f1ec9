"""A plan edit as the API and the editor's preview take it: its fields (geo.plan_fields) and its
geometry, read as GeoJSON in the CRS it names and converted to storage lon/lat."""

from __future__ import annotations

from typing import Any

import shapely
from pydantic import Field
from shapely.geometry import shape

from api.errors import InvalidParameter
from geo import crs
from geo.plan_fields import EditFields
from geo.plans import Edit, Operation


class EditIn(EditFields):
    """One edit: the operation, the units and attributes it needs (geo.plan_fields), a GeoJSON geometry."""

    operation: Operation
    geometry: dict[str, Any] | None = Field(
        None, description="GeoJSON geometry: a polygon (replace, create) or the line to split along"
    )
    crs: str = Field(
        crs.CGCS2000, description="Coordinates of `geometry`: cgcs2000 (storage), wgs84, gcj02, ..."
    )

    def to_edit(self) -> Edit:
        """The domain edit, with the geometry in storage lon/lat."""
        return Edit(self.operation, self.params(), _storage_geometry(self.geometry, self.crs))


def _storage_geometry(geojson: dict[str, Any] | None, crs_name: str) -> shapely.Geometry | None:
    if geojson is None:
        return None
    try:
        geometry = shape(geojson)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidParameter(f"geometry is not a GeoJSON geometry: {exc}") from None
    if geometry.is_empty:
        raise InvalidParameter("geometry is empty")
    stored = crs.geometry_to_storage(geometry, crs_name)
    xy = shapely.get_coordinates(stored)
    crs.check_plausible(xy[:, 0], xy[:, 1])
    return stored
