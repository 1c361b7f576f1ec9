"""What case decisions consult: the category table, the working calendar, departments, tolerances."""

from __future__ import annotations

from dataclasses import dataclass

from cases.categories import CategoryTable
from cases.model import load_departments
from cases.worktime import WorkCalendar
from geo.settings import Settings


@dataclass(frozen=True)
class Rules:
    """What case operations consult: categories, the calendar, departments and tolerances."""

    categories: CategoryTable
    calendar: WorkCalendar
    departments: dict[str, str]
    snap_tolerance_m: float = 30.0
    duplicate_radius_m: float = 50.0
    duplicate_window_h: float = 24.0
    refuse_outside_units: bool = False  # refuse reports outside every unit (else flag them)

    @classmethod
    def load(cls, settings: Settings) -> Rules:
        """Loaded from the data files the settings name."""
        return cls(
            categories=CategoryTable.load(settings.categories_file),
            calendar=WorkCalendar.load(settings.calendar_file),
            departments=load_departments(settings.departments_file),
            snap_tolerance_m=settings.snap_tolerance_m,
            duplicate_radius_m=settings.duplicate_radius_m,
            duplicate_window_h=settings.duplicate_window_h,
            refuse_outside_units=settings.refuse_outside_units,
        )
