"""What the response models cost: writing an answer through its model (validate, then serialize,
as FastAPI does for a route with a response model) against writing the route's plain dict (what a
route typed `dict[str, Any]` cost), for the largest answers routes give.

    .venv/bin/python -m benchmarks.bench_answers [--repeat 50]

Answers made in memory, shaped as the store makes them: a page of 200 cases (GET /cases), 4,422
party-cell points (GET /map/party on the demo county) and 500 open cases on the map (GET /map/cases).
Every run checks that both ways write the same JSON, and says how busy the machine was.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter

from api.schemas.cases import CaseList, CasePoints
from api.schemas.geojson import FeatureCollection
from benchmarks.bench_intake import cpu_times, machine_share

NOW = datetime.now(UTC)
CASE = {
    "id": 1, "number": "2026120500001", "status": "dispatched", "source": "patrol", "category": "0101",
    "category_name": "井盖", "description": "井盖缺失，行人易跌落" * 3, "address": None, "urgent": False,
    "lon": 114.9013, "lat": 33.43936, "accuracy_m": 5.0, "grid_code": "411681001001001",
    "assign_status": "assigned", "tier": "grid", "unit_code": "411681001001001", "department": None,
    "department_name": None, "stage": "accept", "stage_due_at": NOW, "light": "green", "overdue": False,
    "reported_at": NOW, "updated_at": NOW,
}  # fmt: skip


def _point(n: int, properties: dict[str, Any], with_id: bool) -> dict[str, Any]:
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.9 + n * 1e-5, 33.4]}}
    return {**feature, "properties": properties, **({"id": n} if with_id else {})}


def answers() -> list[tuple[str, type, dict[str, Any]]]:
    """(name, model, answer) of the largest answers."""
    page = {"total": 10_000, "limit": 200, "offset": 0, "items": [{**CASE, "id": i} for i in range(200)]}
    cell = {"kind": "central_household", "unit_code": "411681001001001"}
    party = {"type": "FeatureCollection", "features": [_point(i, cell, False) for i in range(4422)]}
    shown = {k: v for k, v in CASE.items() if k not in ("id", "lon", "lat")}
    points = [_point(i, shown, True) for i in range(500)]
    cases = {"type": "FeatureCollection", "total": 500, "features": points}
    return [("GET /cases (200)", CaseList, page), ("GET /map/party (4,422)", FeatureCollection, party),
            ("GET /map/cases (500)", CasePoints, cases)]  # fmt: skip


def ms_per_call(work: Callable[[], object], repeat: int) -> float:
    """Mean milliseconds of `work` over `repeat` calls (after one to warm up)."""
    work()
    start = time.perf_counter()
    for _ in range(repeat):
        work()
    return (time.perf_counter() - start) / repeat * 1000


def main() -> None:
    """Print, per answer, the plain and the typed time and whether both wrote the same bytes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50)
    repeat = parser.parse_args().repeat
    before = cpu_times()
    plain = TypeAdapter(dict[str, Any])
    for name, model, answer in answers():
        typed = TypeAdapter(model)

        def through_model(a: dict[str, Any] = answer, t: TypeAdapter = typed) -> bytes:
            return t.dump_json(t.validate_python(a), by_alias=True)

        # The same JSON (a model writes its declared fields first: the order of keys may differ).
        same = json.loads(plain.dump_json(answer)) == json.loads(through_model())
        untyped = ms_per_call(lambda a=answer: plain.dump_json(a), repeat)
        modelled = ms_per_call(through_model, repeat)
        print(f"{name:26} dict {untyped:7.2f} ms   model {modelled:7.2f} ms   same JSON: {same}")
    print(machine_share(before, cpu_times()))


if __name__ == "__main__":
    main()
