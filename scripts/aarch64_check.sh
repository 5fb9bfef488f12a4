#!/usr/bin/env bash
# Build agnoshm's C extension (agnoshm/_native/ring.c) for aarch64 and run the data-path tests
# on an aarch64 CPython 3.11 under qemu user-mode emulation, on the native path and on the pure
# one.  Nothing arm64 is installed into this system: an arm64 CPython, its headers and the
# libraries they need are unpacked from Debian's .debs into WORK/root (apt runs on a private
# state folder, no `dpkg --add-architecture`); numpy, pytest and the rest are manylinux_aarch64
# wheels unpacked into WORK/site; the extension is built into a copy of the tree (WORK/src),
# never into agnoshm/_native of this checkout.
#
#   scripts/aarch64_check.sh [--worktree] [--patch FILE.diff]... [WORK]   (root, or sudo for apt)
#
# WORK defaults to /tmp/agnoshm-aarch64; downloads are kept there, a second run reuses them.
# Without --worktree the tree tested is the commit HEAD (git archive); with it, the tracked and
# untracked (not ignored) files as they are in the working tree now.  --patch applies a diff
# (git apply) to the copy only: a proposed fix is tried on aarch64 without touching the
# checkout.  Host needs: Debian/Ubuntu with apt-get, bash, git, python3 with pip (or PIP="..."),
# network to the Debian mirror and PyPI.  Installs qemu-user-static and gcc-aarch64-linux-gnu
# with apt-get when missing.
#
# Exit status 0 when every selected test passed (or was skipped with its reason) on both
# paths.  Extra pytest arguments: AARCH64_PYTEST_ARGS="-x -k keep_last" scripts/aarch64_check.sh
set -euo pipefail

WORKTREE=0 PATCHES=()
while [[ $# -gt 0 && "$1" == --* ]]; do
  case "$1" in
    --worktree) WORKTREE=1; shift ;;
    --patch) PATCHES+=("$(realpath "$2")"); shift 2 ;;
    *) echo "usage: $0 [--worktree] [--patch FILE.diff]... [WORK]" >&2; exit 2 ;;
  esac
done
WORK=$(realpath -m "${1:-/tmp/agnoshm-aarch64}")
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SUITE="bookworm"             # Debian release the arm64 CPython comes from
PYVER="3.11"
# the wheels the tests import, pinned (same versions as the x86-64 development venv)
WHEELS=(numpy==2.4.6 PyYAML==6.0.4 rosbags==0.11.9 "pytest==8.4.2" hypothesis==6.170.27)
# the data path.  ONCE: files whose every case runs on both paths by itself (the two-path
# conformance suite with its differential hostile-input run; the allocator's C twin), run in
# the first run only.  EACH: hostile input, pub/sub, doorbell, wake-ups, run on each path.
# (A file the tested tree does not have yet is left out.)
ONCE=(test/test_native.py test/memory/test_block_cache.py)
EACH=(test/test_hostile_input.py test/transport)
# not data-path, and not runnable here (each reason is printed with the run)
DESELECT=(
  # builds a wheel with `python -m pip wheel` (pip, setuptools) inside the emulated CPython:
  # packaging, not the message path; minutes under emulation
  "test/test_native.py::test_a_build_without_a_c_compiler_installs_says_so_once_and_runs_pure_python"
)

say() { printf '\n== %s\n' "$*"; }
START=$(date +%s)
mkdir -p "$WORK"
exec > >(tee "$WORK/check.log") 2>&1
say "agnoshm aarch64 check: $(date -u +%FT%TZ), tree $REPO ($(git -C "$REPO" rev-parse --short HEAD)$([[ $WORKTREE == 1 ]] && echo ', working tree')${PATCHES[*]:+, patched: ${PATCHES[*]}}), work $WORK"

