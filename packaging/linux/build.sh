#!/usr/bin/env bash
# Build the Linux one-folder bundle with PyInstaller and pack it as a tarball.
#
#   bash packaging/linux/build.sh          # PYTHON defaults to .venv/bin/python
#
# Produces
#   dist/celeste-desktop/                                the bundle: run dist/celeste-desktop/celeste-desktop
#   dist/celeste-desktop-<version>-linux-x86_64.tar.gz   the bundle, the .desktop file and the icons
#
# Needs the dev extra (pip install -e '.[dev]': PyInstaller), binutils (strip, objdump), the
# shared libpython, and Qt's X11 libraries on the build machine, because the bundle carries the
# build machine's copies of them. Run as root, it installs the missing Debian packages (as
# scripts/bootstrap.sh does); run as a normal user, it prints the apt-get line and stops.
# Build on the oldest distribution you support: the bundle needs its glibc or newer.
#
# Installing the tarball (as root; or into ~/.local with the same layout):
#   tar -xzf celeste-desktop-<version>-linux-x86_64.tar.gz -C /opt
#   ln -s /opt/celeste-desktop/celeste-desktop /usr/local/bin/celeste-desktop
#   cp -r /opt/celeste-desktop/share/. /usr/local/share/ && update-desktop-database -q || true
set -euo pipefail
cd "$(dirname "$0")/../.."

python="${PYTHON:-.venv/bin/python}"
qt_packages="libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xkb1"

fail() {
  echo "build.sh: $*" >&2
  exit 1
}

# -- preflight: say exactly what is missing, before a two-minute build fails halfway -------------
[ -x "$python" ] || fail "no Python at $python: run  bash scripts/bootstrap.sh test  (or set PYTHON)"
"$python" -c 'import PyInstaller' 2>/dev/null \
  || fail "PyInstaller is missing: run  $python -m pip install -e '.[dev]'"
# Debian packages the build needs: binutils (strip, objdump), the shared libpython (Debian's
# python3.11 ships it apart), Qt's X11 libraries (copied into the bundle from this machine).
missing=""
command -v strip >/dev/null 2>&1 && command -v objdump >/dev/null 2>&1 || missing="$missing binutils"
if ! "$python" - <<'PY'
import glob, os, sys, sysconfig
name = sysconfig.get_config_var("INSTSONAME") or f"libpython{sys.version_info[0]}.{sys.version_info[1]}.so.1.0"
folders = [sysconfig.get_config_var("LIBDIR") or "", os.path.join(sys.base_prefix, "lib"), "/usr/lib", "/lib"]
folders += glob.glob("/usr/lib/*-linux-gnu") + glob.glob("/lib/*-linux-gnu")
sys.exit(0 if any(os.path.exists(os.path.join(folder, name)) for folder in folders) else 1)
PY
then
  missing="$missing libpython$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
fi
qt_dir="$("$python" -c 'import os, PySide6; print(os.path.join(os.path.dirname(PySide6.__file__), "Qt"))')"
if ldd "$qt_dir/plugins/platforms/libqxcb.so" | grep -q "not found"; then
  missing="$missing $qt_packages"
fi
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    fail "some packages are missing; run this once, then build again:  sudo apt-get install -y$missing"
  fi
fi
unresolved="$(ldd "$qt_dir/plugins/platforms/libqxcb.so" | awk '/not found/ {print $1}' | sort -u | tr '\n' ' ')"
[ -z "$unresolved" ] || fail "Qt's X11 plugin still lacks $unresolved on this machine; the bundle would lack them too"
"$python" packaging/make_icons.py --check || fail "the icons are stale: run  $python packaging/make_icons.py  and commit them"

version="$("$python" -c 'import sys; sys.path.insert(0, "packaging/pyinstaller"); import bundle_rules as r, pathlib; print(r.read_version(pathlib.Path("celeste_desktop/__init__.py")))')"
arch="$(uname -m)"
bundle=dist/celeste-desktop
tarball="dist/celeste-desktop-${version}-linux-${arch}.tar.gz"

# -- build ----------------------------------------------------------------------------------------
started=$SECONDS
rm -rf "$bundle" build/pyinstaller build/linux-stage
"$python" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath dist --workpath build/pyinstaller packaging/pyinstaller/celeste-desktop.spec
[ -x "$bundle/celeste-desktop" ] || fail "PyInstaller finished but $bundle/celeste-desktop is missing"
built=$SECONDS

# Every library the bundle brings must find its own dependencies inside the bundle or the system;
# Wayland's client libraries are the system's (present wherever a Wayland session runs).
broken="$(cd "$bundle/_internal" && find . -type f \( -name '*.so' -o -name '*.so.*' \) -print0 \
  | xargs -0 -n 20 env LD_LIBRARY_PATH="$PWD:$PWD/PySide6/Qt/lib" ldd 2>/dev/null \
  | awk '/not found/ && $1 !~ /^libwayland-/ {print $1}' | sort -u | tr '\n' ' ')"
[ -z "$broken" ] || fail "bundled libraries need libraries found nowhere: $broken"

# -- tarball: the bundle plus what a desktop needs to show it in the menu -------------------------
stage=build/linux-stage/celeste-desktop
mkdir -p build/linux-stage
cp -al "$bundle" "$stage" 2>/dev/null || cp -a "$bundle" "$stage"
install -D -m 0644 packaging/linux/celeste-desktop.desktop "$stage/share/applications/celeste-desktop.desktop"
install -D -m 0644 resources/icons/celeste.svg "$stage/share/icons/hicolor/scalable/apps/celeste-desktop.svg"
for size in 16 22 24 32 48 64 128 256 512; do
  install -D -m 0644 "resources/icons/celeste-${size}.png" \
    "$stage/share/icons/hicolor/${size}x${size}/apps/celeste-desktop.png"
done
# Same bytes for the same sources: fixed owner, order and time (the last commit's, if any).
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" -C build/linux-stage -cf - celeste-desktop \
  | gzip -n -6 >"$tarball"
rm -rf build/linux-stage
finished=$SECONDS

echo "built $bundle ($(du -sh "$bundle" | cut -f1)) in $((built - started)) s"
echo "packed $tarball ($(du -h "$tarball" | cut -f1)) in $((finished - built)) s"
