"""Service settings: environment variables with the prefix GRIDMAP_, validated once."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
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
    # `gridmap ha up`: a local three-node Patroni + etcd cluster for development, tests and
    # benchmarks. etcd takes the base port and the next; the nodes' PostgreSQL ports follow, then
    # their Patroni REST ports. Below the kernel's ephemeral range (32768+), where an outgoing
    # connection may hold a port for a moment.
    ha_base_port: int = Field(default=25440, ge=1024, le=65500)
    # Reads on standbys (store.standby_reads): off by default, every read goes to the primary.
    read_from_standby: bool = Field(
        default=False, description="Send reads (GET) to a standby of GRIDMAP_DATABASE_URL's hosts"
    )
    read_database_url: str | None = Field(
        default=None, description="The hosts to read from (multi-host URL); setting it turns standby reads on"
    )
    read_max_lag_s: float = Field(
        default=5.0, gt=0, description="A standby whose data may be older than this is not read from"
    )
    read_your_writes_s: float = Field(
        default=10.0,
        ge=0,
        description="How long a write's WAL position is kept for its client (cookie; user name in a process)",
    )
    # A switchover leaves no primary for a few seconds: requests wait for the new one (store.connect_wait).
    database_wait_s: float = Field(
        default=10.0,
        ge=0,
        le=60,
        description="How long a request waits for a database server (a switchover) before 503",
    )

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

    # Accounts
    secret_key: SecretStr | None = Field(
        default=None,
        description="Key for token hashes; required (32+ characters) unless GRIDMAP_DEMO is set",
    )
    demo: bool = Field(
        default=False, description="Demo mode: demo users, and a generated secret if none is set"
    )
    max_request_bytes: int = Field(
        default=64 * 1024 * 1024, gt=0, description="Largest request body accepted"
    )
    login_per_minute: int = Field(
        default=10, gt=0, description="Sign-in attempts per client address and minute"
    )
    public_intake_per_minute: int = Field(
        default=120, gt=0, description="Anonymous reports accepted per client address and minute"
    )
    open311_public_read: bool = Field(
        default=True,
        description="Open311 service requests readable without signing in (no personal data); "
        "false: reading them needs an account with read_cases",
    )
    open311_public_reads_per_minute: int = Field(
        default=120, gt=0, description="Anonymous Open311 reads of requests per client address and minute"
    )
    open311_contact: str = Field(
        default="网格化服务管理中心 Grid service management centre (12345 hotline)",
        description="Who to contact about the Open311 endpoint, shown in its discovery document",
    )
    login_free_failures: int = Field(
        default=3, ge=0, description="Failed logins of one user name from one address before delays"
    )
    login_delay_base_s: float = Field(
        default=1.0, gt=0, description="Delay after the first counted failure; doubles with each next one"
    )
    login_delay_max_s: float = Field(default=900.0, gt=0, description="Longest delay between tries")
    trusted_proxies: str = Field(
        default="",
        description="Reverse proxies (addresses or CIDR ranges, comma-separated, or *) whose "
        "X-Forwarded-For and X-Forwarded-Proto are believed; empty: none, the peer is the client",
    )

    # Live feed (GET /cases/stream)
    max_streams_per_user: int = Field(
        default=5, gt=0, description="Live feeds one user may hold open at once, per server process"
    )
    max_streams: int = Field(
        default=1000, gt=0, description="Live feeds one server process holds open at most"
    )

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
    refuse_outside_units: bool = Field(
        default=False,
        description="Refuse reports outside every unit with 422 (false: accepted, flagged, for the county)",
    )
    max_photos: int = Field(default=6, ge=0, description="Photos per case")
    max_photo_bytes: int = Field(default=8 * 1024 * 1024, gt=0, description="Size limit of one photo")
    background_jobs: bool = Field(
        default=True, description="Run periodic jobs (escalation of overdue cases) inside `gridmap serve`"
    )
    escalation_interval_s: float = Field(
        default=60.0, gt=0, description="How often a server looks for overdue cases to escalate"
    )

    # Live map (GET /map). No tile source = no background tiles at all: the map draws the county,
    # its streets, communities and grids itself and requests nothing outside the service.
    map_tile_url: str | None = Field(
        default=None,
        description="Background raster tiles, a Leaflet URL template ({z}/{x}/{y}, {s}); unset = none",
    )
    map_tile_attribution: str = Field(default="", description="Attribution shown for the tile source")
    map_tile_max_zoom: int = Field(default=18, ge=1, le=22, description="Deepest zoom the tile source has")
    map_tile_crs: Literal["wgs84", "gcj02"] = Field(
        default="wgs84",
        description="Coordinates of the tile source: wgs84 (OSM, Tianditu) or gcj02 (Amap, Tencent); "
        "on gcj02 tiles the map shifts every overlay to match",
    )
    map_tile_subdomains: str = Field(default="abc", description="What {s} in the tile URL cycles through")
    map_case_clusters_above: int = Field(
        default=500, ge=0, le=5000,
        description="The live map clusters the open cases in view (below z15) when more than this many",
    )  # fmt: skip

    # Coverage analysis (issue 4): what counts as a sliver, as noise, and the size norm
    coverage_sliver_width_m: float = Field(
        default=1.0,
        gt=0,
        description="A gap, overlap or overhang no wider than this anywhere is reported as a sliver",
    )
    coverage_min_area_m2: float = Field(
        default=0.01, ge=0, description="Gaps and overlaps smaller than this are numerical noise"
    )
    coverage_precision_m: float = Field(
        default=0.001, gt=0, description="Coverage overlays snap to this grid: thinner noise vanishes"
    )
    size_norm_urban_min: int = Field(default=300, ge=0, description="Fewest households of an urban grid")
    size_norm_urban_max: int = Field(default=500, ge=0, description="Most households of an urban grid")
    size_norm_rural_min: int = Field(default=0, ge=0, description="Fewest households of a rural grid")
    size_norm_rural_max: int = Field(default=300, ge=0, description="Most households of a rural grid")
    crosswalk_min_share: float = Field(
        default=0.01,
        ge=0,
        lt=1,
        description="A unified grid holding less of a legacy polygon than this share is digitising noise",
    )

    # Patrols (巡查, issue 16): coverage, stale grids, retention of tracks (personal data), plausibility
    patrol_coverage_distance_m: float = Field(
        default=50.0, gt=0, le=1000, description="A grid's area this close to a track counts as patrolled"
    )
    patrol_stale_days: int = Field(
        default=7, ge=1, description="Coverage analysis reports grids not patrolled in this many days"
    )
    patrol_retention_days: int = Field(
        default=180, ge=1, description="Patrol tracks older than this are deleted (serve's periodic job, CLI)"
    )
    receipt_retention_days: int = Field(
        default=30, ge=1,
        description="A keyed report's first answer is kept this long for its retries (serve's periodic job)",
    )  # fmt: skip
    patrol_max_speed_mps: float = Field(
        default=40.0, gt=0, description="A point implying a faster move from the last one is dropped"
    )
    patrol_max_accuracy_m: float = Field(default=200.0, gt=0, description="Less accurate points are dropped")
    patrol_min_step_m: float = Field(default=10.0, ge=0, description="Thinning: closer points are dropped")
    patrol_max_points: int = Field(default=20_000, gt=1, description="Most points in one patrol upload")


class ConfigError(ValueError):
    """A setting that makes the service unsafe or unusable; the message says what to set."""


MIN_SECRET_LENGTH = 32


def service_secret(settings: Settings) -> str:
    """The secret key for tokens: the configured one, or in demo mode one kept in GRIDMAP_HOME."""
    secret = settings.secret_key.get_secret_value() if settings.secret_key else ""
    if len(secret) >= MIN_SECRET_LENGTH:
        return secret
    if not settings.demo:
        raise ConfigError(
            f"set GRIDMAP_SECRET_KEY to a random string of at least {MIN_SECRET_LENGTH} characters "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`), "
            "or GRIDMAP_DEMO=1 for the demo"
        )
    path = settings.home / "demo-secret"
    if not path.exists():
        import secrets

        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
