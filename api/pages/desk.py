"""The dispatcher's workbench (调度台): `GET /desk` (queue, filters, counts, map) and
`GET /desk/cases/{id}` (the case, its history and its moves), server-rendered with htmx fragments.

Every page handler calls what the JSON API calls: the queue's services.case_reads (as `GET /queue`),
`get_case` (masking and the disclosure audit), api.case_moves.make_move (the move use case
after its permission and jurisdiction checks) — no rule is decided here. Errors of a move are
mapped to their status by the API's one map (api.errors.status_of) and shown in the
form, which keeps what was typed.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from access.roles import Role, User, moves_for
from api.access import CurrentUser, client_address
from api.assets import PageAssets
from api.case_answers import case_answer
from api.case_moves import make_move as move_case
from api.deps import RulesDep, SessionDep, entitled
from api.errors import NotFound, status_of
from api.moves import TransitionIn
from api.pages.templates import render
from api.queue_params import QueueFilterDep, page_of
from cases import response_templates
from cases.lifecycle import CaseStatus, IllegalMove, allowed_moves
from cases.vocabulary import GROUP_OF_STATUS, OPEN_GROUPS
from errors import Refused
from services import case_reads
from services.case_reads import QueueFilter

router = APIRouter(tags=["workbench"], include_in_schema=False)

DESK_DIR = Path(__file__).resolve().parent.parent / "static" / "desk"
FIELD_WORKER_VIEW = "/tasks"  # field workers have their own page: their tasks on the phone
MOVE_ERRORS = (Refused, ValidationError)  # errors of the vocabulary (errors.py) and of the form


def _is_fragment(request: Request) -> bool:
    """An htmx request wants the part, a browser's navigation the whole page."""
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-boosted") != "true"


def _own_view(user: User | None) -> Response | None:
    """Field workers work from their own page, not the workbench."""
    if user is not None and user.role == Role.FIELD_WORKER:
        return RedirectResponse(FIELD_WORKER_VIEW, status_code=303)
    return None


def _query_string(request: Request) -> str:
    return request.url.query


