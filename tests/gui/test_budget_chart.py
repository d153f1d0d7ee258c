"""The data-budget chart: 30 days of usage against the budget, in words and in pixels."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from PySide6.QtCore import QLocale, QPointF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPalette
from pytestqt.qtbot import QtBot

from celeste_desktop.engine.budget import BudgetStatus, budget_status
from celeste_desktop.gui.budget_chart import (
    DAYS,
    OVER_LIMIT,
    OVER_PACE,
    BudgetChart,
    budget_lines,
    daily_series,
    format_bytes,
)
from celeste_desktop.store.records import UsageDay

TODAY = date(2026, 11, 25)
MB = 1_000_000


def status(*, monthly_mb: int = 0, daily_mb: int = 0, reset_day: int = 1) -> BudgetStatus:
    return budget_status(today=TODAY, reset_day=reset_day, monthly_mb=monthly_mb, daily_mb=daily_mb,
                         monthly_used=0, daily_used=0)  # fmt: skip


def usage(**days_ago_mb: int) -> list[UsageDay]:
    """``usage(d0=40, d3=150)``: 40 MB today, 150 MB three days ago (split sent/received)."""
    return [
        UsageDay(TODAY - timedelta(days=int(key[1:])), value * MB // 4, value * MB - value * MB // 4)
        for key, value in days_ago_mb.items()
    ]


def near(color: QColor, expected: QColor, tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(color.getRgb()[:3], expected.getRgb()[:3], strict=True))


def picked(chart: BudgetChart) -> date | None:
    day = chart.selected_day()
    return None if day is None else day.day


@pytest.fixture
def chart(qtbot: QtBot) -> BudgetChart:
    widget = BudgetChart()
    widget.setLocale(QLocale(QLocale.Language.English, QLocale.Country.UnitedKingdom))  # "25 Nov" on any PC
    qtbot.addWidget(widget)
    widget.resize(widget.sizeHint() * 1.5)
    return widget


# -- the numbers ---------------------------------------------------------------------------------


def test_series_is_thirty_days_ending_today_with_gaps_as_zero() -> None:
    old = UsageDay(TODAY - timedelta(days=DAYS), 999, 999)  # 31 days ago: outside the window
    series = daily_series([*usage(d0=40, d2=7), old], TODAY)
    assert len(series) == DAYS
    assert series[0].day == TODAY - timedelta(days=DAYS - 1)
    assert series[-1].day == TODAY
    assert series[-1].used == 40 * MB, "sent and received both count"
    assert series[-3].used == 7 * MB
    assert sum(day.used for day in series) == 47 * MB


def test_a_daily_budget_is_a_limit_line_and_a_monthly_budget_its_even_pace() -> None:
    assert budget_lines(None) == []
    assert budget_lines(status()) == []
    (daily,) = budget_lines(status(daily_mb=100))
    assert (daily.bytes_per_day, daily.hard, daily.label) == (100 * MB, True, "Daily budget 100 MB")
    # The plan resets on the 15th: 15 Nov to 15 Dec is 30 days.
    (pace,) = budget_lines(status(monthly_mb=3000, reset_day=15))
    assert (pace.bytes_per_day, pace.hard) == (100 * MB, False)
    assert pace.label == "Monthly pace 100 MB/day"
    assert pace.description == "Monthly budget 3.0 GB ÷ 30 days = 100 MB a day"
    # December's period has 31 days: the pace divides by 31.
    december = budget_status(today=date(2026, 12, 10), reset_day=1, monthly_mb=3100, daily_mb=0,
                             monthly_used=0, daily_used=0)  # fmt: skip
    (pace31,) = budget_lines(december)
    assert pace31.bytes_per_day == 100 * MB
    assert [line.hard for line in budget_lines(status(monthly_mb=3000, daily_mb=200))] == [True, False]


def test_bytes_read_in_the_plans_decimal_units() -> None:
    assert [format_bytes(n) for n in (0, 999, 1500, 12 * MB, 2_500 * MB)] == [
        "0 B",
        "999 B",
        "1.5 kB",
        "12 MB",
        "2.5 GB",
    ]


# -- what a person (and a screen reader) is told ------------------------------------------------


def test_summary_describes_totals_peaks_and_budget_breaches(chart: BudgetChart) -> None:
    chart.set_usage(usage(d0=40, d3=150, d10=120, d20=60), status(daily_mb=130, monthly_mb=3000), TODAY)
    text = chart.accessibleDescription()
    assert text == chart.summary()
    assert "27 Oct to 25 Nov: 370 MB used in total" in text
    assert "most on 22 Nov, 150 MB" in text
    assert "today 40 MB" in text
    assert "Daily budget 130 MB: exceeded on 1 day." in text
    assert "Monthly budget 3.0 GB ÷ 30 days = 100 MB a day (a guide, not a limit): above it on 2 days." in text
    assert chart.accessibleName() == "Data used per day, last 30 days"


def test_without_budget_or_usage_it_says_so(chart: BudgetChart) -> None:
    assert chart.accessibleDescription() == "No data usage recorded yet."
    chart.set_usage([], status(), TODAY)
    assert "No data budget set." in chart.accessibleDescription()
    assert "0 B used in total" in chart.accessibleDescription()


def test_arrow_keys_pick_a_day_and_read_it_out(chart: BudgetChart, qtbot: QtBot) -> None:
    chart.set_usage(usage(d0=40, d1=12), status(daily_mb=100), TODAY)
    chart.show()
    qtbot.waitExposed(chart)
    assert chart.focusPolicy() == Qt.FocusPolicy.StrongFocus
    chart.setFocus()
    qtbot.waitUntil(chart.hasFocus)
    assert picked(chart) == TODAY, "keyboard starts on today"
    qtbot.keyClick(chart, Qt.Key.Key_Left)
    assert picked(chart) == TODAY - timedelta(days=1)
    assert "Selected: 24 Nov: 12 MB (3.0 MB sent, 9.0 MB received)." in chart.accessibleDescription()
    qtbot.keyClick(chart, Qt.Key.Key_Home)
    assert picked(chart) == TODAY - timedelta(days=DAYS - 1)
    qtbot.keyClick(chart, Qt.Key.Key_Left)
    assert picked(chart) == TODAY - timedelta(days=DAYS - 1), "stops at the first day"
    qtbot.keyClick(chart, Qt.Key.Key_End)
    assert picked(chart) == TODAY


def test_hover_and_click_name_the_day_under_the_pointer(chart: BudgetChart, qtbot: QtBot) -> None:
    chart.set_usage(usage(d0=40, d5=80), status(), TODAY)
    index = DAYS - 1 - 5
    centre = chart.bar_rect(index).center()
    assert chart.tooltip_at(centre) == "20 Nov: 80 MB (20 MB sent, 60 MB received)."
    assert chart.tooltip_at(QPointF(1, centre.y())) is None, "the axis labels are not a day"
    qtbot.mouseClick(chart, Qt.MouseButton.LeftButton, pos=centre.toPoint())
    assert picked(chart) == date(2026, 11, 20)


# -- what is drawn -------------------------------------------------------------------------------


def grab(chart: BudgetChart) -> QImage:
    return chart.grab().toImage()


def test_bars_scale_to_their_values_and_breaches_are_coloured(chart: BudgetChart) -> None:
    chart.set_usage(usage(d0=40, d3=150, d10=120, d12=80), status(daily_mb=130, monthly_mb=3000), TODAY)
    today, over_limit, over_pace, within = (chart.bar_rect(DAYS - 1 - d) for d in (0, 3, 10, 12))
    assert over_limit.height() == pytest.approx(today.height() * 150 / 40, rel=0.01)
    assert chart.value_y(0) == pytest.approx(today.bottom())
    line_y = chart.value_y(130 * MB)
    assert over_limit.top() < line_y < over_pace.top(), "only the 150 MB day crosses the daily line"
    image = grab(chart)
    highlight = chart.palette().color(QPalette.ColorRole.Highlight)
    assert near(image.pixelColor(today.center().toPoint()), highlight)
    assert near(image.pixelColor(within.center().toPoint()), highlight)
    assert near(image.pixelColor(over_limit.center().toPoint()), OVER_LIMIT)
    assert near(image.pixelColor(over_pace.center().toPoint()), OVER_PACE)
    empty = chart.bar_rect(DAYS - 1 - 1).center().toPoint()  # yesterday: nothing used, no bar
    assert not near(image.pixelColor(empty), highlight)
    # The daily line is drawn across an empty day's column.
    column = chart.bar_rect(DAYS - 1 - 1)
    crossings = [image.pixelColor(round(column.center().x()), y) for y in range(round(line_y) - 2, round(line_y) + 3)]
    assert any(near(color, OVER_LIMIT, 40) for color in crossings)


def test_follows_a_dark_palette(chart: BudgetChart) -> None:
    dark = QPalette()
    dark.setColor(QPalette.ColorRole.Window, QColor("#1e1e1e"))
    dark.setColor(QPalette.ColorRole.WindowText, QColor("#f0f0f0"))
    dark.setColor(QPalette.ColorRole.Mid, QColor("#5a5a5a"))
    dark.setColor(QPalette.ColorRole.Highlight, QColor("#3a96dd"))
    chart.setPalette(dark)
    chart.setAutoFillBackground(True)
    chart.set_usage(usage(d0=40, d2=90), status(monthly_mb=3000), TODAY)
    image = grab(chart)
    assert near(image.pixelColor(chart.bar_rect(DAYS - 1).center().toPoint()), QColor("#3a96dd"))
    assert near(image.pixelColor(2, image.height() - 2), QColor("#1e1e1e")), "background from the palette"
    light_pixels = sum(
        1 for x in range(0, image.width(), 2) for y in range(0, round(chart.plot_rect().top()))
        if image.pixelColor(x, y).lightness() > 200
    )  # fmt: skip
    assert light_pixels > 20, "the legend is drawn in the palette's (light) text colour"


def test_size_follows_the_font_so_150_percent_scaling_does_not_clip(chart: BudgetChart) -> None:
    normal = chart.sizeHint()
    bigger = QFont(chart.font())
    bigger.setPointSizeF(bigger.pointSizeF() * 1.5)
    chart.setFont(bigger)
    scaled = chart.sizeHint()
    assert scaled.width() > normal.width() * 1.3
    assert scaled.height() > normal.height() * 1.3
    chart.set_usage(usage(d0=40), status(daily_mb=100, monthly_mb=3000), TODAY)
    chart.resize(chart.minimumSizeHint())
    assert chart.plot_rect().height() > 0 and chart.plot_rect().width() > 0
