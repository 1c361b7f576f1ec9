"""The one Jinja2 environment of the server-rendered pages: templates in api/templates/, every
value escaped (autoescape), the workflow's words and China time as filters and globals."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

from access.navigation import navigation
from access.roles import DESK_NAMES
from api.page_policy import page_headers
from cases import vocabulary as vocab
from cases.worktime import SHANGHAI
from geo.codes import LEVEL_NAMES

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"

# Leaflet's CSS draws some controls with data: images; pages carry personal data for some roles.
PAGE_HEADERS = page_headers({"img-src": "'self' data:"}, cache="no-store")


def china_time(value: datetime | str | None, fmt: str = "%m-%d %H:%M") -> str:
    """A stored time as people in China read it."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(SHANGHAI).strftime(fmt)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(["html"], default_for_string=True, default=True),
        undefined=StrictUndefined,  # a misspelt name fails the test that renders it
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["china_time"] = china_time
    env.globals.update(
        STATUS_GROUPS=vocab.STATUS_GROUPS,
        STATUS_LABELS=vocab.STATUS_LABELS,
        MOVE_LABELS=vocab.MOVE_LABELS,
        MOVE_LABELS_EN=vocab.MOVE_LABELS_EN,
        STAGE_LABELS=vocab.STAGE_LABELS,
        SOURCE_LABELS=vocab.SOURCE_LABELS,
        TIER_LABELS=vocab.TIER_LABELS,
        LIGHT_LABELS=vocab.LIGHT_LABELS,
        RATING_LABELS=vocab.RATING_LABELS,
        LEVEL_NAMES=LEVEL_NAMES,
        DESK_NAMES=DESK_NAMES,
        navigation=navigation,
    )
    return env


ENV = _environment()


def render(
    name: str, status_code: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    """A template rendered as an HTML answer with the pages' security headers."""
    html = ENV.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status_code, headers={**PAGE_HEADERS, **(headers or {})})
