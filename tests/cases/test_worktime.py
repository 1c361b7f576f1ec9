"""Working calendar: time limits over lunch, weekends, holidays and make-up days; shares; lights."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cases.worktime import (
    DEFAULT_CALENDAR_FILE,
    SHANGHAI,
    Light,
    TimeLimit,
    WorkCalendar,
    traffic_light,
)

CAL = WorkCalendar.default()


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def due(start: datetime, text: str, *, clock: bool = False) -> datetime:
    return CAL.due(start, TimeLimit.parse(text), clock=clock)


# --- TimeLimit ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "amount", "unit"),
    [
        ("30min", 30, "minutes"),
        ("2h", 2, "working_hours"),
        ("15d", 15, "working_days"),
        ("0.5d", 0.5, "working_days"),
    ],
)
def test_time_limit_parses_and_prints_the_same_text(text, amount, unit):
    limit = TimeLimit.parse(text)
    assert (limit.amount, limit.unit) == (amount, unit)
    assert str(limit) == text


@pytest.mark.parametrize("text", ["", "2", "h", "2 hours", "-1d", "1.d", "2w", "1e3h", "abc"])
def test_time_limit_rejects_bad_text_with_an_example(text):
    with pytest.raises(ValueError, match=r"e\.g\. 30min"):
        TimeLimit.parse(text)


def test_time_limit_rejects_bad_fields():
    with pytest.raises(ValueError, match="unit"):
        TimeLimit(1, "weeks")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        TimeLimit.parse("0d")
    with pytest.raises(ValueError, match="positive"):
        TimeLimit(math.nan, "working_hours")


# --- working days --------------------------------------------------------------------------------


def test_workdays_follow_the_state_council_arrangement():
    assert CAL.is_workday(date(2025, 3, 3))  # an ordinary Monday
    assert not CAL.is_workday(date(2025, 3, 8))  # an ordinary Saturday
    assert not CAL.is_workday(date(2025, 1, 28))  # Spring Festival eve, a Tuesday
    assert CAL.is_workday(date(2025, 1, 26))  # make-up Sunday before Spring Festival
    assert CAL.is_workday(date(2025, 2, 8))  # make-up Saturday after it
    assert not CAL.is_workday(date(2025, 10, 8))  # National Day and Mid-Autumn, a Wednesday
    assert CAL.is_workday(date(2025, 10, 11))
    assert not CAL.is_workday(date(2026, 2, 23))  # 2026 Spring Festival, a Monday
    assert CAL.is_workday(date(2026, 2, 14)) and CAL.is_workday(date(2026, 2, 28))
    assert CAL.years_covered() == {2025, 2026}


def test_workdays_between_counts_like_a_loop_over_days():
    first = date(2024, 12, 20)
    for length in (0, 1, 6, 7, 13, 45, 400, 800):
        end = first + timedelta(days=length)
        looped = sum(CAL.is_workday(first + timedelta(days=i)) for i in range(length))
        assert CAL.workdays_between(first, end) == looped


# --- due times -------------------------------------------------------------------------------------


def test_one_working_day_from_monday_morning_ends_tuesday_at_the_same_time():
    assert due(at(2025, 3, 3, 10), "1d") == at(2025, 3, 4, 10)


def test_working_hours_skip_the_lunch_break():
    assert due(at(2025, 3, 3, 11), "2h") == at(2025, 3, 3, 15)
    assert due(at(2025, 3, 3, 11), "1h") == at(2025, 3, 3, 12)  # ends exactly at lunch, not after it


def test_working_hours_skip_the_weekend():
    assert due(at(2025, 3, 7, 16), "2h") == at(2025, 3, 10, 9)  # Friday 1.5 h, Monday 0.5 h


def test_a_start_outside_working_time_counts_from_the_next_working_period():
    assert due(at(2025, 3, 3, 7), "1h") == at(2025, 3, 3, 9, 30)  # before work
    assert due(at(2025, 3, 3, 12, 30), "1h") == at(2025, 3, 3, 15)  # over lunch
    assert due(at(2025, 3, 3, 20), "1h") == at(2025, 3, 4, 9, 30)  # in the evening
    assert due(at(2025, 3, 8, 10), "1d") == at(2025, 3, 10, 17, 30)  # on a Saturday


def test_a_limit_spans_spring_festival_and_counts_the_make_up_sunday():
    # Friday 24 Jan 2025: Sunday 26th is a make-up working day, 28 Jan–4 Feb are the holiday.
    start = at(2025, 1, 24, 10)
    assert due(start, "1d") == at(2025, 1, 26, 10)
    assert due(start, "2d") == at(2025, 1, 27, 10)
    assert due(start, "3d") == at(2025, 2, 5, 10)


def test_a_limit_spans_national_day():
    assert due(at(2025, 9, 30, 16), "1d") == at(2025, 10, 9, 16)  # 1–8 Oct off
    assert due(at(2025, 9, 26, 10), "2d") == at(2025, 9, 29, 10)  # Sunday 28 Sep is worked
    assert due(at(2026, 2, 13, 15), "1d") == at(2026, 2, 14, 15)  # 2026: Saturday 14 Feb is worked


def test_clock_minutes_ignore_the_calendar():
    assert due(at(2025, 3, 7, 17, 20), "30min") == at(2025, 3, 7, 17, 50)  # past closing time
    assert due(at(2025, 10, 1, 3), "30min") == at(2025, 10, 1, 3, 30)  # on a holiday night


def test_clock_mode_counts_every_limit_in_natural_time():
    friday_evening = at(2025, 3, 7, 17)
    assert due(friday_evening, "2h", clock=True) == at(2025, 3, 7, 19)
    assert due(friday_evening, "1d", clock=True) == at(2025, 3, 8, 17)
    assert due(at(2025, 1, 28, 9), "3d", clock=True) == at(2025, 1, 31, 9)  # during the holiday


def test_due_takes_any_zone_and_answers_in_the_calendars():
    start = datetime(2025, 3, 3, 2, tzinfo=UTC)  # 10:00 in Shanghai
    result = CAL.due(start, TimeLimit.parse("1d"))
    assert result == at(2025, 3, 4, 10)
    assert result.utcoffset() == timedelta(hours=8)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.due(datetime(2025, 3, 3, 10), TimeLimit.parse("1h"))
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.working_seconds(at(2025, 3, 3), datetime(2025, 3, 4))


def test_custom_periods_change_the_length_of_a_working_day():
    cal = WorkCalendar(periods=((time(9), time(17)),))
    assert cal.day_seconds == 8 * 3600
    assert cal.due(at(2025, 3, 3, 13), TimeLimit.parse("1d")) == at(2025, 3, 4, 13)
    assert cal.due(at(2025, 3, 3, 16), TimeLimit.parse("2h")) == at(2025, 3, 4, 10)


@pytest.mark.parametrize(
    "periods",
    [
        ((time(12), time(9)),),
        ((time(8), time(12)), (time(11), time(17))),
        ((time(14), time(17)), (time(8), time(12))),
        (),
    ],
)
def test_bad_periods_are_refused(periods):
    with pytest.raises(ValueError, match="period"):
        WorkCalendar(periods=periods)


# --- working time and shares ----------------------------------------------------------------------


def test_working_seconds_leave_out_lunch_nights_weekends_and_holidays():
    hour = 3600
    assert CAL.working_seconds(at(2025, 3, 3, 11), at(2025, 3, 3, 15)) == 2 * hour
    assert CAL.working_seconds(at(2025, 3, 7, 16), at(2025, 3, 10, 9)) == 2 * hour
    assert CAL.working_seconds(at(2025, 1, 27, 17), at(2025, 2, 5, 9)) == 1 * hour
    assert CAL.working_seconds(at(2025, 3, 3, 9), at(2025, 3, 3, 9)) == 0
    assert CAL.working_seconds(at(2025, 3, 4), at(2025, 3, 3)) == 0  # backwards


DAY_RANGE = st.datetimes(
    min_value=datetime(2024, 12, 1), max_value=datetime(2026, 12, 31), timezones=st.just(SHANGHAI)
)
LIMITS = st.one_of(
    st.builds(TimeLimit, st.integers(1, 80).map(lambda n: n / 4), st.just("working_hours")),
    st.builds(TimeLimit, st.integers(1, 60).map(lambda n: n / 2), st.just("working_days")),
)


@settings(max_examples=400, deadline=None)
@given(start=DAY_RANGE, limit=LIMITS)
def test_working_seconds_up_to_the_due_time_equal_the_limit(start, limit):
    end = CAL.due(start, limit)
    assert CAL.working_seconds(start, end) == pytest.approx(CAL.limit_seconds(limit), abs=1e-3)
    assert CAL.share(start, end, end) == pytest.approx(1.0)


@settings(max_examples=300, deadline=None)
@given(a=DAY_RANGE, b=DAY_RANGE, c=DAY_RANGE)
def test_working_seconds_add_up_over_consecutive_spans(a, b, c):
    a, b, c = sorted((a, b, c))
    assert CAL.working_seconds(a, c) == pytest.approx(CAL.working_seconds(a, b) + CAL.working_seconds(b, c))


def test_share_is_measured_in_working_time():
    start = at(2025, 3, 3, 11)  # Monday
    end = due(start, "2h")  # 15:00, across lunch
    assert CAL.share(start, end, at(2025, 3, 3, 10)) == 0  # not started yet
    assert CAL.share(start, end, at(2025, 3, 3, 13)) == pytest.approx(0.5)  # lunch does not count
    assert CAL.share(start, end, at(2025, 3, 3, 14, 36)) == pytest.approx(0.8)
    assert CAL.share(start, end, at(2025, 3, 3, 16)) == pytest.approx(1.5)


def test_past_the_due_time_is_red_even_when_no_working_time_has_passed():
    start = at(2025, 3, 7, 14)
    end = due(start, "2h")  # Friday 16:00
    assert CAL.share(start, end, at(2025, 3, 7, 16)) == 1.0
    assert traffic_light(CAL.share(start, end, at(2025, 3, 7, 16))) is Light.YELLOW
    assert traffic_light(CAL.share(start, end, at(2025, 3, 8, 10))) is Light.RED  # Saturday


def test_share_in_clock_mode_counts_natural_time():
    start = at(2025, 3, 7, 17)
    end = due(start, "2h", clock=True)
    assert CAL.share(start, end, at(2025, 3, 7, 18, 36), clock=True) == pytest.approx(0.8)
    assert CAL.share(start, end, at(2025, 3, 7, 16), clock=True) == 0


# --- traffic light ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("share", "light"),
    [
        (0.0, Light.GREEN),
        (0.7999999, Light.GREEN),
        (0.8, Light.YELLOW),
        (0.95, Light.YELLOW),
        (1.0, Light.YELLOW),
        (math.nextafter(1.0, 2.0), Light.RED),
        (3.0, Light.RED),
        (math.inf, Light.RED),
    ],
)
def test_traffic_light_thresholds(share, light):
    assert traffic_light(share) is light


def test_traffic_light_refuses_nan():
    with pytest.raises(ValueError, match="NaN"):
        traffic_light(math.nan)


# --- loading a calendar -------------------------------------------------------------------------------


def test_the_shipped_calendar_is_the_default():
    assert WorkCalendar.default() is WorkCalendar.default()
    assert WorkCalendar.load(DEFAULT_CALENDAR_FILE) == WorkCalendar.default()


def test_a_local_calendar_file_with_comments(tmp_path):
    path = tmp_path / "local.csv"
    path.write_text(
        "# county arrangement\ndate,kind,name\n2027-03-01,holiday,县庆\n2027-03-06,workday,县庆调休上班\n",
        encoding="utf-8",
    )
    cal = WorkCalendar.load(path)
    assert not cal.is_workday(date(2027, 3, 1))
    assert cal.is_workday(date(2027, 3, 6))
    # Friday 26 Feb 16:30 + 2h: 1h on Friday, Monday is off, so Tuesday 09:30.
    assert cal.due(at(2027, 2, 26, 16, 30), TimeLimit.parse("2h")) == at(2027, 3, 2, 9, 30)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("2025-01-01,holiday,元旦\n2025-01-01,holiday,元旦\n", "line 3: 2025-01-01 is listed twice"),
        ("2025-01-32,holiday,x\n", "line 2: bad date"),
        ("2025-01-01,vacation,x\n", "kind must be holiday or workday"),
        ("2025-03-03,workday,x\n", "not a Saturday or Sunday"),
        ("2025-01-01,holiday,x,extra\n", "4 values for 3 columns"),
    ],
)
def test_broken_calendar_files_say_where(tmp_path, rows, message):
    path = tmp_path / "bad.csv"
    path.write_text("date,kind,name\n" + rows, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        WorkCalendar.load(path)


def test_a_calendar_file_needs_its_columns(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("day,name\n2025-01-01,元旦\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing column"):
        WorkCalendar.load(path)
