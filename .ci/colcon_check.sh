#!/usr/bin/env bash
# Build and test agnoshm as an ament_python package with colcon, then check the install.
#
#   .ci/colcon_check.sh [SOURCE_DIR]          (default: this repository)
#
# Needs colcon with ROS package support (PyPI: colcon-core colcon-ros colcon-python-setup-py);
# $COLCON names the colcon to run (default: colcon on PATH). Everything colcon writes
# (build/, install/, log/, test results) goes under $AGNOSHM_COLCON_OUT
# (default: a new mktemp directory), never into the source tree. Checks, under the install
# prefix: share/agnoshm/launch/*.launch.py, share/agnoshm/config/*.yaml, package.xml,
# the ament index marker, the console scripts in lib/agnoshm (where `ros2 run` and
# launch_ros look) and the Python package; imports every installed module (walked, not
# listed) and runs the installed talker/listener pair in a clean environment (`env -i`, then
# install/setup.sh) outside the source tree; finds the package the way `ros2 run` does with Debian's
# ament_index_python (python3-ament-index) where /usr/bin/python3 has it; and runs a
# short `colcon test` (the demo tests, not the whole suite) on the install, as a workspace
# user would after sourcing install/setup.sh: its pytest and the children it starts import
# agnoshm from the install, with AGNOSHM_NATIVE=1 where colcon built the C extension, and
# the check reads back where that pytest's agnoshm and agnoshm._native came from.
# Prints the duration.
set -euo pipefail

SRC="$(cd "${1:-$(dirname "$0")/..}" && pwd)"
OUT="${AGNOSHM_COLCON_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/agnoshm-colcon.XXXXXX")}"
COLCON="${COLCON:-colcon}"
PREFIX="$OUT/install/agnoshm"
SCRIPTS="talker listener image_publisher image_processor image_subscriber latency_ping latency_pong"
LAUNCH_FILES="talker_listener image_pipeline latency_bench zenoh_bridge"
CONFIGS="agnoshm image_pipeline latency_bench talker_listener zenoh_bridge"
# the tests `colcon test` runs: short, and never this check itself
TESTS="test/test_demo.py test/launch/test_talker_listener_processes.py test/launch/test_talker_listener_launch.py"

listener=""
# a failed step also ends the installed listener it may have started
fail() { echo "colcon_check: FAILED: $*" >&2; [ -z "$listener" ] || kill "$listener" 2>/dev/null; exit 1; }
command -v "$COLCON" >/dev/null || fail "no colcon ($COLCON): pip install colcon-core colcon-ros colcon-python-setup-py"
SECONDS=0
# a directory of a previous check is emptied; anything else is refused, never wiped
MARK=".agnoshm-colcon-check"
if [ -d "$OUT" ] && [ -n "$(ls -A "$OUT")" ] && [ ! -e "$OUT/$MARK" ]; then
    fail "AGNOSHM_COLCON_OUT=$OUT is a non-empty directory this check did not make; name an empty or new one"
fi
rm -rf "$OUT"
mkdir -p "$OUT"
touch "$OUT/$MARK"
cd "$OUT"  # colcon puts log/ (and anything relative) here, not in the source tree

echo "== colcon build ($SRC)"
"$COLCON" --log-base "$OUT/log" build --base-paths "$SRC" \
    --build-base "$OUT/build" --install-base "$OUT/install" --event-handlers console_direct+ \
    || fail "colcon build"

echo "== installed files under $PREFIX"
check() { [ -e "$PREFIX/$1" ] || fail "missing $PREFIX/$1"; echo "ok: $1"; }
for f in $LAUNCH_FILES; do check "share/agnoshm/launch/$f.launch.py"; done
for f in $CONFIGS; do check "share/agnoshm/config/$f.yaml"; done
check share/agnoshm/package.xml
check share/ament_index/resource_index/packages/agnoshm
for s in $SCRIPTS; do
    check "lib/agnoshm/$s"
    [ -x "$PREFIX/lib/agnoshm/$s" ] || fail "lib/agnoshm/$s is not executable"
