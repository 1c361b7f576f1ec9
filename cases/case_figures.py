"""The additive figures behind /stats and the dashboard, and how a period is read (pure).

Every figure is a count (or a sum of handling time) of events in a period, for the cases that
belong to a unit now: received (report time), closed and its handling time (close time), and from
the history (entry time) reopened, stages done and done on time, the tier holding each closed
case, the revisits' ratings. Being sums, they add over days and over disjoint parts of a period:
the store keeps them per unit and Beijing day (store.case_rollup) and reads the few hours a
period cuts off a day from the cases themselves (`split`); these functions say how the parts
combine and turn the sums into /stats' answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from cases.categories import STAGES
from cases.lifecycle import Rating, Tier
from cases.worktime import SHANGHAI
from geo.codes import CODE_LENGTH, Level

# "Small matters stay in the village": resolved without leaving the grid or community.
LOCAL_TIERS = (Tier.GRID, Tier.COMMUNITY)
CASE_FIGURES = ("received", "closed", "closed_us")  # closed_us: Σ (closed − reported) in µs
HISTORY_FIGURES = (
    "reopened",
    *(f"done_{s}" for s in STAGES),
    *(f"on_time_{s}" for s in STAGES),
    *(f"tier_{t.value}" for t in Tier),
    *(f"rating_{r.value}" for r in Rating),
)
FIGURES = (*CASE_FIGURES, *HISTORY_FIGURES)
ALL = ""  # the key of every case (no unit asked)
OUTSIDE = "~"  # the key of cases outside every unit: they count for any unit of county level or above
FINEST_KEY = CODE_LENGTH[Level.COMMUNITY]  # the roll-up's longest key (0022_case_rollup_keys)
# Cut-off hours read from the cases: at most half a day each side (the other side is added instead).
HALF_DAY = timedelta(hours=12)

Figures = dict[str, int]


def zero() -> Figures:
    """No events."""
    return dict.fromkeys(FIGURES, 0)


def combine(parts: Iterable[tuple[int, Mapping[str, int]]]) -> Figures:
    """Σ sign × part: the period's figures from its days and its added and cut-off hours."""
    total = zero()
    for sign, part in parts:
        for f in FIGURES:
            total[f] += sign * int(part.get(f) or 0)
    return total


def rolled_up(unit: str | None) -> bool:
    """Whether the roll-up keeps the unit's figures: every unit down to the community (0022). A
    grid's or micro-grid's are counted from its few cases, so that a redraw, which moves cases
    between grids, mostly of one community, touches no roll-up row."""
    return not unit or len(unit) <= FINEST_KEY


def keys_of(unit: str | None) -> list[str]:
    """The roll-up keys whose sum is the unit's (every unit, or one and the cases outside every
    unit when it is of county level or above, as store.case_filters.in_unit_sql counts them)."""
    if not rolled_up(unit):
        raise ValueError(f"the roll-up keeps no figures below the community: {unit}")
    if not unit:
        return [ALL]
    return [unit, OUTSIDE] if len(unit) <= CODE_LENGTH[Level.COUNTY] else [unit]


@dataclass(frozen=True)
class Window:
    """Hours [start, end) read from the cases, added (sign 1) or cut off a day (sign -1)."""

    start: datetime
    end: datetime
    sign: int

    @property
    def day(self) -> date:
        """The Beijing day the window lies in."""
        return self.start.astimezone(SHANGHAI).date()


@dataclass(frozen=True)
class Plan:
    """A period as whole Beijing days [first, last) of the roll-up, plus windows within a day."""

    first: date
    last: date
    windows: tuple[Window, ...]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=SHANGHAI)


def split(start: datetime, end: datetime) -> Plan:
    """Whole days covering [start, end) and the windows that correct them at either end.

    A period starting or ending within a day takes that day whole and cuts off the hours outside,
    or leaves it out and adds the hours inside, whichever reads fewer hours (≤ 12). A period up to
    now cuts off the rest of today: hours in which nothing has happened yet.

    >>> from datetime import datetime
    >>> p = split(datetime(2026, 3, 1, 6, tzinfo=SHANGHAI), datetime(2026, 3, 3, 20, tzinfo=SHANGHAI))
    >>> p.first, p.last, [(f"{w.start:%d %H}", f"{w.end:%d %H}", w.sign) for w in p.windows]
    (datetime.date(2026, 3, 1), datetime.date(2026, 3, 4), [('01 00', '01 06', -1), ('03 20', '04 00', -1)])
    """
    start, end = start.astimezone(SHANGHAI), end.astimezone(SHANGHAI)
    windows = []
    first = start.date()
    if start != _midnight(first):
        if start - _midnight(first) <= HALF_DAY:
            windows.append(Window(_midnight(first), start, -1))
        else:
            first += timedelta(days=1)
            windows.append(Window(start, _midnight(first), 1))
    last = end.date()
    if end != _midnight(last):
        following = _midnight(last + timedelta(days=1))
        if following - end <= HALF_DAY:
            windows.append(Window(end, following, -1))
            last += timedelta(days=1)
        else:
            windows.append(Window(_midnight(last), end, 1))
    return Plan(first, last, tuple(windows))


def statistics_answer(
    unit: str | None, start: datetime, end: datetime, f: Mapping[str, int]
) -> dict[str, Any]:
    """/stats' answer from the period's figures."""
    hours = round(f["closed_us"] / f["closed"] / 3_600_000_000, 2) if f["closed"] else None
    return {
        "unit": unit,
        "from": start,
        "to": end,
        "received": f["received"],
        "closed": f["closed"],
        "avg_handling_hours": hours,
        "reopened": f["reopened"],
        "on_time": {
            s: {
                "done": f[f"done_{s}"],
                "on_time": f[f"on_time_{s}"],
                "rate": rate(f[f"on_time_{s}"], f[f"done_{s}"]),
            }
            for s in STAGES
        },
        "resolved_by_tier": _by_tier(f),
        "satisfaction": _satisfaction(f),
    }


def _by_tier(f: Mapping[str, int]) -> dict[str, Any]:
    """The tier responsible when each case was closed, and the share kept local."""
    counts = {t.value: f[f"tier_{t.value}"] for t in Tier}
    total = sum(counts.values())
    local = sum(counts[t.value] for t in LOCAL_TIERS)
    return {
        "counts": counts,
        "shares": {t: rate(n, total) for t, n in counts.items()},
        "local_share": rate(local, total),
    }


def _satisfaction(f: Mapping[str, int]) -> dict[str, Any]:
    """Revisit ratings; satisfied and basically satisfied count as satisfied."""
    counts = {r.value: f[f"rating_{r.value}"] for r in Rating}
    pleased = counts[Rating.SATISFIED] + counts[Rating.BASICALLY_SATISFIED]
    return {"counts": counts, "rate": rate(pleased, sum(counts.values()))}


def stages_done(f: Mapping[str, int]) -> tuple[int, int]:
    """(stages done, stages done on time), all stages together."""
    return sum(f[f"done_{s}"] for s in STAGES), sum(f[f"on_time_{s}"] for s in STAGES)


def rate(part: int, whole: int) -> float | None:
    """A share rounded to four places; None when there is nothing to divide."""
    return round(part / whole, 4) if whole else None
