"""The working calendar, time limits and the traffic light of a case stage.

Time limits come in three units: clock minutes ("30min", natural time), working hours ("2h") and
working days ("15d"). A working day is the working time of one day (7 h by default), so
"1 working day" from Monday 10:00 ends Tuesday 10:00. Working time is counted in the calendar's
zone (Asia/Shanghai by default) between the daily working periods of working days: Monday to
Friday unless a public holiday, plus the make-up working days (调休) that fall on weekends.

Everything steps by working periods and days, never by minutes, so due times and shares can be
computed for thousands of cases per request.

>>> cal = WorkCalendar()
>>> start = datetime(2025, 3, 3, 10, 0, tzinfo=SHANGHAI)  # a Monday
>>> cal.due(start, TimeLimit.parse("1d")).isoformat()
'2025-03-04T10:00:00+08:00'
>>> traffic_light(cal.share(start, cal.due(start, TimeLimit.parse("2h")), start + timedelta(hours=1)))
<Light.GREEN: 'green'>
"""

from __future__ import annotations

import bisect
import csv
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from geo.settings import PROJECT_DIR

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFAULT_CALENDAR_FILE = PROJECT_DIR / "data" / "calendar" / "china.csv"

Unit = Literal["minutes", "working_hours", "working_days"]
UNIT_BY_SUFFIX: dict[str, Unit] = {"min": "minutes", "h": "working_hours", "d": "working_days"}
SUFFIX_BY_UNIT: dict[Unit, str] = {unit: suffix for suffix, unit in UNIT_BY_SUFFIX.items()}
LIMIT_PATTERN = re.compile(r"(\d+(?:\.\d+)?)(min|h|d)")

# A calendar with no working day for this long is broken; stops the day loops from running forever.
MAX_DAYS_WITHOUT_WORK = 366


@dataclass(frozen=True)
class TimeLimit:
    """A time limit: an amount of clock minutes, working hours or working days."""

    amount: float
    unit: Unit

    def __post_init__(self) -> None:
        if self.unit not in SUFFIX_BY_UNIT:
            raise ValueError(f"unknown time limit unit {self.unit!r}; use one of {', '.join(SUFFIX_BY_UNIT)}")
        if not (math.isfinite(self.amount) and self.amount > 0):
            raise ValueError(f"a time limit must be a positive amount, not {self.amount!r}")

    @classmethod
    def parse(cls, text: str) -> TimeLimit:
        """Read "30min" (clock minutes), "2h" (working hours) or "15d" (working days)."""
        match = LIMIT_PATTERN.fullmatch(text.strip())
        if match is None:
            raise ValueError(
                f"bad time limit {text!r}: write a positive number and a unit, "
                "e.g. 30min (clock minutes), 2h (working hours) or 15d (working days)"
            )
        return cls(float(match[1]), UNIT_BY_SUFFIX[match[2]])

    def __str__(self) -> str:
        amount = str(int(self.amount)) if self.amount.is_integer() else repr(self.amount)
        return f"{amount}{SUFFIX_BY_UNIT[self.unit]}"

    @property
    def is_clock_time(self) -> bool:
        """Whether the limit runs in natural time whatever the calendar (clock minutes)."""
        return self.unit == "minutes"


class Light(StrEnum):
    """The traffic light of a stage: how much of its time limit is used up."""

    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


# The one place for the thresholds (domain.md §4): green below 80 %, yellow 80–100 %, red over.
YELLOW_FROM = 0.8
RED_ABOVE = 1.0


def traffic_light(share: float) -> Light:
    """The light for an elapsed share of a time limit."""
    if math.isnan(share):
        raise ValueError("the share of a time limit cannot be NaN")
    if share < YELLOW_FROM:
        return Light.GREEN
    if share <= RED_ABOVE:
        return Light.YELLOW
    return Light.RED


Period = tuple[time, time]
DEFAULT_PERIODS: tuple[Period, ...] = ((time(8, 30), time(12, 0)), (time(14, 0), time(17, 30)))


