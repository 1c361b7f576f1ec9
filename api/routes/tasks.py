"""A handler's tasks on the phone: `GET /tasks` (the page), its data, and one task's detail.

Field workers see the open cases their unit holds (their grids'), department handlers the cases
summoned to their department; each with the moves their role may make (access.roles.moves_for over
the lifecycle's table). Moves themselves go through `POST /cases/{id}/transitions`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel

from access.roles import moves_for
from api.access import CurrentUser, client_address
from api.assets import PageAssets
from api.deps import RulesDep, SessionDep, entitled
from api.page_policy import FIELD_PAGE_HEADERS
from api.photo_links import with_photo_urls
from api.schemas.cases import CaseDetail, Photo
from cases.lifecycle import CaseStatus
from cases.photos import photos_by_stage
from services import cases as case_service
from services import tasks as task_service

TASKS_DIR = Path(__file__).resolve().parent.parent / "static" / "tasks"

router = APIRouter(tags=["field work"])


class Task(BaseModel):
    """An open case in the handler's hands, as the task list shows it."""

    id: int
    number: str
    status: str
    category: str
    category_name: str
    description: str
    address: str | None
    urgent: bool
    lon: float
    lat: float
    grid_code: str | None
    stage: str | None
    stage_due_at: datetime | None
    light: str | None
    overdue: bool
    reported_at: datetime
    moves: dict[str, list[str]]


class TaskList(BaseModel):
    """The handler and their open tasks, overdue first."""

    username: str
    role: str
    unit_code: str
    department: str | None
    total: int
    items: list[Task]
    # The moves the handler's role may make from each status (the lifecycle's table seen through
    # the role): the page offers the next move of a case moved offline without a second rule.
    moves_by_status: dict[str, dict[str, list[str]]]


class TaskDetail(BaseModel):
    """One task: the case as the API shows it, the moves the handler may make, photos before/after."""

    case: CaseDetail
    moves: dict[str, list[str]]
    photos_before: list[Photo]
    photos_after: list[Photo]


@router.get("/tasks", include_in_schema=False)
async def tasks_page() -> FileResponse:
    """The phone page of a handler's tasks."""
    return FileResponse(
        TASKS_DIR / "index.html", media_type="text/html; charset=utf-8", headers=FIELD_PAGE_HEADERS
    )


@router.get("/tasks/list", response_model=TaskList)
def task_list(session: SessionDep, rules: RulesDep, user: CurrentUser) -> TaskList:
    """The signed-in handler's open tasks, overdue first, then by due time."""
    assert user is not None  # the access rule admits signed-in handlers only
    items = task_service.open_tasks(session, user, rules)
    return TaskList(
        username=user.username,
        role=user.role,
        unit_code=user.unit_code,
        department=user.department,
        total=len(items),
        items=[Task.model_validate(i) for i in items],
        moves_by_status={s.value: moves_for(user, s) for s in CaseStatus},
    )


@router.get("/tasks/{case_id}", response_model=TaskDetail)
def task_detail(
    case_id: int, request: Request, session: SessionDep, rules: RulesDep, user: CurrentUser
) -> TaskDetail:
    """One case with the moves the handler may make and its photos kept apart (处置前/处置后)."""
    assert user is not None
    # The case as GET /cases/{id} shows it: the same masking and disclosure audit.
    shown = case_service.show_case(
        session, case_id, rules, viewer=user, entitled=entitled(user), ip=client_address(request)
    )
    session.commit()  # the disclosure's audit entry, if any
    case = with_photo_urls(shown)
    photos = photos_by_stage(case["photos"])
    return TaskDetail(
        case=case,
        moves=moves_for(user, CaseStatus(case["status"])),
        photos_before=photos["before"],
        photos_after=photos["after"],
    )


def mount(app: FastAPI) -> None:
    """Serve the page, its data and its assets on `app`."""
    app.include_router(router)
    app.mount("/static/tasks", PageAssets(TASKS_DIR, FIELD_PAGE_HEADERS, "/tasks"), name="tasks-static")
