"""The dispatcher's queue as JSON (`GET /queue`): the filters of GET /cases plus status groups and
free text, overdue first then by due time, with counts per status group. The workbench page
(`/desk`) parses its filter form with the same dependency and calls the same functions
(services.case_reads).
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import RulesDep, SessionDep
from api.queue_params import QueueFilterDep, page_of
from api.schemas.cases import CaseSummary
from cases.vocabulary import STATUS_GROUPS
from services import case_reads

router = APIRouter(tags=["cases"])



class GroupOut(BaseModel):
    """A status group of the queue, its names and statuses."""

    key: str
    label: str
    label_en: str
    statuses: list[str]


class QueueAnswer(BaseModel):
    """One page of the queue, the counts per status group and the groups' names."""

    total: int
    page: int
    size: int
    counts: dict[str, int]
    groups: list[GroupOut]
    items: list[CaseSummary]


GROUPS = [
    GroupOut(key=g.key, label=g.label, label_en=g.label_en, statuses=list(g.statuses)) for g in STATUS_GROUPS
]




@router.get("/queue", response_model=QueueAnswer)
def get_queue(f: QueueFilterDep, session: SessionDep, rules: RulesDep) -> QueueAnswer:
    """The dispatcher's queue in the user's jurisdiction: overdue first, then by due time."""
    found = case_reads.queue_page(session, f, rules)
    return QueueAnswer(
        total=found.total,
        page=page_of(f),
        size=f.cases.limit,
        counts=found.counts,
        groups=GROUPS,
        items=found.items,
    )
