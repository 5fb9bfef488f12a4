"""The ``c-floor`` row: a futex ping-pong between two C processes, the physical limit.

No Python at all: a program compiled at bench time with the machine's C
compiler (``$CC``, else ``cc``, ``gcc`` or ``clang``) maps one shared
anonymous region and forks.  Per message the sender writes the first and last
payload byte and a ``CLOCK_MONOTONIC`` stamp (the clock of
``time.monotonic_ns()``), publishes the message number with a release store
and ``FUTEX_WAKE``s the receiver, which sleeps in ``FUTEX_WAIT`` on that word.
The receiver reads the stamp and the last byte, records the latency, then
acknowledges the same way on a second word; the sender sleeps on that one,
then pauses ``interval_s``, as in every latency row.  So both sides are asleep
when a message is sent and each message costs two wake-ups across processes:
what any transport that wakes a sleeping reader pays at least.

Without a compiler (or when it fails) the row is skipped with the reason.
The program and its build live in a private temporary folder, removed by
:meth:`CFloor.close`.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile

from agnoshm.bench import BenchError, Settings, summarize

TRANSPORT = "c-floor"
LABEL = "futex ping-pong between two C processes: the physical limit"
COMPILERS = ("cc", "gcc", "clang")
COMPILE_TIMEOUT = 120.0  # seconds; a hang guard

SOURCE = r"""
#define _GNU_SOURCE
#include <linux/futex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { WARMUP = 0, MEASURED = 1, PAGE = 4096 };

/* Each futex word on its own cache line; each has one writer. */
struct shared {
    _Alignas(64) _Atomic uint32_t sent;   /* the sender's: messages sent */
    _Alignas(64) _Atomic uint32_t acked;  /* the receiver's: messages received */
    _Alignas(64) int64_t stamp;           /* the sender's, before its release store of sent */
};

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Sleep while *word == value; every 200 ms ask alive() whether the other side still is. */
static int wait_while(_Atomic uint32_t *word, uint32_t value, int (*alive)(void)) {
    const struct timespec tick = {0, 200000000};
    while (atomic_load_explicit(word, memory_order_acquire) == value) {
        syscall(SYS_futex, word, FUTEX_WAIT, value, &tick, NULL, 0);
        if (atomic_load_explicit(word, memory_order_acquire) == value && !alive())
            return -1;
    }
    return 0;
}

static void wake(_Atomic uint32_t *word) {
    syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);  /* shared: no FUTEX_PRIVATE_FLAG */
}

