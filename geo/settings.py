"""Service settings: environment variables with the prefix GRIDMAP_, validated once."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_DIR = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Everything an operator can set. Nothing here needs an env file to be testable."""

    model_config = SettingsConfigDict(env_prefix="GRIDMAP_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of a PostGIS database; unset = start the embedded cluster",
    )
    home: Path = Field(
        default=PROJECT_DIR / ".gridmap",
        description="Project-local state: the embedded cluster's data, logs and password",
    )
    pg_bin_dir: Path | None = Field(
        default=None, description="PostgreSQL server binaries; found under /usr/lib/postgresql"
    )
    embedded_port: int = Field(default=54329, ge=1024, le=65535)
    embedded_database: str = "gridmap"

    snap_tolerance_m: float = Field(
        default=30.0, ge=0, description="A point this close to a grid but outside every grid snaps to it"
    )
    outside_parent_tolerance_m: float = Field(
        default=0.5,
        ge=0,
        description="Overhangs thinner than twice this (rounding slivers) are not warned about",
    )
    outside_parent_refuse_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="A child with more than this share of its area outside its parent is refused",
    )
    max_import_features: int = Field(default=200_000, gt=0)

    # Cases
    categories_file: Path = Field(
        default=PROJECT_DIR / "data" / "categories.csv", description="The two-level case category table"
    )
    calendar_file: Path = Field(
        default=PROJECT_DIR / "data" / "calendar" / "china.csv",
        description="Public holidays and make-up working days of the working calendar",
    )
    departments_file: Path = Field(
        default=PROJECT_DIR / "data" / "departments.csv",
        description="County departments a street may summon (街镇吹哨、部门报到)",
    )
    duplicate_radius_m: float = Field(
        default=50.0,
        ge=0,
        description="An open case of the same category this close is a suggested duplicate",
    )
    duplicate_window_h: float = Field(default=24.0, ge=0, description="... and reported this recently")
    max_photos: int = Field(default=6, ge=0, description="Photos per case")
    max_photo_bytes: int = Field(default=8 * 1024 * 1024, gt=0, description="Size limit of one photo")
    background_jobs: bool = Field(
        default=True, description="Run periodic jobs (escalation of overdue cases) inside `gridmap serve`"
    )
    escalation_interval_s: float = Field(
        default=60.0, gt=0, description="How often a server looks for overdue cases to escalate"
    )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
