#!/usr/bin/env bash
# CI: build the Linux bundle, then check the FROZEN program, not the source tree:
#   1. celeste-desktop --version names the version in celeste_desktop/__init__.py;
#   2. celeste-desktop --demo --self-test passes offscreen (a whole sync against the simulators);
#   3. celeste-desktop --demo stays up for a while offscreen (and on X11 under Xvfb when
#      xvfb-run is installed) with no traceback in its output or its log.
# Run after `bash scripts/bootstrap.sh test` (which makes .venv with the dev extra). Any failure
# prints what went wrong and exits non-zero. Takes about 3 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

python="${PYTHON:-.venv/bin/python}"
smoke_seconds="${CELESTE_DEMO_SMOKE_SECONDS:-15}"
exe=dist/celeste-desktop/celeste-desktop
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

fail() {
  echo "" >&2
  echo "!!! build-bundle: $*" >&2
  exit 1
}

echo "== build the bundle"
started=$SECONDS
bash packaging/linux/build.sh || fail "the bundle did not build (see above)"
echo "bundle size: $(du -sh dist/celeste-desktop | cut -f1) (build and pack: $((SECONDS - started)) s)"

echo "== frozen --version"
expected="CelesteOS Desktop $("$python" -c 'import sys; sys.path.insert(0, "packaging/pyinstaller"); import bundle_rules as r, pathlib; print(r.read_version(pathlib.Path("celeste_desktop/__init__.py")))')"
actual="$("$exe" --version 2>&1)" || fail "$exe --version failed: $actual"
[ "$actual" = "$expected" ] || fail "$exe --version printed '$actual', expected '$expected'"
echo "$actual"

export QT_QPA_PLATFORM=offscreen
echo "== frozen --demo --self-test (offscreen)"
"$exe" --help >"$work/help.txt" 2>&1 || fail "$exe --help failed: $(cat "$work/help.txt")"
grep -q -- "--self-test" "$work/help.txt" \
  || fail "the frozen program has no --self-test option (gui/self_test.py missing from the build?)"
started=$SECONDS
if ! timeout 300 "$exe" --demo --self-test; then
  fail "the frozen self-test failed (exit status above; each step printed PASS or FAIL)"
fi
echo "self-test took $((SECONDS - started)) s"

# The demo window must come up and keep running: `timeout` ending it (124) is the success.
smoke() {
  local label="$1"
  shift
  local home="$work/demo-$label"
  local status=0
  "$@" timeout "$smoke_seconds" "$exe" --demo --home "$home" >"$work/$label.out" 2>&1 || status=$?
  if [ "$status" != 124 ]; then
    cat "$work/$label.out" >&2
    fail "the frozen demo ($label) exited with status $status before ${smoke_seconds} s"
  fi
  if grep -l -E "Traceback|Uncaught exception|Could not load the Qt platform plugin" \
    "$work/$label.out" "$home"/logs/*.log 2>/dev/null; then
    cat "$work/$label.out" "$home"/logs/*.log >&2 2>/dev/null || true
    fail "the frozen demo ($label) logged a traceback or a Qt plugin failure"
  fi
  echo "demo ($label) ran ${smoke_seconds} s without a traceback"
}

echo "== frozen --demo for ${smoke_seconds} s (offscreen)"
smoke offscreen env
if command -v xvfb-run >/dev/null 2>&1; then
  echo "== frozen --demo for ${smoke_seconds} s on X11 (Xvfb): the bundled xcb plugin and its libraries"
  smoke xcb xvfb-run -a env QT_QPA_PLATFORM=xcb
else
  echo "(xvfb-run not installed: the X11 run is skipped)"
fi
echo "== bundle OK: $(ls dist/celeste-desktop-*-linux-*.tar.gz)"
