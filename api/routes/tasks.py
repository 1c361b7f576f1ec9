"""A handler's tasks on the phone: `GET /tasks` (the page), its data, and one task's detail.

Field workers see the open cases their unit holds (their grids'), department handlers the cases
summoned to their department; each with the moves their role may make (access.roles.moves_for over
the lifecycle's table). Moves themselves go through `POST /cases/{id}/transitions`.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse

from access.roles import moves_for
from api.access import CurrentUser
from api.assets import PageAssets
from api.case_answers import case_answer
from api.deps import RulesDep, SessionDep
from api.page_policy import FIELD_PAGE_HEADERS
from api.schemas.tasks import TaskDetail, TaskList
from cases.lifecycle import CaseStatus
from cases.photos import photos_by_stage
from services import tasks as task_service

TASKS_DIR = Path(__file__).resolve().parent.parent / "static" / "tasks"

router = APIRouter(tags=["field work"])


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
    return TaskList.model_validate(task_service.task_list(session, user, rules))


@router.get("/tasks/{case_id}", response_model=TaskDetail)
def task_detail(
    case_id: int, request: Request, session: SessionDep, rules: RulesDep, user: CurrentUser
) -> TaskDetail:
    """One case with the moves the handler may make and its photos kept apart (处置前/处置后)."""
    assert user is not None
    # The case exactly as GET /cases/{id} shows it to this user: masking, disclosure audit, the
    # duplicates they may see, photo URLs.
    case = case_answer(request, session, case_id, rules, user)
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
