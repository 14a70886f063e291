"""Timer schedules as the Functions host reads them: NCRONTAB with seconds, or a TimeSpan.

`{second} {minute} {hour} {day} {month} {day-of-week}`, each `*`, a number, a range `a-b`, a
list `a,b`, a step `*/n` or `a-b/n`; months and days may be named (`JAN`, `MON`). As in
NCrontab, a time must match every field, day of month and day of week alike. A TimeSpan
(`hh:mm:ss`) fires at that interval. Times are UTC, as on Azure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
# (lowest, highest, names) of second, minute, hour, day, month, day of week
FIELDS = (
    (0, 59, None),
    (0, 59, None),
    (0, 23, None),
    (1, 31, None),
    (1, 12, MONTHS),
    (0, 6, DAYS),
)
TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2})(?::(\d{2}))?$")


class ScheduleError(ValueError):
    """A schedule that is neither six-field NCRONTAB nor a TimeSpan."""


@dataclass(frozen=True)
class CronSchedule:
    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]

    def next_after(self, moment: datetime) -> datetime:
        """The first matching second strictly after `moment`."""
        t = moment.replace(microsecond=0) + timedelta(seconds=1)
        for _ in range(100_000):
            if t.month not in self.months:
                month_later = t.replace(day=1) + timedelta(days=32)
                t = month_later.replace(day=1, hour=0, minute=0, second=0)
            elif t.day not in self.days or (t.weekday() + 1) % 7 not in self.weekdays:
                t = (t + timedelta(days=1)).replace(hour=0, minute=0, second=0)
            elif t.hour not in self.hours:
                t = (t + timedelta(hours=1)).replace(minute=0, second=0)
            elif t.minute not in self.minutes:
                t = (t + timedelta(minutes=1)).replace(second=0)
            elif t.second not in self.seconds:
                t += timedelta(seconds=1)
            else:
                return t
        raise ScheduleError(f"{self.expression!r} never fires")


@dataclass(frozen=True)
class IntervalSchedule:
    expression: str
    interval: timedelta

    def next_after(self, moment: datetime) -> datetime:
        return moment + self.interval


Schedule = CronSchedule | IntervalSchedule


def parse_schedule(expression: str) -> Schedule:
    text = expression.strip()
    span = TIMESPAN.match(text)
    if span:
        days, hours, minutes, seconds = (int(g or 0) for g in span.groups())
        interval = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        if interval <= timedelta(0):
            raise ScheduleError(f"{expression!r}: the interval must be positive")
        return IntervalSchedule(expression, interval)
    parts = text.split()
    if len(parts) != 6:
        raise ScheduleError(
            f"{expression!r}: expected six fields (second minute hour day month day-of-week) "
            "or a TimeSpan such as 00:05:00"
        )
    sets = [_field(part, *spec, expression) for part, spec in zip(parts, FIELDS, strict=True)]
    return CronSchedule(expression, *sets)


def _field(text: str, low: int, high: int, names: list[str] | None, expression: str) -> frozenset:
    values: set[int] = set()
    for item in text.split(","):
        body, _, step_text = item.partition("/")
        step = _number(step_text, names, expression) if step_text else 1
        if body == "*":
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            start, end = _number(first, names, expression), _number(last, names, expression)
        else:
            start = _number(body, names, expression)
            end = high if step_text else start
        if not (low <= start <= high and low <= end <= high) or step < 1:
            raise ScheduleError(f"{expression!r}: {item!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _number(text: str, names: list[str] | None, expression: str) -> int:
    if names and text.upper()[:3] in names and not text.isdigit():
        return names.index(text.upper()[:3]) + (1 if names is MONTHS else 0)
    try:
        return int(text)
    except ValueError:
        raise ScheduleError(f"{expression!r}: {text!r} is not a number") from None
