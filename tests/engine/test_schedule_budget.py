from datetime import date, datetime, time

import pytest

from celeste_desktop.engine.budget import BudgetLevel, budget_status, plan_period
from celeste_desktop.engine.schedule import Window, describe, parse_windows, schedule_state


@pytest.mark.parametrize(
    ("now", "allowed", "next_change"),
    [
        (datetime(2026, 11, 25, 21, 0), False, datetime(2026, 11, 25, 22, 0)),
        (datetime(2026, 11, 25, 23, 30), True, datetime(2026, 11, 26, 6, 0)),
        (datetime(2026, 11, 26, 5, 59), True, datetime(2026, 11, 26, 6, 0)),
        (datetime(2026, 11, 26, 6, 0), False, datetime(2026, 11, 26, 22, 0)),
    ],
)
def test_night_window_crossing_midnight(now: datetime, allowed: bool, next_change: datetime) -> None:
    state = schedule_state(now, parse_windows(["22:00-06:00"]))
    assert (state.allowed, state.next_change) == (allowed, next_change)


def test_two_windows_and_no_window() -> None:
    windows = parse_windows(["12:00-13:00", "22:00-06:00"])
    state = schedule_state(datetime(2026, 1, 1, 12, 30), windows)
    assert state.allowed and state.next_change == datetime(2026, 1, 1, 13, 0)
    assert schedule_state(datetime(2026, 1, 1, 9, 0), ()).allowed
    assert schedule_state(datetime(2026, 1, 1, 9, 0), ()).next_change is None
    assert describe(windows) == "12:00–13:00, 22:00–06:00"
    assert Window(time(0), time(0)).contains(time(15))


def test_plan_period_resets_on_the_chosen_day() -> None:
    assert plan_period(date(2026, 11, 25), 1).start == date(2026, 11, 1)
    assert plan_period(date(2026, 11, 25), 1).reset == date(2026, 12, 1)
    period = plan_period(date(2026, 1, 10), 15)
    assert (period.start, period.reset) == (date(2025, 12, 15), date(2026, 1, 15))
    period = plan_period(date(2026, 12, 20), 15)
    assert (period.start, period.reset) == (date(2026, 12, 15), date(2027, 1, 15))


def test_budget_levels_and_messages() -> None:
    common = {"today": date(2026, 11, 25), "reset_day": 1, "daily_mb": 0, "daily_used": 0}
    assert budget_status(monthly_mb=0, monthly_used=10**9, **common).level is BudgetLevel.NONE
    ok = budget_status(monthly_mb=1000, monthly_used=500_000_000, **common)
    assert ok.level is BudgetLevel.OK and ok.remaining == 500_000_000
    assert ok.share_of_remaining(250_000_000) == 0.5
    warn = budget_status(monthly_mb=1000, monthly_used=800_000_000, **common)
    assert warn.level is BudgetLevel.WARNING and "80 %" in warn.message()
    full = budget_status(monthly_mb=1000, monthly_used=1_000_000_000, **common)
    assert full.blocks and "01 Dec 2026" in full.message() and "Sync anyway" in full.message()
    anyway = budget_status(monthly_mb=1000, monthly_used=1_200_000_000, override=True, **common)
    assert not anyway.blocks and anyway.remaining == 0


def test_daily_budget_blocks_even_with_monthly_room() -> None:
    status = budget_status(
        today=date(2026, 11, 25),
        reset_day=1,
        monthly_mb=10_000,
        daily_mb=100,
        monthly_used=200_000_000,
        daily_used=100_000_000,
    )
    assert status.blocks and status.remaining == 0 and "used today" in status.message()