static pid_t parent, child;
static int parent_alive(void) { return getppid() == parent; }
static int child_alive(void) { return waitpid(child, NULL, WNOHANG) == 0; }

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s SIZE SAMPLES WARMUP INTERVAL_NS\n", argv[0]);
        return 2;
    }
    size_t size = strtoull(argv[1], NULL, 10);
    uint32_t samples = strtoul(argv[2], NULL, 10), warmup = strtoul(argv[3], NULL, 10);
    long long interval_ns = strtoll(argv[4], NULL, 10);
    uint32_t total = warmup + samples;
    size_t log_bytes = ((size_t)total * sizeof(int64_t) + PAGE - 1) / PAGE * PAGE;
    if (size < 16 || samples == 0) {
        fprintf(stderr, "SIZE must be at least 16 and SAMPLES at least 1\n");
        return 2;
    }
    char *base = mmap(NULL, PAGE + log_bytes + size, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    struct shared *sh = (struct shared *)base;
    int64_t *latency = (int64_t *)(base + PAGE);  /* the receiver's */
    volatile uint8_t *payload = (uint8_t *)(base + PAGE + log_bytes);
    parent = getpid();
    child = fork();
    if (child < 0) {
        perror("fork");
        return 1;
    }
    if (child == 0) {  /* the receiver */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (uint32_t i = 0; i < total; i++) {
            if (wait_while(&sh->sent, i, parent_alive))
                _exit(1);
            int64_t sent = sh->stamp;
            (void)payload[0];
            (void)payload[size - 1];
            latency[i] = now_ns() - sent;
            atomic_store_explicit(&sh->acked, i + 1, memory_order_release);
            wake(&sh->acked);
        }
        _exit(0);
    }
    const struct timespec pause = {interval_ns / 1000000000, interval_ns % 1000000000};
    int64_t start = now_ns();
    for (uint32_t i = 0; i < total; i++) {
        payload[0] = i < warmup ? WARMUP : MEASURED;
        payload[size - 1] = (uint8_t)i;
        sh->stamp = now_ns();
        atomic_store_explicit(&sh->sent, i + 1, memory_order_release);
        wake(&sh->sent);
        if (wait_while(&sh->acked, i, child_alive)) {
            fprintf(stderr, "the receiver process exited after %u messages\n", i);
            return 1;
        }
        if (interval_ns > 0)
            nanosleep(&pause, NULL);
    }
    double wall_s = (now_ns() - start) / 1e9;
    int status;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status)) {
        fprintf(stderr, "the receiver process failed\n");
        return 1;
    }
    struct rusage usage;
    getrusage(RUSAGE_CHILDREN, &usage);
    double cpu_s = usage.ru_utime.tv_sec + usage.ru_stime.tv_sec
                   + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
    printf("%.6f %.6f\n", cpu_s, wall_s);
    for (uint32_t i = warmup; i < total; i++)
        printf("%lld\n", (long long)latency[i]);
    return 0;
}
"""


def find_compiler() -> list[str] | None:
    """The command of the C compiler: ``$CC`` when set (only it, as make does), else the first
    of :data:`COMPILERS` on ``PATH``; None when there is none."""
    if os.environ.get("CC"):
        command = shlex.split(os.environ["CC"])
        return command if command and shutil.which(command[0]) else None
    found = next((shutil.which(name) for name in COMPILERS if shutil.which(name)), None)
    return [found] if found else None


class CFloor:
    """The compiled program, made once per run; :attr:`missing` says why it could not be
    (then :meth:`latency` is never called)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.folder = tempfile.mkdtemp(prefix="agnoshm-bench-c-floor-")
        self.program = os.path.join(self.folder, "c_floor")
        self.missing: str | None = None
        try:
            self.missing = self._build()
        except BaseException:
            self.close()
            raise

    def _build(self) -> str | None:
        compiler = find_compiler()
        if compiler is None:
            looked = f"CC={os.environ['CC']}" if os.environ.get("CC") else ", ".join(COMPILERS)
            return (f"no C compiler found (looked for {looked}): install one (Debian/Ubuntu: "
                    "apt install gcc) or set CC")
        source = os.path.join(self.folder, "c_floor.c")
        with open(source, "w") as f:
            f.write(SOURCE)
        try:
            proc = subprocess.run([*compiler, "-O2", "-std=gnu11", "-o", self.program, source],
                                  capture_output=True, text=True, timeout=COMPILE_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as err:
            return f"the C compiler {compiler[0]} did not run: {err}"
        if proc.returncode != 0:
            lines = [line for line in proc.stderr.splitlines() if line.strip()]
            return (f"the C compiler {compiler[0]} failed: "
                    f"{lines[-1].strip() if lines else f'exit status {proc.returncode}'}")
        return None

    def latency(self, size: int) -> dict:
        """One row: the program's ``samples`` latencies at ``size``.

        :raises BenchError: the program failed or hung.
        """
        s = self.settings
        args = [self.program, str(size), str(s.samples), str(s.warmup),
                str(round(s.interval_s * 1e9))]
        try:
            proc = subprocess.run(args, capture_output=True, text=True,
                                  timeout=s.command_timeout(size))
        except subprocess.TimeoutExpired:
            raise BenchError(f"{TRANSPORT} did not finish within "
                             f"{s.command_timeout(size):.0f} s") from None
        if proc.returncode != 0:
            raise BenchError(f"{TRANSPORT} failed (exit status {proc.returncode}): "
                             f"{proc.stderr.strip()}")
        head, *latencies = proc.stdout.split("\n")
        cpu_s, wall_s = map(float, head.split())
        return {"transport": TRANSPORT, "label": LABEL, "size": size,
                "interval_s": s.interval_s, **summarize([int(x) for x in latencies if x]),
                "receiver_cpu_per_s": cpu_s / max(wall_s, 1e-9)}

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
