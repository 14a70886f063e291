"""Timer schedules: six-field NCRONTAB and TimeSpans, as the host reads them."""

from datetime import UTC, datetime, timedelta

import pytest

from devhost.triggers.ncrontab import ScheduleError, parse_schedule

NOON = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)  # a Wednesday


def occurrences(expression: str, after: datetime, count: int) -> list[datetime]:
    schedule, found, moment = parse_schedule(expression), [], after
    for _ in range(count):
        moment = schedule.next_after(moment)
        found.append(moment)
    return found


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("*/10 * * * * *", ["12:00:10", "12:00:20", "12:00:30"]),
        ("0 */5 * * * *", ["12:05:00", "12:10:00", "12:15:00"]),
        ("30 15 9-17 * * *", ["12:15:30", "13:15:30", "14:15:30"]),
        ("0 0,30 12 * * *", ["12:30:00", "12:00:00", "12:30:00"]),
    ],
)
def test_seconds_minutes_and_hours(expression, expected):
    assert [f"{t:%H:%M:%S}" for t in occurrences(expression, NOON, 3)] == expected


def test_days_of_week_by_name_and_number_and_months():
    assert [f"{t:%a %d}" for t in occurrences("0 0 9 * * MON-FRI", NOON, 4)] == [
        "Thu 26",
        "Fri 27",
        "Mon 30",
        "Tue 01",
    ]
    assert occurrences("0 0 0 1 JAN *", NOON, 1) == [datetime(2027, 1, 1, tzinfo=UTC)]
    assert occurrences("0 0 0 * * 0", NOON, 1) == [datetime(2026, 11, 29, tzinfo=UTC)]


def test_day_of_month_and_day_of_week_must_both_match_as_in_ncrontab():
    (friday_13th,) = occurrences("0 0 0 13 * FRI", NOON, 1)
    assert friday_13th.weekday() == 4 and friday_13th.day == 13


def test_a_timespan_is_an_interval():
    assert occurrences("00:05:00", NOON, 2) == [
        NOON + timedelta(minutes=5),
        NOON + timedelta(minutes=10),
    ]


@pytest.mark.parametrize(
    "expression", ["* * * * *", "61 * * * * *", "0 0 0 * FOO *", "0 0 0 31 2 *", "00:00:00"]
)
def test_bad_schedules_are_refused_with_the_expression(expression):
    with pytest.raises(
        ScheduleError, match="expected six fields|outside|not a number|never|positive"
    ):
        occurrences(expression, NOON, 1)
