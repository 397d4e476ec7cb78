"""Cron schedules for cron triggers: parsing, and the next slot in a time zone.

An expression has 5 fields, ``minute hour day-of-month month day-of-week``, or 6 with a
leading ``second``. Each field is ``*``, a value, a range ``a-b``, a step ``*/n`` or ``a-b/n``
or ``a/n``, or a comma-separated list of those. Months may be named (``JAN``-``DEC``), weekdays
too (``SUN``-``SAT``; 0 and 7 are both Sunday). As in classic cron, when both day-of-month and
day-of-week are restricted, a day matching either one is due.

Slots are wall-clock times in the trigger's IANA time zone. Daylight saving time:

- a slot in the hour skipped when clocks go forward does not exist: it fires once, at the
  first instant after the jump (several skipped slots fire once together, and with a slot at
  that instant, once);
- a slot in the hour repeated when clocks go back fires once, at its first occurrence.

``next_after`` never returns the same instant twice for consecutive calls, so a scheduler
that stores "the next slot after the one it fired" fires every slot once.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_MONTHS = {
    name: i + 1
    for i, name in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    )
}
_WEEKDAYS = {name: i for i, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}
_FIELD = re.compile(r"^(\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/([0-9]+))?$")
# Far enough to find Feb 29 on a given weekday (28 years), not so far as to loop for long.
_SEARCH_YEARS = 29
_UTC = dt.UTC


class CronError(ValueError):
    """An expression or time zone that cannot be used; ``field`` names the part."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class _Spec:
    name: str
    low: int
    high: int
    names: dict[str, int] | None = None


_SECOND = _Spec("second", 0, 59)
_MINUTE = _Spec("minute", 0, 59)
_HOUR = _Spec("hour", 0, 23)
_DAY = _Spec("day of month", 1, 31)
_MONTH = _Spec("month", 1, 12, _MONTHS)
_WEEKDAY = _Spec("day of week", 0, 7, _WEEKDAYS)