done
site=$(find "$PREFIX/lib" -path '*-packages/agnoshm/__init__.py' | head -n 1)
[ -n "$site" ] || fail "the agnoshm Python package is not installed under $PREFIX/lib"
echo "ok: ${site#"$PREFIX/"}"
# the C message path (agnoshm/_native) is built wherever a C compiler is
native=$(find "$PREFIX/lib" -path '*-packages/agnoshm/_native/_ring*.so' | head -n 1)
if command -v "${CC:-cc}" >/dev/null; then
    [ -n "$native" ] || fail "colcon build did not build agnoshm/_native although ${CC:-cc} is here"
    echo "ok: ${native#"$PREFIX/"}"
else
    echo "note: no C compiler (${CC:-cc}): the install runs pure Python"
fi
# colcon's own folders (a build/ of setuptools, from a `pip install .` there, is not colcon's)
[ ! -e "$SRC/build/agnoshm" ] && [ ! -e "$SRC/install" ] && [ ! -e "$SRC/log" ] \
    || fail "colcon wrote build/agnoshm, install/ or log/ into $SRC"

echo "== installed modules and talker -> listener, in a clean environment outside the source tree"
export ROS_DOMAIN_ID="${AGNOSHM_COLCON_DOMAIN:-$((4500 + $$ % 400))}"
# what a user's fresh shell has: PATH and HOME, then the workspace's install/setup.sh
clean() {
    env -i HOME="$HOME" PATH=/usr/local/bin:/usr/bin:/bin ROS_DOMAIN_ID="$ROS_DOMAIN_ID" \
        AGNOSHM_POOL_SIZE="${AGNOSHM_POOL_SIZE:-64M}" OUT="$OUT" \
        bash -c 'set +u; . "$OUT/install/setup.sh"; set -u; cd "$OUT"; "$@"' clean "$@"
}
python_of_scripts=$(head -n 1 "$PREFIX/lib/agnoshm/talker" | sed 's/^#!//')
clean "$python_of_scripts" -c '
import importlib, pkgutil, sys
import agnoshm, heaphook
names = [agnoshm.__name__, heaphook.__name__]
for package in (agnoshm, heaphook):
    names += [info.name for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
              if not info.name.endswith(".__main__")]
for name in names:
    where = importlib.import_module(name).__file__
    assert where.startswith(sys.argv[1]), f"{name} imported from {where}, not from the install"
print(f"ok: imports {len(names)} modules from {agnoshm.__file__}")
' "$PREFIX" || fail "an installed module does not import from $PREFIX"
clean "$PREFIX/lib/agnoshm/listener" --count 3 --timeout 60 > "$OUT/listener.out" &
listener=$!
clean "$PREFIX/lib/agnoshm/talker" --count 3 --rate 50 --wait-subscribers 1 > "$OUT/talker.out" 2>&1 \
    || fail "installed talker: $(cat "$OUT/talker.out")"
