"""The parameters a draft plan's edit takes: defined once, checked alike for the API and the CLI.

The API's edit body (api.routes.plans.EditIn) is these fields plus the operation and a GeoJSON
geometry; `gridmap plan edit` takes them as options, with these descriptions as their help, and
checks them through this model.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from geo.codes import CODE_PATTERN, SpecialType


class EditFields(BaseModel):
    """The units and attributes an edit names (which ones an operation needs: geo.plan_edits)."""

    model_config = ConfigDict(extra="forbid")
    code: str | None = Field(
        None, pattern=CODE_PATTERN, description="The unit changed (replace, split, move, retire)"
    )
    codes: list[str] | None = Field(
        None, description="The units merged (merge), or the two reshaped (reshape)"
    )
    into: str | None = Field(
        None, pattern=CODE_PATTERN, description="Merge/retire: the unit that takes the area"
    )
    to: str | None = Field(None, pattern=CODE_PATTERN, description="Move: the grid that takes the micro-grid")
    parent: str | None = Field(
        None, pattern=CODE_PATTERN, description="Create: the parent (default: the plan's unit)"
    )
    name: str | None = Field(None, min_length=1, max_length=100, description="New name (create, replace)")
    names: list[str] | None = Field(None, description="Split: names of the new pieces, in reading order")
    kind: str | None = Field(None, pattern="^(urban|rural|special)$", description="urban, rural or special")
    special_type: SpecialType | None = Field(None, description="For special grids")
    households: int | None = Field(None, ge=0, description="Households (else estimated by area)")
    population: int | None = Field(None, ge=0, description="Residents (else estimated by area)")
    carve: bool | None = Field(None, description="Create: cut the new unit out of its base siblings")

    def params(self) -> dict[str, Any]:
        """The edit's parameters as geo.plans.Edit keeps them: only those given."""
        return self.model_dump(include=set(EditFields.model_fields), exclude_none=True, mode="json")


def help_of(field: str) -> str:
    """A field's description, for a command line option's help."""
    return EditFields.model_fields[field].description or ""