def _queue_context(request: Request, f: QueueFilter, session: Any, rules: Any) -> dict[str, Any]:
    found, names = case_reads.desk_queue(session, f, rules)
    total, items, counts = found.total, found.items, found.counts
    size = f.cases.limit
    pages = max(1, -(-total // size))
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "page" and v != ""]
    return {
        "items": items,
        "total": total,
        "counts": counts,
        "open_count": sum(counts[k] for k in OPEN_GROUPS),
        "names": names,
        "page": page_of(f),
        "pages": pages,
        "base_query": urlencode(params),
        "filters": request.query_params,
        "selected_group": f.groups[0] if len(f.groups) == 1 and not f.cases.status else "",
        "query": _query_string(request),
    }


@router.get("/desk")
def desk_page(
    request: Request, f: QueueFilterDep, session: SessionDep, rules: RulesDep, user: CurrentUser
) -> Response:
    """The workbench: the queue of the user's jurisdiction beside the live map."""
    if (other := _own_view(user)) is not None:
        return other
    context = _queue_context(request, f, session, rules)
    if _is_fragment(request):
        url = "/desk" + (f"?{request.url.query}" if request.url.query else "")
        return render("_queue.html", headers={"HX-Replace-Url": url}, oob=True, **context)
    categories = rules.categories.top_classes()
    return render("desk.html", user=user, categories=categories, departments=rules.departments, **context)


def _case_context(detail: dict[str, Any], user: User | None, session: Any, rules: Any) -> dict[str, Any]:
    names = case_reads.unit_names(session, [detail["grid_code"], detail["unit_code"]])
    moves = moves_for(user, CaseStatus(detail["status"])) if user is not None else {}
    category = rules.categories.get(detail["category"])
    top = rules.categories.get(detail["category"][:2])
    return {
        "case": detail,
        "moves": moves,
        "names": names,
        "category": category,
        "top": top,
        "departments": rules.departments,
        "group": GROUP_OF_STATUS[CaseStatus(detail["status"])],
        "user": user,
    }


@router.get("/desk/cases/{case_id}")
def case_page(
    case_id: int, request: Request, session: SessionDep, rules: RulesDep, user: CurrentUser
) -> Response:
    """One case: what, where, who reported it, its assignment, clock, history, duplicates, moves."""
    if (other := _own_view(user)) is not None:
        return other
    detail = case_answer(request, session, case_id, rules, user)  # masking and audit as the API does
    context = _case_context(detail, user, session, rules)
    if _is_fragment(request):
        return render("_case.html", **context)
    return render("case.html", **context)


def _form_context(
    case_id: int, current: str, to: str, values: dict[str, Any], rules: Any, category: str
) -> dict[str, Any]:
    needs = allowed_moves(CaseStatus(current)).get(to)
    return {
        "case_id": case_id,
        "current": current,
        "to": to,
        "needs": needs or [],
        "values": values,
        "departments": rules.departments,
        "units": [],  # the picker fills in as the user types (GET /desk/units)
        "templates": response_templates.for_category(category),
        "templates_category": category,
        "error": None,
        "status": 200,
    }


@router.get("/desk/cases/{case_id}/moves/{to}")
def move_form(
    case_id: int,
    to: CaseStatus,
    session: SessionDep,
    rules: RulesDep,
    user: CurrentUser,
    into: Annotated[int | None, Query()] = None,
) -> Response:
    """The form of one move, asking exactly what it needs (a fragment)."""
    detail = case_reads.case_detail(session, case_id, rules)
    context = _form_context(case_id, detail["status"], to, {"into": into or ""}, rules, detail["category"])
    if user is None or to not in moves_for(user, CaseStatus(detail["status"])):
        context["error"] = str(IllegalMove(CaseStatus(detail["status"]), to))
        context["status"] = 409
    return render("_move_form.html", status_code=context["status"], **context)


def _into_form(case_id: int) -> dict[str, str]:
    """An answer that is a move form goes into the form's box, not over the case (htmx headers)."""
    return {"HX-Retarget": f"#move-form-{case_id}", "HX-Reswap": "innerHTML"}


@router.post("/desk/cases/{case_id}/moves")
def make_move(
    case_id: int,
    request: Request,
    session: SessionDep,
    rules: RulesDep,
    user: CurrentUser,
    to: Annotated[str, Form()],
    current: Annotated[str, Form(alias="from")],
    category: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    unit: Annotated[str, Form()] = "",
    extend_by: Annotated[str, Form()] = "",
    into: Annotated[str, Form()] = "",
    rating: Annotated[str, Form()] = "",
) -> Response:
    """Make a move from its form through the API's own move; on failure the form comes back with
    the reason and everything typed."""
    typed = {
        "note": note,
        "reason": reason,
        "unit": unit,
        "extend_by": extend_by,
        "into": into,
        "rating": rating,
    }
    try:
        body = TransitionIn.model_validate(
            {"to": to, **{k: v.strip() for k, v in typed.items() if v.strip()}}
        )
        move_case(request, case_id, body, rules, user)
    except MOVE_ERRORS as exc:
        if type(exc) is NotFound:  # nothing the form can show: the page's own 404
            raise
        session.rollback()
        return _refused(case_id, current, to, typed, exc, session, rules, category)
    detail = case_answer(request, session, case_id, rules, user)
    return render(
        "_case.html", headers={"HX-Trigger": "case-moved"}, **_case_context(detail, user, session, rules)
    )


def _refused(case_id, current, to, typed, exc, session, rules, category) -> Response:
    """The move form again, with why the move was refused (409, 422, 403) and what was typed."""
    status = status_of(exc) if isinstance(exc, Refused) else 422
    if isinstance(exc, ValidationError):
        message = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    else:
        message = str(exc)
    try:
        context = _form_context(case_id, current, to, typed, rules, category or "15")
    except ValueError:  # a tampered `from`: show the form without its fields
        context = _form_context(case_id, CaseStatus.REVISITED, to, typed, rules, category or "15")
    context.update(error=message, status=status)
    if isinstance(exc, IllegalMove):  # someone moved it first: say where it stands now
        context["now_status"] = str(exc.current)
    return render("_move_form.html", status_code=status, headers=_into_form(case_id), **context)


@router.get("/desk/units")
def unit_options(
    session: SessionDep,
    rules: RulesDep,
    user: CurrentUser,
    unit: Annotated[str, Query(max_length=50)] = "",
) -> Response:
    """Options for the target-unit picker: units of the user's jurisdiction by code or name, and
    the departments a street may summon."""
    mine = case_reads.units_matching(session, user, unit)
    return render("_unit_options.html", units=mine, departments=rules.departments)


EXPORT_COLUMNS = [
    ("number", "编号 number"), ("status", "状态 status"), ("category", "分类 category"),
    ("category_name", "分类名称 category name"), ("description", "描述 description"),
    ("address", "地址 address"), ("grid_code", "网格 grid"), ("tier", "层级 tier"),
    ("unit_code", "责任单位 unit"), ("department", "部门 department"), ("stage", "阶段 stage"),
    ("stage_due_at", "时限 due"), ("light", "亮灯 light"), ("overdue", "超期 overdue"),
    ("source", "来源 source"), ("reported_at", "上报时间 reported at"),
]  # fmt: skip


@router.get("/desk/export.csv")
def export_csv(
    request: Request, f: QueueFilterDep, session: SessionDep, rules: RulesDep, user: CurrentUser
) -> Response:
    """The filtered queue as CSV (UTF-8 with BOM, for Excel); reporters only for entitled roles; audited."""
    personal = entitled(user)
    out = io.StringIO()
    writer = csv.writer(out)
    header = [label for _, label in EXPORT_COLUMNS]
    if personal:
        header += ["报告人 reporter", "电话 phone"]
    writer.writerow(header)
    cases = case_reads.export_queue(
        session, f, rules, viewer=user, entitled=personal, query=request.url.query, ip=client_address(request)
    )
    session.commit()  # the export's audit entry
    for case in cases:
        line = [_cell(case[key]) for key, _ in EXPORT_COLUMNS]
        if personal:
            reporter = case["reporter"] or {}
            line += [reporter.get("name") or "", reporter.get("phone") or ""]
        writer.writerow(line)
    stamp = datetime.now().strftime("%Y%m%d-%H%M")
    return Response(
        "\ufeff" + out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="cases-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )


def _cell(value: Any) -> str:
    """A CSV cell; text that a spreadsheet would run as a formula is quoted (CSV injection)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="minutes")
    text_ = str(value)
    return "'" + text_ if text_[:1] in ("=", "+", "-", "@") else text_



def mount(app: FastAPI) -> None:
    """Serve the workbench pages and their assets on `app`."""
    app.include_router(router)
    app.mount("/static/desk", PageAssets(DESK_DIR), name="desk-static")
