"""The data budget of a satellite plan: a monthly (and optional daily) allowance of bytes.

Usage counts what the app actually sent and received on the wire, headers included (the
``ByteMeter`` of every HTTP client feeds it). The budget decides: fine, warn at 80 %, or stop.
The engine checks it before each file and the meter trips it mid-transfer, so the pause comes
before the budget is exceeded by more than one chunk.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

MB = 1_000_000
WARN_AT = 0.8


class BudgetLevel(enum.StrEnum):
    NONE = "none"  # no budget set
    OK = "ok"
    WARNING = "warning"  # at or past 80 %
    EXHAUSTED = "exhausted"


@dataclass(frozen=True, slots=True)
class BudgetPeriod:
    start: date  # first day of the plan period
    reset: date  # the day the plan resets (first day of the next period)


def plan_period(today: date, reset_day: int) -> BudgetPeriod:
    """The monthly period containing ``today`` for a plan that resets on ``reset_day`` (1..28)."""
    if today.day >= reset_day:
        start = today.replace(day=reset_day)
    else:
        previous_month = today.replace(day=1) - timedelta(days=1)
        start = previous_month.replace(day=reset_day)
    following = (start.replace(day=1) + timedelta(days=32)).replace(day=reset_day)
    return BudgetPeriod(start, following)


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    level: BudgetLevel
    monthly_limit: int  # bytes; 0: none
    monthly_used: int
    daily_limit: int
    daily_used: int
    period: BudgetPeriod
    override: bool = False  # the officer chose "Sync anyway" for this period
    today: date | None = None  # the local day the status was taken (None: the period's start)

    @property
    def remaining(self) -> int | None:
        """Bytes left before a limit; None when there is no budget."""
        left: list[int] = []
        if self.monthly_limit:
            left.append(self.monthly_limit - self.monthly_used)
        if self.daily_limit:
            left.append(self.daily_limit - self.daily_used)
        return max(0, min(left)) if left else None

    @property
    def blocks(self) -> bool:
        return self.level is BudgetLevel.EXHAUSTED and not self.override

    def message(self) -> str:
        if self.level is BudgetLevel.NONE:
            return "No data budget set."
        parts = []
        if self.monthly_limit:
            parts.append(
                f"{_mb(self.monthly_used)} of {_mb(self.monthly_limit)} used this period "
                f"(resets {self.period.reset:%d %b %Y})"
            )
        if self.daily_limit:
            parts.append(f"{_mb(self.daily_used)} of {_mb(self.daily_limit)} used today")
        text = "; ".join(parts)
        if self.level is BudgetLevel.EXHAUSTED:
            action = (
                "Syncing continues anyway (you chose Sync anyway)"
                if self.override
                else ("Syncing is paused until the budget resets; choose Sync anyway or raise the budget to continue")
            )
            return f"Data budget reached: {text}. {action}."
        if self.level is BudgetLevel.WARNING:
            return f"Data budget at 80 % or more: {text}."
        return f"Data budget: {text}."

    @property
    def resumes_on(self) -> date:
        """The local day a used-up budget has room again: the plan's reset, or tomorrow when
        only the daily budget is used up."""
        if self.monthly_limit and self.monthly_used >= self.monthly_limit:
            return self.period.reset
        if self.daily_limit and self.daily_used >= self.daily_limit:
            return (self.today or self.period.start) + timedelta(days=1)
        return self.period.reset

    def seconds_until_resume(self, now: datetime) -> float:
        """Seconds from ``now`` (timezone-aware) to local midnight starting ``resumes_on``."""
        midnight = datetime.combine(self.resumes_on, time(0)).astimezone()  # local time, DST included
        return max(0.0, (midnight - now).total_seconds())

    def share_of_remaining(self, planned_bytes: int) -> float | None:
        """What share of the remaining budget a planned transfer would use (dry-run preview)."""
        remaining = self.remaining
        if remaining is None:
            return None
        if remaining == 0:
            return float("inf") if planned_bytes else 0.0
        return planned_bytes / remaining


def budget_status(
    *,
    today: date,
    reset_day: int,
    monthly_mb: int,
    daily_mb: int,
    monthly_used: int,
    daily_used: int,
    override: bool = False,
) -> BudgetStatus:
    monthly_limit, daily_limit = monthly_mb * MB, daily_mb * MB
    period = plan_period(today, reset_day)
    if not monthly_limit and not daily_limit:
        level = BudgetLevel.NONE
    else:
        ratios = [used / limit for used, limit in ((monthly_used, monthly_limit), (daily_used, daily_limit)) if limit]
        worst = max(ratios)
        level = BudgetLevel.EXHAUSTED if worst >= 1.0 else BudgetLevel.WARNING if worst >= WARN_AT else BudgetLevel.OK
    return BudgetStatus(level, monthly_limit, monthly_used, daily_limit, daily_used, period, override, today)


def wire_bytes_for(file_bytes: int) -> int:
    """The budget a sync of ``file_bytes`` of files uses: each file crosses the link twice (down
    from OneDrive, up to Supabase), and requests and headers add about 1 %."""
    return file_bytes * 2 + file_bytes // 50


def describe_share(status: BudgetStatus, file_bytes: int) -> str:
    """One or two sentences for a dry-run preview: the share of the remaining budget a sync of
    ``file_bytes`` would use, or a plain warning when it needs more than is left. Empty with no budget."""
    remaining = status.remaining
    if remaining is None or not file_bytes:
        return ""
    wire = wire_bytes_for(file_bytes)
    daily_binds = bool(status.daily_limit) and (
        not status.monthly_limit or status.daily_limit - status.daily_used < status.monthly_limit - status.monthly_used
    )
    which = "today's data budget" if daily_binds else f"this month's data budget (resets {_day(status.period.reset)})"
    moved = f"About {_mb(wire)} would cross the link (every file is downloaded, then uploaded)"
    if status.override and status.level is BudgetLevel.EXHAUSTED:
        return f"{moved}; {which} is used up, and syncing continues because you chose Sync anyway."
    if remaining == 0:
        return (
            f"{moved}, but {which} is used up: the sync would pause at once until the budget resets, "
            "unless you raise the budget or choose Sync anyway."
        )
    share = wire / remaining
    if share > 1:
        return (
            f"{moved}: more than the {_mb(remaining)} left in {which}. The sync pauses when the budget is "
            "used up; raise the budget or choose Sync anyway to finish it sooner."
        )
    return f"{moved}: that is {share * 100:.0f} % of the {_mb(remaining)} left in {which}."


def _day(day: date) -> str:
    return f"{day.day} {day:%b}"


def _mb(nbytes: int) -> str:
    if nbytes >= 10_000 * MB:
        return f"{nbytes / 1000 / MB:.1f} GB"
    return f"{nbytes / MB:.0f} MB" if nbytes >= 10 * MB else f"{nbytes / MB:.1f} MB"