# -- (a) host tools ---------------------------------------------------------------------------
QEMU=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
if [[ -z "$QEMU" ]] || ! command -v aarch64-linux-gnu-gcc >/dev/null; then
  say "installing qemu-user-static and gcc-aarch64-linux-gnu (apt-get)"
  SUDO=""; [[ $(id -u) == 0 ]] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    qemu-user-static gcc-aarch64-linux-gnu >/dev/null
  QEMU=$(command -v qemu-aarch64-static || command -v qemu-aarch64)
fi
echo "qemu: $("$QEMU" --version | head -1)"
echo "cc:   $(aarch64-linux-gnu-gcc --version | head -1)"

# -- (b) an arm64 root with CPython, from Debian's .debs, by a private apt --------------------
APT="$WORK/apt" ROOT="$WORK/root"
mkdir -p "$APT/lists/partial" "$APT/archives/partial"
touch "$APT/status"  # nothing installed: apt downloads the whole dependency closure
cat > "$APT/sources.list" <<EOF
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $SUITE main
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $SUITE-updates main
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security $SUITE-security main
EOF
APT_OPTS=(-o "Dir::State::Lists=$APT/lists" -o "Dir::State::status=$APT/status"
          -o "Dir::Cache=$APT" -o "Dir::Cache::archives=$APT/archives"
          -o "Dir::Etc::SourceList=$APT/sources.list" -o "Dir::Etc::SourceParts=$APT/none"
          -o "Dir::Etc::Preferences=$APT/none" -o "Dir::Etc::PreferencesParts=$APT/none"
          -o APT::Architecture=arm64 -o "APT::Architectures::=arm64"
          -o APT::Install-Recommends=0 -o Debug::NoLocking=1 -q)
mkdir -p "$APT/none"
say "arm64 packages ($SUITE) into $APT/archives"
apt-get "${APT_OPTS[@]}" update >/dev/null
# python3.11-minimal + stdlib: the interpreter; -dev: Python.h (and libc6-dev for the build);
# libstdc++6: numpy's wheel links it
apt-get "${APT_OPTS[@]}" install -d -y "python$PYVER-minimal" "libpython$PYVER-stdlib" \
  "libpython$PYVER-dev" libstdc++6 >/dev/null