@dataclass(frozen=True)
class WorkCalendar:
    """Working periods of a working day, public holidays and make-up working days, in one zone."""

    periods: tuple[Period, ...] = DEFAULT_PERIODS
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    tz: tzinfo = SHANGHAI

    def __post_init__(self) -> None:
        if not self.periods:
            raise ValueError("a working calendar needs at least one working period per day")
        previous_end = time.min
        for start, end in self.periods:
            if not start < end:
                raise ValueError(f"working period {start}–{end} ends before it starts")
            if start < previous_end:
                raise ValueError("working periods must be in order and must not overlap")
            previous_end = end
        both = self.holidays & self.workdays
        if both:
            raise ValueError(f"dates both holiday and working day: {', '.join(map(str, sorted(both)))}")

    # --- loading ---------------------------------------------------------------------------------

    @classmethod
    def load(
        cls, path: Path, *, periods: tuple[Period, ...] = DEFAULT_PERIODS, tz: tzinfo = SHANGHAI
    ) -> WorkCalendar:
        """A calendar from a CSV file with columns date,kind,name (kind: holiday | workday)."""
        holidays: set[date] = set()
        workdays: set[date] = set()
        for where, row in read_csv_rows(Path(path), required=("date", "kind")):
            day = _read_date(row["date"], where)
            if day in holidays or day in workdays:
                raise ValueError(f"{where}: {day} is listed twice")
            kind = row["kind"]
            if kind == "holiday":
                holidays.add(day)
            elif kind == "workday":
                if day.weekday() < 5:
                    # A make-up working day on a weekday changes nothing: most likely a typo.
                    raise ValueError(f"{where}: make-up working day {day} is not a Saturday or Sunday")
                workdays.add(day)
            else:
                raise ValueError(f"{where}: kind must be holiday or workday, not {kind!r}")
        return cls(periods=periods, holidays=frozenset(holidays), workdays=frozenset(workdays), tz=tz)

    @classmethod
    def default(cls) -> WorkCalendar:
        """The national calendar shipped in data/calendar/china.csv (loaded once)."""
        return _default_calendar()

    def years_covered(self) -> frozenset[int]:
        """Years for which the calendar lists holidays (other years fall back to Monday–Friday)."""
        return frozenset(day.year for day in self.holidays | self.workdays)

    # --- days and periods --------------------------------------------------------------------------

    def is_workday(self, day: date) -> bool:
        """Whether `day` is a working day: Monday–Friday unless a holiday, plus make-up days."""
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    @cached_property
    def day_seconds(self) -> float:
        """The working time of one working day, in seconds."""
        return sum(_seconds_between(start, end) for start, end in self.periods)

    def limit_seconds(self, limit: TimeLimit, *, clock: bool = False) -> float:
        """The length of a limit in seconds: working seconds, or natural ones in clock mode."""
        if limit.unit == "minutes":
            return limit.amount * 60
        if limit.unit == "working_hours":
            return limit.amount * 3600
        return limit.amount * (86400 if clock else self.day_seconds)

    # --- due times and shares ------------------------------------------------------------------------

    def due(self, start: datetime, limit: TimeLimit, *, clock: bool = False) -> datetime:
        """When a limit started at `start` runs out; `clock=True` counts it in natural time."""
        _require_aware(start, "start")
        if clock or limit.is_clock_time:
            # Natural time: add in UTC so that a zone's daylight-saving change does not shift it.
            end = start.astimezone(UTC) + timedelta(seconds=self.limit_seconds(limit, clock=True))
            return end.astimezone(self.tz)
        return self._add_working_seconds(self._local(start), self.limit_seconds(limit))

    def working_seconds(self, start: datetime, end: datetime) -> float:
        """Working time between two instants, in seconds (0 when `end` is not after `start`)."""
        _require_aware(start, "start")
        _require_aware(end, "end")
        first, last = self._local(start), self._local(end)
        if last <= first:
            return 0.0
        if first.date() == last.date():
            return self._working_seconds_within_day(first, last)
        # The first and last days in part, the full days between counted without visiting them.
        total = self._working_seconds_within_day(first, datetime.combine(first.date(), time.max))
        total += self._working_seconds_within_day(datetime.combine(last.date(), time.min), last)
        full_days = self.workdays_between(first.date() + timedelta(days=1), last.date())
        return total + full_days * self.day_seconds

    def share(self, start: datetime, due: datetime, now: datetime, *, clock: bool = False) -> float:
        """The elapsed share of the limit from `start` to `due` at `now`, in working time.

        Pass `clock=True` for clock-mode cases and for limits in clock minutes. Past the due
        instant the share is above 1 (red) even when no working time has passed since, e.g. over
        a weekend, so the light agrees with an overdue check `now > due`.
        """
        if clock:
            total = due.timestamp() - start.timestamp()
            elapsed = max(now.timestamp() - start.timestamp(), 0.0)
        else:
            total = self.working_seconds(start, due)
            elapsed = self.working_seconds(start, now)
        if total <= 0:
            return 0.0 if now <= due else math.inf
        share = elapsed / total
        if now > due and share <= RED_ABOVE:
            share = math.nextafter(RED_ABOVE, math.inf)
        return share

    def workdays_between(self, first: date, end: date) -> int:
        """The number of working days d with first <= d < end, without a loop over the days."""
        if end <= first:
            return 0
        weekdays = _weekdays_between(first, end)
        holidays_on_weekdays = _count_between(self._weekday_holidays, first, end)
        makeup_days = _count_between(self._sorted_workdays, first, end)
        return weekdays - holidays_on_weekdays + makeup_days

    # --- internals ---------------------------------------------------------------------------------

    @cached_property
    def _weekday_holidays(self) -> tuple[date, ...]:
        return tuple(sorted(day for day in self.holidays if day.weekday() < 5))

    @cached_property
    def _sorted_workdays(self) -> tuple[date, ...]:
        return tuple(sorted(self.workdays))

    def _local(self, moment: datetime) -> datetime:
        """Wall-clock time in the calendar's zone, naive: working periods are wall-clock times."""
        return moment.astimezone(self.tz).replace(tzinfo=None)

    @cached_property
    def _period_offsets(self) -> tuple[tuple[timedelta, timedelta], ...]:
        midnight = datetime.combine(date.min, time.min)
        return tuple(
            (datetime.combine(date.min, start) - midnight, datetime.combine(date.min, end) - midnight)
            for start, end in self.periods
        )

    def _periods_on(self, day: date) -> list[tuple[datetime, datetime]]:
        midnight = datetime.combine(day, time.min)
        return [(midnight + start, midnight + end) for start, end in self._period_offsets]

    def _working_seconds_within_day(self, first: datetime, last: datetime) -> float:
        if not self.is_workday(first.date()):
            return 0.0
        total = 0.0
        for start, end in self._periods_on(first.date()):
            overlap = (min(end, last) - max(start, first)).total_seconds()
            total += max(overlap, 0.0)
        return total

    def _add_working_seconds(self, start: datetime, seconds: float) -> datetime:
        """The instant after `seconds` of working time from wall-clock `start`, made aware."""
        day = start.date()
        remaining = seconds
        if self.is_workday(day):
            end, remaining = self._consume_day(day, start, remaining)
            if end is not None:
                return end
        # Whole working days are skipped without visiting their periods; the last one is walked.
        whole_days = max(math.ceil(remaining / self.day_seconds) - 1, 0)
        remaining -= whole_days * self.day_seconds
        day = self._next_workday(day, skip=whole_days)
        end, _ = self._consume_day(day, datetime.combine(day, time.min), remaining)
        assert end is not None, "a whole working day holds the rest of the limit"
        return end

    def _consume_day(self, day: date, start: datetime, remaining: float) -> tuple[datetime | None, float]:
        """Spend working time of `day` from `start`: the end instant if it suffices, else what is left."""
        for period_start, period_end in self._periods_on(day):
            begin = max(period_start, start)
            available = (period_end - begin).total_seconds()
            if available <= 0:
                continue
            if remaining <= available:
                return (begin + timedelta(seconds=remaining)).replace(tzinfo=self.tz), 0.0
            remaining -= available
        return None, remaining

    def _next_workday(self, day: date, *, skip: int = 0) -> date:
        """The first working day after `day` once `skip` working days after it are passed over."""
        days_without_work = 0
        while True:
            day += timedelta(days=1)
            if not self.is_workday(day):
                days_without_work += 1
                if days_without_work > MAX_DAYS_WITHOUT_WORK:
                    raise ValueError(f"the calendar has no working day for {MAX_DAYS_WITHOUT_WORK} days")
                continue
            days_without_work = 0
            if skip == 0:
                return day
            skip -= 1


