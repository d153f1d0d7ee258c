#!/usr/bin/env bash
# Sets up CelesteOS Desktop from nothing on Debian 12 (or any Debian/Ubuntu with Python >= 3.11),
# then either launches the demo or runs the whole test suite.
#
#   bash scripts/bootstrap.sh demo     # install, then open the app on the simulated tenant
#   bash scripts/bootstrap.sh test     # install, then run ruff, mypy and the whole test suite
#
# Run as root (or in CI) it installs the Debian packages it needs; run as a normal user it prints
# the exact apt-get line to run and stops. It never touches the system Python: everything goes
# into .venv beside this file's folder.
set -euo pipefail

mode="${1:-}"
case "$mode" in
  demo|test) shift ;;
  *) echo "usage: bash scripts/bootstrap.sh demo|test [extra arguments]" >&2; exit 64 ;;
esac
cd "$(dirname "$0")/.."

qt_packages="libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xkb1"
screen_packages="xvfb xauth fonts-dejavu-core"
# The test extra builds the C QuickXorHash reference, and the SQL tests need a real PostgreSQL.
test_packages="gcc libc6-dev python3-dev postgresql poppler-utils curl desktop-file-utils shellcheck binutils"

python="${PYTHON:-python3}"
if ! command -v "$python" >/dev/null 2>&1; then
  echo "Python 3.11 or later is needed: run  sudo apt-get install -y python3 python3-venv" >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "Python 3.11 or later is needed; $("$python" --version 2>&1) was found. Set PYTHON=/path/to/python3.11." >&2
  exit 1
fi

wanted="$qt_packages $screen_packages"
[ "$mode" = test ] && wanted="$wanted $test_packages"
# Debian's own Python needs python3-venv for `python3 -m venv`; other Pythons (pyenv, python.org) have it.
if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  wanted="$wanted python3-venv"
fi

missing=""
if command -v dpkg-query >/dev/null 2>&1; then
  for package in $wanted; do
    # python3-dev is only needed when the interpreter's own headers are missing (pyenv ships them).
    if [ "$package" = python3-dev ]; then
      include_dir="$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
      [ -f "$include_dir/Python.h" ] && continue
    fi
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
      missing="$missing $package"
    fi
  done
fi
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "Installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "Some Debian packages are missing. Run this once, then run this command again:" >&2
    echo "  sudo apt-get install -y$missing" >&2
    exit 1
  fi
fi

if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
if [ "$mode" = test ]; then
  .venv/bin/python -m pip install --quiet -e '.[test,dev]'
else
  .venv/bin/python -m pip install --quiet -e .
fi

if [ "$mode" = demo ]; then
  if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
    echo "No desktop session found (DISPLAY is not set); starting the demo on a virtual screen with xvfb-run." >&2
    exec xvfb-run -a .venv/bin/celeste-desktop --demo "$@"
  fi
  exec .venv/bin/celeste-desktop --demo "$@"
fi

export QT_QPA_PLATFORM=offscreen
export CELESTE_REQUIRE_POSTGRES=1
echo "== ruff"
.venv/bin/ruff check celeste_desktop tests
echo "== mypy --strict"
.venv/bin/mypy --strict celeste_desktop
echo "== pytest"
set +e
.venv/bin/python -m pytest -n 2 -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
  echo "pytest collected no tests: that is a failure, not a pass." >&2
  exit 1
fi
exit "$status"
