"""Start the window: Qt application, qasync loop, crash dialog, and (with ``--demo``) the simulators."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from pathlib import Path

from celeste_desktop.config.paths import AppPaths
from celeste_desktop.config.settings import Settings, load_settings, save_settings
from celeste_desktop.domain.errors import ConfigError
from celeste_desktop.support.logs import Redactor, configure_logging

log = logging.getLogger(__name__)


def demo_paths(home: str | None) -> AppPaths:
    """Demo mode never touches the real settings: it lives under its own home."""
    if home:
        return AppPaths.resolve(home)
    return AppPaths.resolve(Path(AppPaths.resolve(None).data_dir) / "demo")


def run_gui(args: argparse.Namespace) -> int:
    import qasync
    from PySide6.QtWidgets import QApplication, QMessageBox

    from celeste_desktop.gui.crash import install_excepthook
    from celeste_desktop.gui.main_window import HeaderState, MainWindow

    paths = demo_paths(args.home) if args.demo else AppPaths.resolve(args.home)
    paths.ensure()
    redactor = Redactor()
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName("CelesteOS Desktop")
    app.setOrganizationName("CelesteOS")
    install_excepthook(redactor)

    stack = None
    try:
        settings = load_settings(paths.settings_file)
    except ConfigError as exc:
        QMessageBox.warning(
            None, exc.title, f"{exc.message}\n\nThe app starts with default settings until this is fixed."
        )
        settings = Settings()
    configure_logging(paths.log_file, args.log_level or settings.log_level, redactor)
    log.info("starting (home=%s, demo=%s)", paths.home or "platform folders", args.demo)

    if args.demo:
        from celeste_desktop.cli.config_cmd import import_provisioning
        from celeste_desktop.cli.context import CliContext
        from celeste_desktop.sim.stack import SimStack

        stack = SimStack.start(data_dir=paths.data_dir / "sim", auto_consent=False)
        # Demo secrets are simulated: a key file is acceptable and says so in the settings.
        save_settings(paths.settings_file, load_settings(paths.settings_file).replace(vault_backend="file"))
        context = CliContext(paths=paths, redactor=redactor)
        import_provisioning(paths.settings_file, stack.settings_json(), context.secrets())
        settings = load_settings(paths.settings_file)

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    window = MainWindow(
        HeaderState(
            account=None,
            yacht_id=settings.yacht_id or None,
            connection="Simulated tenant ready" if args.demo else "Not connected",
            demo=args.demo,
        )
    )
    window.show()
    closed = asyncio.Event()
    app.lastWindowClosed.connect(closed.set)
    try:
        with loop:
            loop.run_until_complete(closed.wait())
    finally:
        if stack is not None:
            with contextlib.suppress(Exception):
                stack.stop()
    return 0