@lru_cache(maxsize=1)
def _default_calendar() -> WorkCalendar:
    return WorkCalendar.load(DEFAULT_CALENDAR_FILE)


def read_csv_rows(path: Path, *, required: tuple[str, ...]) -> Iterator[tuple[str, dict[str, str]]]:
    """The rows of a CSV file as ("file, line n", row); lines starting with # are comments."""
    with path.open(encoding="utf-8", newline="") as file:
        reader = csv.reader(file)
        rows = ((reader.line_num, cells) for cells in reader if cells and not cells[0].startswith("#"))
        try:
            _, header = next(rows)
        except StopIteration:
            raise ValueError(f"{path}: empty file, expected a header {','.join(required)}") from None
        header = [name.strip() for name in header]
        missing = [name for name in required if name not in header]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
        for line, cells in rows:
            where = f"{path}, line {line}"
            if len(cells) > len(header):
                raise ValueError(f"{where}: {len(cells)} values for {len(header)} columns")
            values = [cell.strip() for cell in cells] + [""] * (len(header) - len(cells))
            yield where, dict(zip(header, values, strict=True))


def _read_date(text: str | None, where: str) -> date:
    try:
        return date.fromisoformat((text or "").strip())
    except ValueError:
        raise ValueError(f"{where}: bad date {text!r}, expected YYYY-MM-DD") from None


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {moment.isoformat()}")


def _seconds_between(start: time, end: time) -> float:
    return (datetime.combine(date.min, end) - datetime.combine(date.min, start)).total_seconds()


def _weekdays_between(first: date, end: date) -> int:
    """Mondays–Fridays d with first <= d < end."""
    days = (end - first).days
    full_weeks, rest = divmod(days, 7)
    start_weekday = first.weekday()
    return full_weeks * 5 + sum(1 for offset in range(rest) if (start_weekday + offset) % 7 < 5)


def _count_between(days: tuple[date, ...], first: date, end: date) -> int:
    return bisect.bisect_left(days, end) - bisect.bisect_left(days, first)
