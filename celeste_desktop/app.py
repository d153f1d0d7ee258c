"""Composition root: parse the command line, then run a headless command or open the window.

``celeste-desktop`` is installed as a gui-script so Windows opens no console for the window; a
command given on the command line attaches to the parent console so its output and exit code
reach the shell or Task Scheduler (``celeste-desktop-cli`` is the same entry with a console).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence


def _attach_windows_console() -> None:
    """Give a gui-script's headless command the console it was started from (Windows only)."""
    if os.name != "nt" or sys.stdout is not None:
        return
    import ctypes

    if ctypes.windll.kernel32.AttachConsole(-1):  # type: ignore[attr-defined]
        sys.stdout = open("CONOUT$", "w", encoding="utf-8", errors="replace")  # noqa: SIM115
        sys.stderr = open("CONOUT$", "w", encoding="utf-8", errors="replace")  # noqa: SIM115
        sys.stdin = open("CONIN$", encoding="utf-8", errors="replace")  # noqa: SIM115


def main(argv: Sequence[str] | None = None) -> int:
    from celeste_desktop.cli.main import build_parser, run

    arguments = list(sys.argv[1:] if argv is None else argv)
    args, _ = build_parser().parse_known_args(arguments)
    if args.command is not None:
        _attach_windows_console()
        return run(arguments)
    from celeste_desktop.gui.launch import run_gui

    return run_gui(args)


if __name__ == "__main__":
    raise SystemExit(main())
