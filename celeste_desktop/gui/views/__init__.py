"""The main window's panels: transfers, history, problems, progress and summary, the pause banner.

Each panel is a plain widget fed with engine events or state records by the controller; none of
them talks to the engine or the state itself.
"""

from __future__ import annotations

from celeste_desktop.domain.rules import format_size


def format_rate(bytes_per_second: float) -> str:
    return f"{format_size(int(bytes_per_second))}/s"


def format_duration(seconds: float | None) -> str:
    """``about 3 min``, ``about 2 h 10 min``, ``under a minute``; ``unknown`` without a figure."""
    if seconds is None:
        return "unknown"
    if seconds < 60:
        return "under a minute"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"about {hours} h {minutes} min" if minutes else f"about {hours} h"
    return f"about {round(hours / 24)} days"
