"""SLA due times counted in business hours, and the durable SLA checks that escalate breaches."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from cxm.actions.schemas import DAY_NAMES, HoursIn, SlaIn, parse_duration

# The last part of an SLA window, where a case is "at risk" and the assignee is warned.
AT_RISK_SHARE = 0.25


@dataclass(frozen=True)
class BusinessHours:
    start: int = 9
    end: int = 17
    days: frozenset[int] = frozenset(range(5))  # Monday = 0
    timezone: str = "UTC"

    @classmethod
    def of(cls, hours: HoursIn) -> BusinessHours:
        return cls(
            hours.start,
            hours.end,
            frozenset(DAY_NAMES.index(d) for d in hours.days),
            hours.timezone,
        )

    @property
    def day_length(self) -> dt.timedelta:
        return dt.timedelta(hours=self.end - self.start)


def add_business_time(
    start: dt.datetime, amount: dt.timedelta, hours: BusinessHours
) -> dt.datetime:
    """The moment ``amount`` of working time after ``start`` (aware in, aware UTC out)."""
    tz = ZoneInfo(hours.timezone)
    local = start.astimezone(tz)
    left = amount
    # Walk day by day; each step consumes the working window left in that day.
    for _ in range(3700):
        day = local.date()
        if day.weekday() in hours.days:
            open_ = dt.datetime.combine(day, dt.time(hours.start), tz)
            close = dt.datetime.combine(day, dt.time(0), tz) + dt.timedelta(hours=hours.end)
            begin = max(local, open_)
            if begin < close:
                window = close - begin
                if left <= window:
                    return (begin + left).astimezone(dt.UTC)
                left -= window
        local = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tz)
    raise ValueError("business hours never open: check the days and hours of the SLA")


def duration(value: str | float, hours: BusinessHours) -> dt.timedelta:
    """A written duration as working time; a day is one business day."""
    amount, unit = parse_duration(value)
    if unit == "m":
        return dt.timedelta(minutes=amount)
    if unit == "h":
        return dt.timedelta(hours=amount)
    return hours.day_length * amount


@dataclass(frozen=True)
class Due:
    first_response: dt.datetime
    resolution: dt.datetime
    first_response_risk: dt.datetime
    resolution_risk: dt.datetime


def due_times(opened_at: dt.datetime, sla: SlaIn) -> Due:
    """When the first response and the resolution are due, and when each becomes at risk."""
    hours = BusinessHours.of(sla.hours)
    first = duration(sla.first_response, hours)
    resolve = duration(sla.resolution, hours)
    return Due(
        first_response=add_business_time(opened_at, first, hours),
        resolution=add_business_time(opened_at, resolve, hours),
        first_response_risk=add_business_time(opened_at, first * (1 - AT_RISK_SHARE), hours),
        resolution_risk=add_business_time(opened_at, resolve * (1 - AT_RISK_SHARE), hours),
    )