@dataclass(frozen=True)
class Schedule:
    """A parsed expression; ``next_after`` finds its slots."""

    expression: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool

    def next_after(self, after: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
        """The first slot strictly after ``after`` (aware), as an aware UTC datetime.

        Raises:
            ValueError: ``after`` is naive.
            CronError: no slot within the next 29 years (e.g. ``0 0 30 2 *``).
        """
        if after.tzinfo is None:
            raise ValueError("after must be timezone-aware")
        after_utc = after.astimezone(_UTC)
        day = after_utc.astimezone(zone).date()
        last = day + dt.timedelta(days=366 * _SEARCH_YEARS)
        while day <= last:
            if day.month not in self.months:
                # Jump to the first day of the next month.
                day = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
                continue
            if self._day_matches(day):
                found = self._first_in_day(day, zone, after_utc)
                if found is not None:
                    return found
            day += dt.timedelta(days=1)
        raise CronError("schedule", f"{self.expression!r} has no slot in the next 29 years")

    def _day_matches(self, day: dt.date) -> bool:
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return dom or dow
        return dom and dow

    def _first_in_day(
        self, day: dt.date, zone: dt.tzinfo, after_utc: dt.datetime
    ) -> dt.datetime | None:
        # A slot's instant never decreases as its wall time increases (skipped slots share
        # the jump's end, repeated ones take their first occurrence): a whole hour, or a
        # whole minute, whose last slot is not after ``after`` can be passed over.
        last_minute, last_second = self.minutes[-1], self.seconds[-1]
        for hour in self.hours:
            end = dt.datetime(day.year, day.month, day.day, hour, last_minute, last_second)
            if _instant(end, zone) <= after_utc:
                continue
            for minute in self.minutes:
                end = dt.datetime(day.year, day.month, day.day, hour, minute, last_second)
                if _instant(end, zone) <= after_utc:
                    continue
                for second in self.seconds:
                    local = dt.datetime(day.year, day.month, day.day, hour, minute, second)
                    instant = _instant(local, zone)
                    if instant > after_utc:
                        return instant
        return None

    def min_interval(self, zone: dt.tzinfo, start: dt.datetime, count: int = 200) -> float:
        """The shortest gap in seconds between the next ``count`` slots after ``start``."""
        gaps: list[float] = []
        previous = self.next_after(start, zone)
        for _ in range(count):
            following = self.next_after(previous, zone)
            gaps.append((following - previous).total_seconds())
            previous = following
        return min(gaps)


def _instant(local: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """The UTC instant of a local wall time: its first occurrence when repeated, and the end
    of the jump when it does not exist."""
    first = local.replace(tzinfo=zone, fold=0)
    utc = first.astimezone(_UTC)
    if utc.astimezone(zone).replace(tzinfo=None) == local:
        return utc
    # Skipped: fold=0 reads it with the offset from before the jump, which lands past the
    # jump; the jump itself is where the new offset starts.
    return _jump_end(local, zone)


def _jump_end(local: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """The first instant after the gap that swallowed ``local``."""
    # The gap starts at or before ``local`` and lasts at most a few hours: search the
    # instants around it for where the local clock jumps past ``local``.
    low = local.replace(tzinfo=zone, fold=0).astimezone(_UTC) - dt.timedelta(hours=4)
    high = low + dt.timedelta(hours=8)
    while high - low > dt.timedelta(seconds=1):
        mid = low + (high - low) / 2
        if mid.astimezone(zone).replace(tzinfo=None) < local:
            low = mid
        else:
            high = mid
    return high.replace(microsecond=0)


def zone(name: object) -> ZoneInfo:
    """Raises:
    CronError: not an IANA time zone name.
    """
    if not isinstance(name, str) or not name or len(name) > 64 or ".." in name:
        raise CronError("timezone", "must be an IANA time zone name such as Europe/Berlin")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError("timezone", f"unknown time zone {name!r}") from None


def parse(expression: object, *, allow_seconds: bool = True) -> Schedule:
    """Raises:
    CronError: naming the field that is wrong.
    """
    if not isinstance(expression, str):
        raise CronError("schedule", "must be a string of 5 (or 6) fields")
    parts = expression.split()
    if len(parts) == 6 and allow_seconds:
        seconds = _values(parts[0], _SECOND)
        parts = parts[1:]
    elif len(parts) == 5:
        seconds = (0,)
    else:
        wanted = "5 or 6" if allow_seconds else "5"
        raise CronError("schedule", f"must have {wanted} fields, got {len(parts)}")
    minutes = _values(parts[0], _MINUTE)
    hours = _values(parts[1], _HOUR)
    days = _values(parts[2], _DAY)
    months = _values(parts[3], _MONTH)
    weekdays = frozenset(v % 7 for v in _values(parts[4], _WEEKDAY))
    return Schedule(
        expression=" ".join(expression.split()),
        seconds=seconds,
        minutes=minutes,
        hours=hours,
        days=frozenset(days),
        months=frozenset(months),
        weekdays=weekdays,
        days_restricted=parts[2] != "*",
        weekdays_restricted=parts[4] != "*",
    )


def _values(text: str, spec: _Spec) -> tuple[int, ...]:
    out: set[int] = set()
    for item in text.split(","):
        match = _FIELD.match(item)
        if match is None:
            raise CronError(spec.name, f"{item!r} is not a value, range or step")
        base, step_text = match.groups()
        if base == "*":
            low, high = spec.low, spec.high
        elif "-" in base:
            first, second = base.split("-", 1)
            low, high = _value(first, spec), _value(second, spec)
            if low > high:
                raise CronError(spec.name, f"{item!r}: the range runs backwards")
        else:
            low = _value(base, spec)
            # "a/n" runs from a to the field's end.
            high = spec.high if step_text is not None else low
        step = 1
        if step_text is not None:
            step = int(step_text)
            if not 1 <= step <= spec.high - spec.low + 1:
                raise CronError(spec.name, f"{item!r}: step {step} is out of range")
        out.update(range(low, high + 1, step))
    return tuple(sorted(out))


def _value(text: str, spec: _Spec) -> int:
    if spec.names is not None and text.upper() in spec.names:
        return spec.names[text.upper()]
    if not text.isdigit():
        raise CronError(spec.name, f"{text!r} is not a number")
    value = int(text)
    if not spec.low <= value <= spec.high:
        raise CronError(spec.name, f"{value} is outside {spec.low}-{spec.high}")
    return value
