"""Cron schedules: parsing, next slots, and daylight saving time as documented."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from neosl.triggers.cron import CronError, parse, zone

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def slots(expr: str, start: str, count: int, tz: dt.tzinfo = UTC) -> list[str]:
    """The next ``count`` slots after ``start`` (UTC), as UTC ISO texts."""
    schedule = parse(expr)
    out: list[str] = []
    now = at(start)
    for _ in range(count):
        now = schedule.next_after(now, tz)
        out.append(now.strftime("%Y-%m-%d %H:%M:%S"))
    return out


def test_every_six_hours() -> None:
    assert slots("0 */6 * * *", "2026-11-26 05:59:59", 4) == [
        "2026-11-26 06:00:00",
        "2026-11-26 12:00:00",
        "2026-11-26 18:00:00",
        "2026-11-27 00:00:00",
    ]


def test_the_slot_itself_is_not_after_it() -> None:
    assert slots("30 9 * * *", "2026-11-26 09:30:00", 1) == ["2026-11-27 09:30:00"]


def test_lists_ranges_steps_and_names() -> None:
    assert slots("0 9-17/4 * * MON-FRI", "2026-11-27 10:00:00", 4) == [
        "2026-11-27 13:00:00",  # Friday
        "2026-11-27 17:00:00",
        "2026-11-30 09:00:00",  # Monday
        "2026-11-30 13:00:00",
    ]
    assert slots("15,45 0 1 jan,jul *", "2026-06-30 00:00:00", 3) == [
        "2026-07-01 00:15:00",
        "2026-07-01 00:45:00",
        "2027-01-01 00:15:00",
    ]
    assert slots("0 0 * * 7", "2026-11-26 00:00:00", 1) == ["2026-11-29 00:00:00"]  # Sunday


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    # The 13th, or any Friday.
    assert slots("0 0 13 * FRI", "2026-11-10 00:00:00", 3) == [
        "2026-11-13 00:00:00",
        "2026-11-20 00:00:00",
        "2026-11-27 00:00:00",
    ]


def test_seconds_field_and_leap_days() -> None:
    assert slots("*/20 * * * * *", "2026-11-26 10:00:05", 3) == [
        "2026-11-26 10:00:20",
        "2026-11-26 10:00:40",
        "2026-11-26 10:01:00",
    ]
    assert slots("0 0 29 2 *", "2026-03-01 00:00:00", 1) == ["2028-02-29 00:00:00"]
    with pytest.raises(CronError, match="no slot"):
        parse("0 0 30 2 *").next_after(at("2026-01-01 00:00:00"), UTC)


def test_berlin_spring_forward_fires_skipped_slots_once_after_the_jump() -> None:
    # 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC). Every 15 minutes from 01:30.
    assert slots("*/15 * * * *", "2026-03-29 00:30:00", 5, BERLIN) == [
        "2026-03-29 00:45:00",  # 01:45 CET
        "2026-03-29 01:00:00",  # 02:00-02:45 do not exist, and 03:00 CEST: once, together
        "2026-03-29 01:15:00",  # 03:15 CEST
        "2026-03-29 01:30:00",
        "2026-03-29 01:45:00",
    ]
    # A daily 02:30 slot fires at the jump that day, at 02:30 on the others.
    assert slots("30 2 * * *", "2026-03-28 00:00:00", 3, BERLIN) == [
        "2026-03-28 01:30:00",
        "2026-03-29 01:00:00",
        "2026-03-30 00:30:00",
    ]


def test_berlin_fall_back_fires_the_repeated_hour_once() -> None:
    # 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:00-02:59 happens twice (00:00 and 01:00 UTC).
    assert slots("30 * * * *", "2026-10-24 23:00:00", 4, BERLIN) == [
        "2026-10-24 23:30:00",  # 01:30 CEST
        "2026-10-25 00:30:00",  # 02:30 CEST, the first time
        "2026-10-25 02:30:00",  # 03:30 CET (the second 02:30 is skipped)
        "2026-10-25 03:30:00",
    ]
    assert slots("30 2 * * *", "2026-10-24 00:00:00", 3, BERLIN) == [
        "2026-10-24 00:30:00",
        "2026-10-25 00:30:00",
        "2026-10-26 01:30:00",
    ]


@pytest.mark.parametrize(
    ("expr", "field"),
    [
        ("0 */6 * *", "schedule"),
        ("60 * * * *", "minute"),
        ("* 24 * * *", "hour"),
        ("* * 0 * *", "day of month"),
        ("* * * 13 *", "month"),
        ("* * * FOO *", "month"),
        ("* * * * 8", "day of week"),
        ("5-1 * * * *", "minute"),
        ("*/0 * * * *", "minute"),
        ("1,,2 * * * *", "minute"),
        ("61 * * * * *", "second"),
    ],
)
def test_errors_name_the_field(expr: str, field: str) -> None:
    with pytest.raises(CronError) as caught:
        parse(expr)
    assert caught.value.field == field


def test_seconds_can_be_refused_and_intervals_measured() -> None:
    with pytest.raises(CronError, match="must have 5 fields"):
        parse("* * * * * *", allow_seconds=False)
    assert parse("*/10 * * * * *").min_interval(UTC, at("2026-11-26 00:00:00")) == 10
    assert parse("0 9,10 * * *").min_interval(UTC, at("2026-11-26 00:00:00")) == 3600


def test_time_zones_are_checked() -> None:
    assert zone("Europe/Berlin") == BERLIN
    for bad in ("Mars/Olympus", "", "../etc/passwd", 5):
        with pytest.raises(CronError) as caught:
            zone(bad)
        assert caught.value.field == "timezone"


def test_every_second_across_midnight() -> None:
    every_second = parse("* * * * * *")
    now = at("2026-11-26 22:59:58")  # 23:59:58 in Berlin
    for _ in range(100):
        now = every_second.next_after(now, BERLIN)
    assert now == at("2026-11-26 23:01:38")
