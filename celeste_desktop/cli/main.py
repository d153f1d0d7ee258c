"""The command line: global options, sub-commands, and exit codes.

Exit codes: 0 success; 1 some files failed or attention is needed; 2 a configuration or
sign-in problem (the message names the setting); 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from celeste_desktop import __version__
from celeste_desktop.cli import config_cmd
from celeste_desktop.cli.context import CliContext
from celeste_desktop.config.settings import SECRET_SETTINGS
from celeste_desktop.domain.errors import AuthError, CelesteError, ConfigError, VaultError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="celeste-desktop",
        description="Copy OneDrive for Business / SharePoint documents to the fleet's Supabase and register them "
        "with the CelesteOS pipeline. Without a command, opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"CelesteOS Desktop {__version__}")
    parser.add_argument("--home", metavar="DIR", help="keep every file of the app under DIR (also CELESTE_HOME)")
    parser.add_argument("--demo", action="store_true", help="run against the built-in simulated tenant")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="with --demo: drive the window through set-up, sign-in, ticks, syncs, pause and resume against the "
        "simulators, print PASS or FAIL per step, and exit 0 only when every step passed",
    )
    parser.add_argument(
        "--background",
        action="store_true",
        help="start hidden in the system tray (as start-at-login does); the window opens from the tray",
    )
    parser.add_argument(
        "--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="override the log_level setting"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    config = commands.add_parser("config", help="read or change settings without the GUI")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    get = config_sub.add_parser("get", help="print one setting")
    get.add_argument("name")
    set_ = config_sub.add_parser("set", help="change one setting (secrets: pass - and give the value on stdin)")
    set_.add_argument("name")
    set_.add_argument("value")
    config_sub.add_parser("list", help="list every setting with its value and help")
    imp = config_sub.add_parser("import", help="apply a provisioning file (JSON) from the shore-side administrator")
    imp.add_argument("file", help="path of the JSON file, or - for standard input")

    login = commands.add_parser("login", help="sign in to Microsoft 365 (browser, or a code for another device)")
    login.add_argument("--device-code", action="store_true", help="sign in on another device (phone) with a code")
    commands.add_parser("logout", help="forget the account and wipe every saved secret on this PC")
    status = commands.add_parser("status", help="who is signed in, the last sync, the selection and the data budget")
    status.add_argument("--json", action="store_true", help="print machine-readable JSON")

    folders = commands.add_parser("folders", help="list the folders of the OneDrive with counts")
    folders.add_argument("path", nargs="?", default="/", help="folder to list (default: the top)")
    select = commands.add_parser("select", help="tick folders to copy (as in the window's tree)")
    select.add_argument("paths", nargs="+", metavar="PATH")
    select.add_argument("--urgent", action="store_true", help="copy these folders' files before all others")
    unselect = commands.add_parser("unselect", help="untick folders")
    unselect.add_argument("paths", nargs="+", metavar="PATH")

    sync = commands.add_parser(
        "sync",
        help="copy the selected folders now (exit 0 ok, 1 some failed, 2 set-up problem, 3 stopped at the data budget)",
    )
    sync.add_argument("--dry-run", action="store_true", help="list what would move and estimate the time; send nothing")

    diagnostics = commands.add_parser("diagnostics", help="write a zip of logs, settings and state for support")
    diagnostics.add_argument("out", metavar="OUT.zip")

    report = commands.add_parser(
        "report", help="write the delivery report of a sync (PDF to print, CSV for Excel) for audits"
    )
    report.add_argument(
        "--job", metavar="ID", help="the sync to report, by id or its start (default: the latest real sync)"
    )
    report.add_argument("out", metavar="OUT.pdf|OUT.csv")
    return parser


def run(
    argv: Sequence[str],
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    context_factory: Callable[[argparse.Namespace], CliContext] | None = None,
) -> int:
    """Run one command; returns the exit code. Never lets a CelesteError escape as a traceback."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args = build_parser().parse_args(list(argv))
    factory = context_factory or CliContext.from_args
    try:
        context = factory(args)
        return dispatch(args, context, stdin or sys.stdin, out)
    except ConfigError as exc:
        err.write(f"error: {exc.message}\n")
        return EXIT_CONFIG
    except (AuthError, VaultError) as exc:
        err.write(f"error: {exc.title}: {exc.message}\n")
        return EXIT_CONFIG
    except CelesteError as exc:
        err.write(f"error: {exc.title}: {exc}\n")
        return EXIT_FAILED
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return 130


def dispatch(args: argparse.Namespace, context: CliContext, stdin: TextIO, out: TextIO) -> int:
    if args.command == "config":
        settings_file = context.paths.settings_file
        action = args.config_command
        if action == "get":
            return config_cmd.config_get(settings_file, args.name, context.secrets_or_none(), out)
        if action == "set":
            secrets = context.secrets() if args.name in SECRET_SETTINGS else None
            return config_cmd.config_set(settings_file, args.name, args.value, secrets, stdin, out)
        if action == "list":
            return config_cmd.config_list(settings_file, context.secrets_or_none(), out)
        if action == "import":
            return config_cmd.config_import(settings_file, args.file, context.lazy_secrets(), stdin, out)
    if args.command in ("login", "logout", "status"):
        from celeste_desktop.cli import auth_cmd

        if args.command == "login":
            return auth_cmd.login(context, args.device_code, out)
        if args.command == "logout":
            return auth_cmd.logout(context, out)
        from celeste_desktop.cli.sync_cmd import status_json

        report = status_json(context, auth_cmd.status_report(context))
        return auth_cmd.write_status(report, args.json, out)
    from celeste_desktop.cli import sync_cmd

    if args.command == "folders":
        return sync_cmd.folders(context, args.path, out)
    if args.command in ("select", "unselect"):
        return sync_cmd.select(context, args.paths, out, include=args.command == "select",
                               urgent=getattr(args, "urgent", False))  # fmt: skip
    if args.command == "sync":
        return sync_cmd.sync(context, args.dry_run, out)
    if args.command == "diagnostics":
        from pathlib import Path

        return sync_cmd.diagnostics(context, Path(args.out), out)
    if args.command == "report":
        from pathlib import Path

        from celeste_desktop.cli import report_cmd

        return report_cmd.report(context, args.job, Path(args.out), out)
    raise ConfigError("command", f"unknown command {args.command!r}; see celeste-desktop --help")
