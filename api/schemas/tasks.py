"""Answers of a handler's tasks (`/tasks/list`, `/tasks/{id}`): cases as the API shows them, with the
moves the handler's role may make."""

from __future__ import annotations

from pydantic import Field

from api.schemas.base import Answer
from api.schemas.cases import CaseDetail, CaseSummary, Photo


class Task(CaseSummary):
    """An open case in the handler's hands: the case as lists show it, with the moves they may make."""

    moves: dict[str, list[str]]


class TaskList(Answer):
    """The handler and their open tasks, overdue first."""

    username: str
    role: str
    unit_code: str
    department: str | None
    total: int
    items: list[Task]
    # The moves the handler's role may make from each status (the lifecycle's table seen through
    # the role): the page offers the next move of a case moved offline without a second rule.
    moves_by_status: dict[str, dict[str, list[str]]] = Field(
        description="Per status, the moves the handler's role may make from it"
    )


class TaskDetail(Answer):
    """One task: the case as the API shows it, the moves the handler may make, photos before/after."""

    case: CaseDetail
    moves: dict[str, list[str]]
    photos_before: list[Photo]
    photos_after: list[Photo]
