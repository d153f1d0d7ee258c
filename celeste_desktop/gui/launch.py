"""Start the window: Qt application, qasync loop, crash dialog, the controller, and (with
``--demo``) the simulators. ``--demo --self-test`` hands over to ``gui.self_test``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from celeste_desktop.auth.vault import Vault
from celeste_desktop.config.paths import AppPaths
from celeste_desktop.config.settings import Settings, load_settings, save_settings
from celeste_desktop.domain.errors import ConfigError
from celeste_desktop.support.logs import Redactor, configure_logging

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from celeste_desktop.gui.controller import VaultFn
    from celeste_desktop.sim.stack import SimStack

log = logging.getLogger(__name__)


def demo_paths(home: str | None) -> AppPaths:
    """Demo mode never touches the real settings: it lives under its own home."""
    if home:
        return AppPaths.resolve(home)
    return AppPaths.resolve(Path(AppPaths.resolve(None).data_dir) / "demo")


def make_application() -> QApplication:
    from PySide6.QtWidgets import QApplication

    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName("CelesteOS Desktop")
    app.setOrganizationName("CelesteOS")
    return app


def vault_factory(paths: AppPaths, redactor: Redactor) -> VaultFn:
    """The vault for the current settings (the key store follows ``vault_backend``)."""
    from celeste_desktop.cli.context import CliContext

    def open_vault(_settings: Settings) -> Vault:
        # A fresh context reads the settings file as it is now (the wizard may have changed it).
        return CliContext(paths=paths, redactor=redactor).secrets()

    return open_vault


def start_demo_stack(paths: AppPaths, *, auto_consent: bool = False, device_code_interval_s: int = 5) -> SimStack:
    from celeste_desktop.sim.stack import SimStack

    return SimStack.start(
        data_dir=paths.data_dir / "sim", auto_consent=auto_consent, device_code_interval_s=device_code_interval_s
    )


def import_demo_settings(paths: AppPaths, stack: SimStack, redactor: Redactor) -> None:
    """Point the settings at the simulators, as a provisioning file from shore would."""
    from celeste_desktop.cli.config_cmd import import_provisioning
    from celeste_desktop.cli.context import CliContext

    # Demo secrets are simulated: a key file is acceptable and says so in the settings.
    save_settings(paths.settings_file, load_settings(paths.settings_file).replace(vault_backend="file"))
    context = CliContext(paths=paths, redactor=redactor)
    import_provisioning(paths.settings_file, stack.settings_json(), context.secrets())


def run_gui(args: argparse.Namespace) -> int:
    if getattr(args, "self_test", False):
        if not args.demo:
            sys.stderr.write("error: --self-test runs against the simulated tenant only; add --demo\n")
            return 2
        from celeste_desktop.gui.self_test import run_self_test

        return run_self_test(args)

    import qasync
    from PySide6.QtWidgets import QMessageBox

    from celeste_desktop.gui.controller import Controller
    from celeste_desktop.gui.crash import install_excepthook

    paths = demo_paths(args.home) if args.demo else AppPaths.resolve(args.home)
    paths.ensure()
    redactor = Redactor()
    app = make_application()
    install_excepthook(redactor)
    from celeste_desktop.gui.single_instance import SingleInstance, bring_to_front

    instance = SingleInstance("celeste-desktop", paths.home or paths.data_dir)
    if not instance.try_primary():
        log.info("another window is already open for this home: brought it forward")
        return 0
    try:
        settings = load_settings(paths.settings_file)
    except ConfigError as exc:
        QMessageBox.warning(
            None, exc.title, f"{exc.message}\n\nThe app starts with default settings until this is fixed."
        )
        settings = Settings()
    configure_logging(paths.log_file, args.log_level or settings.log_level, redactor)
    log.info("starting (home=%s, demo=%s)", paths.home or "platform folders", args.demo)

    stack = None
    if args.demo:
        stack = start_demo_stack(paths)
        import_demo_settings(paths, stack, redactor)

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    from celeste_desktop.gui.wiring import Background, build_hooks

    vault_for = vault_factory(paths, redactor)
    controller = Controller(
        paths, vault_for, hooks=build_hooks(paths, vault_for), demo=args.demo, on_secret=redactor.add_secret,
        loop=loop,
    )  # fmt: skip
    background = Background(app, controller, paths, settings)
    instance.activated.connect(lambda _message: bring_to_front(controller.window))
    if getattr(args, "background", False) and background.tray.available:
        app.setQuitOnLastWindowClosed(False)
    else:
        controller.window.show()
    closed = asyncio.Event()
    app.lastWindowClosed.connect(closed.set)
    background.tray.quit_requested.connect(closed.set)
    try:
        with loop:
            controller.spawn(controller.start())
            loop.run_until_complete(closed.wait())
            loop.run_until_complete(controller.shutdown())
    finally:
        if stack is not None:
            with contextlib.suppress(Exception):
                stack.stop()
    return 0