wait "$listener" || fail "installed listener"
[ "$(cat "$OUT/listener.out")" = "I heard: 'Hello World: 0'
I heard: 'Hello World: 1'
I heard: 'Hello World: 2'" ] || fail "listener heard: $(cat "$OUT/listener.out")"
echo "ok: listener heard 3 messages in order"
ls /dev/shm | grep -q "agnoshm-registry-domain$ROS_DOMAIN_ID\$" && fail "registry left in /dev/shm"

if /usr/bin/python3 -c "import ament_index_python" 2>/dev/null; then
    echo "== ros2 run's lookup (Debian's ament_index_python)"
    clean /usr/bin/python3 - "$SCRIPTS" <<'EOF' || fail "ament index lookup"
import os, sys
from ament_index_python.packages import get_package_prefix, get_package_share_directory
prefix = get_package_prefix("agnoshm")   # searches AMENT_PREFIX_PATH for the marker
for exe in sys.argv[1].split():
    path = os.path.join(prefix, "lib", "agnoshm", exe)
    assert os.access(path, os.X_OK), path
share = get_package_share_directory("agnoshm")
assert os.path.isfile(os.path.join(share, "launch", "image_pipeline.launch.py"))
print(f"ok: get_package_prefix('agnoshm') = {prefix}; executables and launch files found")
EOF
else
    echo "note: /usr/bin/python3 has no ament_index_python (apt-get install python3-ament-index):" \
         "ros2 run's lookup not checked"
fi

echo "== colcon test ($TESTS) on the install"
cd "$OUT"
# colcon runs `python -m pytest` in the source directory, and `-m` puts the cwd first on
# sys.path: the tests would import the sources (no extension built there) whatever
# PYTHONPATH says. PYTHONSAFEPATH=1 (Python >= 3.11) leaves the cwd out, so install/setup.sh's
# PYTHONPATH decides; test/sources.py hands the same agnoshm to the children. A pytest plugin
# of this check's own records which agnoshm and agnoshm._native that pytest imported.
native_setting=auto
[ -z "$native" ] || native_setting=1  # colcon built the extension: the install must run it
plugin_dir="$OUT/colcon_test_plugin"
origin="$OUT/colcon_test_origin.txt"
mkdir -p "$plugin_dir"
cat > "$plugin_dir/agnoshm_colcon_origin.py" <<'PLUGIN'
"""After colcon's pytest session: where its agnoshm and agnoshm._native came from."""
import os


def pytest_sessionfinish(session):
    import agnoshm
    import agnoshm._native as native

    ring = native._ring
    with open(os.environ["AGNOSHM_COLCON_ORIGIN"], "w") as f:
        f.write(f"agnoshm {agnoshm.__file__}\n")
        f.write(f"native {ring.__file__ if ring else 'missing: ' + str(native.MISSING)}\n")
        f.write(f"path {native.describe(os.environ.get('AGNOSHM_NATIVE', 'auto'))}\n")
PLUGIN
rm -f "$origin"
# shellcheck disable=SC1091,SC2086
(
    set +u; . "$OUT/install/setup.sh"; set -u
    export PYTHONPATH="$PYTHONPATH:$plugin_dir" PYTHONSAFEPATH=1 AGNOSHM_NATIVE="$native_setting" \
        AGNOSHM_COLCON_ORIGIN="$origin"
    "$COLCON" --log-base "$OUT/log" test --base-paths "$SRC" \
        --build-base "$OUT/build" --install-base "$OUT/install" \
        --test-result-base "$OUT/test_results" --event-handlers console_direct+ \
        --pytest-args -p agnoshm_colcon_origin $TESTS
) || fail "colcon test"
"$COLCON" --log-base "$OUT/log" test-result --test-result-base "$OUT/test_results" --verbose \
    || fail "colcon test-result reports failures"
[ -s "$origin" ] || fail "colcon test's pytest did not record where its agnoshm came from"
sed 's/^/colcon test imported: /' "$origin"
case "$(sed -n 's/^agnoshm //p' "$origin")" in
    "$PREFIX"/*) ;;
    *) fail "colcon test imported agnoshm from outside the install $PREFIX (PYTHONSAFEPATH needs colcon on Python >= 3.11)" ;;
esac
if [ -n "$native" ]; then
    [ "$(sed -n 's/^native //p' "$origin")" = "$native" ] \
        || fail "colcon test did not import the extension colcon built ($native)"
    grep -q "^path native: .*AGNOSHM_NATIVE=1\$" "$origin" \
        || fail "colcon test did not run the native path with AGNOSHM_NATIVE=1"
    echo "ok: colcon test ran agnoshm from the install with AGNOSHM_NATIVE=1 (${native#"$PREFIX/"})"
else
    echo "ok: colcon test ran agnoshm from the install (pure Python: no extension built)"
fi

echo "colcon_check: OK in ${SECONDS} s"
