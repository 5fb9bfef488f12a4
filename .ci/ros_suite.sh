#!/usr/bin/env bash
# The ROS 2 suite: every ROS test against real rclpy, from PyPI's ROS 2 wheels (Kilted).
#
#   bash .ci/ros_suite.sh [VENV_DIR]
#
# 1. a fresh venv from `python3` at VENV_DIR (default: one under a new mktemp directory,
#    removed at exit), with the ROS 2 wheels below and agnoshm's wheel with its [test] extra
#    ($AGNOSHM_WHEEL when set, as .ci/run sets it; else a wheel built from this tree);
# 2. pytest from a directory outside the tree, on the tree's tests, importing the installed
#    agnoshm: every test marked `ros` (anywhere), then the rest of test/ros and the message
#    tests (types then come from rclpy's classes);
# 3. fails if a test fails, or if any skips for lack of rclpy or another ROS 2 package
#    (launch and launch_testing are not on PyPI: their tests skip, with the reason).
#
# The wheels' `ros-wheels-bootstrapper` re-executes each interpreter of the venv with
# LD_LIBRARY_PATH set: no setup.bash. AMENT_PREFIX_PATH=$VENV makes ament_index work.
set -euo pipefail
SRC="$(cd "$(dirname "$0")/.." && pwd)"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/agnoshm-ros.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
VENV="${1:-$TMP/venv}"
RUN="$TMP/run"  # the cwd of the test runs: outside the tree
mkdir -p "$RUN"

# The ROS 2 packages the tests import (their dependencies come along: rcl, rmw, builtin
# interfaces ...). FastDDS is the RMW: the wheels have no other.
ROS_WHEELS=(ros-rclpy ros-rmw-fastrtps-cpp ros-std-msgs ros-sensor-msgs ros-geometry-msgs
            ros-nav-msgs ros-std-srvs)
# a skip for one of these reasons means the run did not test what it is for
MISSING_ROS='ROS 2 packages not importable|rclpy (is )?not (installed|importable)'

quiet() { { "$@"; } 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; }

echo "ROS 2 suite: venv $VENV"
python3 -m venv --clear "$VENV"
WHEEL="${AGNOSHM_WHEEL:-}"
if [ -z "$WHEEL" ]; then
    # from a copy: setuptools writes build/ and *.egg-info beside the sources
    (cd "$SRC" && git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
        | tar --null -T - -cf -) | (mkdir -p "$TMP/src" && tar -xf - -C "$TMP/src")
    quiet timeout 600 "$VENV/bin/pip" wheel -q --no-deps -w "$TMP/dist" "$TMP/src"
    WHEEL="$(ls "$TMP"/dist/agnoshm-*.whl)"
fi
SECONDS=0
quiet timeout 600 "$VENV/bin/pip" install -q "${ROS_WHEELS[@]}" "$WHEEL[test]"
echo "installed ${ROS_WHEELS[*]} and $(basename "$WHEEL")[test] in ${SECONDS} s"

export AMENT_PREFIX_PATH="$VENV"
# DDS discovery stays on this machine: tests judge only their own domains and processes
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
unset PYTHONPATH
cd "$RUN"
"$VENV/bin/python" - <<'EOF'
import agnoshm, pytest, rclpy
from importlib.metadata import version
assert "site-packages" in agnoshm.__file__, f"agnoshm imported from {agnoshm.__file__}"
print(f"agnoshm {agnoshm.__file__}; rclpy {version('ros-rclpy')} ({rclpy.__file__}); "
      f"pytest {pytest.__version__}")
EOF

# -c/--rootdir: the tree's settings (its pythonpath is test/ only); the import is the wheel's
PYTEST=("$VENV/bin/python" -m pytest -c "$SRC/pyproject.toml" --rootdir "$SRC" -q -ra)
status=0
echo; echo "--- every test marked ros"
timeout 1800 "${PYTEST[@]}" -m ros "$SRC/test" | tee "$RUN/marked.out" || status=1
echo; echo "--- the rest of test/ros, and the message tests with rclpy's types"
timeout 1800 "${PYTEST[@]}" -m "not ros" "$SRC/test/ros" "$SRC/test/msg" \
    --ignore "$SRC/test/msg/test_layout_against_c.py" --ignore "$SRC/test/msg/test_c_reader.py" \
    | tee "$RUN/rest.out" || status=1

if grep -E "^SKIPPED .*($MISSING_ROS)" "$RUN/marked.out" "$RUN/rest.out"; then
    echo "ROS 2 suite: the tests above skipped for lack of a ROS 2 package; each must run here"
    status=1
fi
# the sum of pytest's closing lines ("N passed, N skipped, ... in T s"); errors count as failed
count() {
    for out in "$RUN/marked.out" "$RUN/rest.out"; do tail -n 1 "$out"; done \
        | grep -oE "[0-9]+ ($1)" | awk '{ n += $1 } END { print n + 0 }'
}
echo "ros suite: $(count passed) passed, $(count 'failed|errors?') failed, $(count skipped) skipped"
exit "$status"