rm -rf "$ROOT"; mkdir -p "$ROOT"
for deb in "$APT"/archives/*.deb; do dpkg-deb -x "$deb" "$ROOT"; done
echo "$(ls "$APT"/archives/*.deb | wc -l) .debs unpacked into $ROOT;" \
  "python$PYVER-minimal $(dpkg-deb -f "$APT"/archives/python$PYVER-minimal_*.deb Version)," \
  "libc6 $(dpkg-deb -f "$APT"/archives/libc6_*.deb Version)"
# children started with sys.executable (subprocess, multiprocessing's spawn) must run under
# qemu too, without binfmt_misc (a machine-wide setting): sys.executable is a host script that
# starts qemu; -0 makes it the interpreter's argv[0], from which CPython derives sys.executable
PY="$ROOT/usr/bin/python$PYVER"
mv "$PY" "$PY.elf"
cat > "$PY" <<EOF
#!/bin/sh
exec "$QEMU" -L "$ROOT" -0 "$PY" "$PY.elf" "\$@"
EOF
chmod +x "$PY"
"$PY" -c 'import platform, sys; assert platform.machine() == "aarch64"; print("python:", sys.version.split()[0], platform.machine())'

# -- (c) wheels for aarch64 -------------------------------------------------------------------
SITE="$WORK/site"
PIP=${PIP:-python3 -m pip}
say "wheels (manylinux aarch64, cp311) into $SITE"
# pip 23 does not widen one manylinux_2_X tag to older ones: list the ones the wheels carry
rm -rf "$WORK/wheels"  # only this run's pins (pip's own cache keeps the downloads)
if ! $PIP download -q -d "$WORK/wheels" --only-binary=:all: --python-version "$PYVER" \
    --implementation cp --platform manylinux_2_28_aarch64 --platform manylinux_2_17_aarch64 \
    --platform manylinux2014_aarch64 "${WHEELS[@]}" > "$WORK/pip.log" 2>&1; then
  cat "$WORK/pip.log"; exit 1
fi
rm -rf "$SITE"; mkdir -p "$SITE"
python3 - "$SITE" "$WORK"/wheels/*.whl <<'EOF'
import sys, zipfile
for wheel in sys.argv[2:]:
    zipfile.ZipFile(wheel).extractall(sys.argv[1])
EOF
ls "$WORK"/wheels | sed 's/^/  /'

# -- (d) the tree's copy and the extension, cross-compiled ------------------------------------
SRC="$WORK/src"
rm -rf "$SRC"; mkdir -p "$SRC"
if [[ $WORKTREE == 1 ]]; then
  git -C "$REPO" ls-files -z --cached --others --exclude-standard |
    (cd "$REPO" && xargs -0 tar -cf - --ignore-failed-read) | tar -xf - -C "$SRC"
else
  git -C "$REPO" archive HEAD | tar -xf - -C "$SRC"
fi
for patch in "${PATCHES[@]}"; do echo "applying $patch to the copy"; git -C "$SRC" apply "$patch"; done
rm -f "$SRC"/agnoshm/_native/*.so
# the extension's sources as setup.py lists them (ring.c, and whatever joins it)
mapfile -t CSRC < <(python3 -c '
import re, sys
text = open(sys.argv[1]).read()
sources = re.search(r"Extension\(\s*\"agnoshm\._native\._ring\",\s*\[([^\]]*)\]", text).group(1)
print("\n".join(re.findall(r"\"([^\"]+\.c)\"", sources)))' "$SRC/setup.py")
say "building ${CSRC[*]} for aarch64 (setup.py's flags) into $SRC/agnoshm/_native"
INC="-I$ROOT/usr/include/python$PYVER -I$ROOT/usr/include/aarch64-linux-gnu/python$PYVER"
(cd "$SRC" && aarch64-linux-gnu-gcc --sysroot="$ROOT" -std=gnu11 -O2 -g -Wall -fPIC -shared \
  -DPy_LIMITED_API=0x030A0000 $INC "${CSRC[@]}" -o agnoshm/_native/_ring.abi3.so)
file -b "$SRC/agnoshm/_native/_ring.abi3.so" | cut -d, -f1-2
# the orderings ring.c asks for, as the aarch64 instructions that carry them
aarch64-linux-gnu-objdump -d "$SRC/agnoshm/_native/_ring.abi3.so" | awk '
  $3 ~ /^ldar/ {acq++} $3 ~ /^stlr/ {rel++} $3 == "dmb" {dmb++}
  END {printf "instructions: %d acquire loads (ldar*), %d release stores (stlr*), %d dmb\n", acq, rel, dmb}'

# bytecode once, by the host's CPython when it is 3.11 (same magic number; emulated it is slow)
if python3 -c "import sys; sys.exit(sys.version_info[:2] != (3, 11))"; then
  python3 -m compileall -q -j0 "$SITE" "$SRC" "$ROOT/usr/lib/python$PYVER" >/dev/null 2>&1 || true
else
  "$PY" -m compileall -q "$SITE" "$SRC" "$ROOT/usr/lib/python$PYVER" >/dev/null 2>&1 || true
fi

# qemu-user answers a process's reads of its own /proc/self/stat and /proc/<own pid>/stat
# with a text it makes up (state "0", a start time qemu computes, not the kernel's).
# agnoshm's liveness rule compares /proc/<pid>/stat's start time as the process itself
# recorded it with what other processes read: under qemu every process looked dead to the
# others.  "/proc/./<pid>/stat" names the same kernel file and qemu does not rewrite it.
SHIM="$WORK/shim"
mkdir -p "$SHIM"
cat > "$SHIM/sitecustomize.py" <<'EOF'
"""aarch64_check.sh: read the kernel's /proc/<pid>/stat, not qemu-user's made-up one."""
import builtins
import re

_open = builtins.open
_STAT = re.compile(r"/proc/(?:self|\d+)/stat")


def open(file, *args, **kwargs):  # noqa: A001
    if isinstance(file, str) and _STAT.fullmatch(file):
        file = "/proc/./" + file[len("/proc/"):]
    return _open(file, *args, **kwargs)


builtins.open = open
EOF

# -- (e) the tests, under qemu, on each path ---------------------------------------------------
cd "$SRC"
export PYTHONPATH="$SHIM:$SRC:$SITE" OPENBLAS_NUM_THREADS=1 PYTHONDONTWRITEBYTECODE=1
"$PY" -c "
import agnoshm
from agnoshm import _native
assert _native.MISSING is None, _native.MISSING
print('extension:', _native._ring.__file__)"
# one message through one process on each path first: seconds, where a broken registry makes
# every multi-process test below wait out its 120 s watchdog
say "smoke: one publisher and one subscription in one process, each path"
smoke_ok=1
for native in 1 0; do
  AGNOSHM_NATIVE=$native "$PY" -c "
import os, sys
sys.path.insert(0, 'test')
from domains import claim_domain
claim = claim_domain()
os.environ['ROS_DOMAIN_ID'] = str(claim.domain)
import agnoshm
node = agnoshm.Node('aarch64_smoke')
pub = node.create_publisher(agnoshm.Bytes, '/aarch64_smoke', 4)
sub = node.create_polling_subscription(agnoshm.Bytes, '/aarch64_smoke', 4)
pub.publish(b'aarch64')
msg = sub.take()
got = None if msg is None else bytes(msg.data)
print(f'AGNOSHM_NATIVE=$native: {type(pub._port).__name__} matched {pub.get_subscription_count()} '
      f'subscription(s), took {got!r}')
del msg
agnoshm.shutdown()
sys.exit(got != b'aarch64')" || smoke_ok=0
done
if [[ $smoke_ok == 0 && -z "${AARCH64_FORCE:-}" ]]; then
  echo "smoke failed: the test runs are skipped (AARCH64_FORCE=1 runs them anyway)"
  exit 1
fi

DESELECT_ARGS=(); for t in "${DESELECT[@]}"; do DESELECT_ARGS+=(--deselect "$t"); done
echo "not run: ${DESELECT[*]} (packaging, not the data path: pip wheel inside the emulated CPython)"
STATUS=0
declare -A RESULT
for native in 1 0; do
  # test_native.py's fixture sets AGNOSHM_NATIVE for each case and the processes it starts,
  # and test_block_cache.py runs both twins in one process: ONCE runs in the first run only
  files=()
  for f in $([[ $native == 1 ]] && echo "${ONCE[@]}") "${EACH[@]}"; do [[ -e $f ]] && files+=("$f"); done
  say "pytest, AGNOSHM_NATIVE=$native: ${files[*]}"
  t0=$(date +%s)
  set +e
  AGNOSHM_NATIVE=$native "$PY" -m pytest -q -ra "${files[@]}" \
    "${DESELECT_ARGS[@]}" ${AARCH64_PYTEST_ARGS:-} 2>&1 | tee "$WORK/pytest-native$native.log"
  rc=${PIPESTATUS[0]}
  set -e
  RESULT[$native]="$(grep -E ' in [0-9.]+s( \([0-9:]+\))?( =+)?$' "$WORK/pytest-native$native.log" | tail -1 | tr -d '=' | xargs) ($(( $(date +%s) - t0 )) s)"
  [[ $rc == 0 ]] || STATUS=1
done

say "summary (aarch64 under $(basename "$QEMU"), $(( $(date +%s) - START )) s in all)"
echo "AGNOSHM_NATIVE=1: ${RESULT[1]}"
echo "AGNOSHM_NATIVE=0: ${RESULT[0]}"
echo "logs: $WORK/check.log, $WORK/pytest-native1.log, $WORK/pytest-native0.log"
exit $STATUS
