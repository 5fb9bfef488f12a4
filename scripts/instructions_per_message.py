"""User-space instructions per message, end to end, in one process (issue 16's budget).

A callback publishes the next ``agnoshm.Bytes`` message (64 bytes, ``msg.data =``) and
reads ``msg.data`` of the one it got; a ``SingleThreadedExecutor`` spins.  The script
runs that under ``valgrind --tool=callgrind`` for a short and a long run and prints the
difference divided by the difference in messages, so start-up and shut-down cancel
out.  ``perf stat`` has no counters in a VM; callgrind counts every instruction of the
process (Python, numpy, libc).  The figure is given for the whole process and for the
main thread alone (which publishes, takes and runs the callbacks): the listener
thread's housekeeping runs by the clock, not per message, and under callgrind's
slowdown it adds a load-dependent few thousand to the whole-process figure.

    python scripts/instructions_per_message.py            # 300 and 2,300 messages
    python scripts/instructions_per_message.py --alloc    # alloc("data", 64) instead
    python scripts/instructions_per_message.py --native 1 # the C message path (agnoshm/_native)
    python scripts/instructions_per_message.py --native 0 # the pure-Python path

Environment: the agnoshm that ``python`` imports (``PYTHONPATH`` picks a tree).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

_WORKLOAD = r"""
import sys
import agnoshm
n, mode, domain = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
agnoshm.init(domain_id=domain)
node = agnoshm.Node("instructions")
pub = node.create_publisher(agnoshm.Bytes, "/instructions", 10)
payload = b"x" * 64
count = 0

def send():
    msg = pub.borrow_loaned_message()
    if mode == "alloc":
        msg.alloc("data", 64)[:] = 120
    else:
        msg.data = payload
    pub.publish(msg)

def callback(msg):
    global count
    msg.data[0]
    count += 1
    if count < n:
        send()

node.create_subscription(agnoshm.Bytes, "/instructions", callback, 10)
executor = agnoshm.SingleThreadedExecutor()
executor.add_node(node)
send()
executor.spin_until(lambda: count >= n)
print("path", "native" if type(pub._port).__name__.startswith("Native") else "pure")
agnoshm.shutdown()
"""


def _instructions(python: str, n: int, mode: str, domain: int, workdir: str,
                  native: str | None) -> tuple[int, int, str]:
    """Instructions of one run of ``n`` messages (whole process, main thread), and the path
    it ran (native or pure)."""
    out = os.path.join(workdir, f"callgrind.{n}")
    env = dict(os.environ, PYTHONHASHSEED="0")
    if native is not None:
        env["AGNOSHM_NATIVE"] = native
    ran = subprocess.run(["valgrind", "--tool=callgrind", "--separate-threads=yes",
                          f"--callgrind-out-file={out}", python,
                          "-c", _WORKLOAD, str(n), mode, str(domain)],
                         check=True, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True, cwd=workdir)  # ``-c`` puts the cwd first on sys.path
    path = ran.stdout.split("path ", 1)[-1].strip() or "?"
    per_thread = {}
    for name in os.listdir(workdir):
        if name.startswith(f"callgrind.{n}-"):  # one file per thread: -01 is the main thread
            per_thread[name.rsplit("-", 1)[1]] = _total(os.path.join(workdir, name))
    if "01" not in per_thread:
        raise RuntimeError(f"no main-thread profile among {sorted(per_thread)} in {workdir}")
    return sum(per_thread.values()), per_thread["01"], path


def _total(profile: str) -> int:
    with open(profile) as f:
        for line in f:
            match = re.match(r"(?:summary|totals):\s+(\d+)", line)
            if match:
                return int(match.group(1))
    raise RuntimeError(f"no instruction total in {profile}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", type=int, default=300)
    parser.add_argument("--long", type=int, default=2300)
    parser.add_argument("--alloc", action="store_true", help="fill with alloc() instead of =")
    parser.add_argument("--domain", type=int, default=180 + os.getpid() % 50)
    parser.add_argument("--native", choices=("auto", "0", "1"),
                        help="the message path (sets AGNOSHM_NATIVE; default: the environment's)")
    args = parser.parse_args()
    mode = "alloc" if args.alloc else "assign"
    with tempfile.TemporaryDirectory() as workdir:
        short, short_main, path = _instructions(sys.executable, args.short, mode, args.domain,
                                                workdir, args.native)
        long, long_main, _ = _instructions(sys.executable, args.long, mode, args.domain,
                                           workdir, args.native)
    messages = args.long - args.short
    print(f"{(long - short) / messages / 1000:.1f}k instructions per message ({mode}, {path} "
          f"path; {args.short} and {args.long} messages, callgrind); main thread "
          f"{(long_main - short_main) / messages / 1000:.1f}k")


if __name__ == "__main__":
    main()
