"""Child processes for the CLI tests (multiprocessing, spawn start method).

A worker takes commands from a queue and answers on another, so tests
synchronize on replies, never on sleeps.
"""

from __future__ import annotations

import os
import time

TIMEOUT = float(os.environ.get("AGNOSHM_TEST_TIMEOUT", "120"))

CUSTOM_TYPE = "cli_test_pkg/msg/Custom"
CUSTOM_MSG = "int32 a\nstring b\n"


def context():
    import multiprocessing

    return multiprocessing.get_context("spawn")


def wait_until(predicate, what: str, timeout: float = TIMEOUT) -> None:
    """Poll ``predicate`` until true: a deadlock watchdog, not a timer."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.005)


def _qos(depth: int, durability: str):
    import agnoshm

    return agnoshm.QoSProfile(depth=depth, durability={
        "volatile": agnoshm.DurabilityPolicy.VOLATILE,
        "transient_local": agnoshm.DurabilityPolicy.TRANSIENT_LOCAL}[durability])


def image(i: int, n: int = 18) -> dict:
    """An Image whose bytes are ``(i + k) % 256``."""
    return {"header": {"frame_id": f"cam{i}", "stamp": {"sec": i, "nanosec": 7}},
            "height": 2, "width": n // 6, "encoding": "rgb8", "step": n // 2,
            "data": bytes((i + k) % 256 for k in range(n))}


def talker(node_name: str, specs: list, commands, out) -> None:
    """Publishers per ``(topic, type, depth, durability)``; runs the commands:

    ``("publish", topic, [values])`` publishes them (dicts or bytes), replies ``("published", n)``;
    ``("wait_subscriptions", topic, n)`` replies ``("subscribed",)`` once ``n`` listen;
    ``("exit",)`` leaves the domain and replies ``("bye",)``.
    """
    import agnoshm

    if any(spec[1] == CUSTOM_TYPE for spec in specs):
        agnoshm.register_msg(CUSTOM_MSG, CUSTOM_TYPE)
    node = agnoshm.Node(node_name)
    pubs = {topic: node.create_publisher(type_name, topic, _qos(depth, durability))
            for topic, type_name, depth, durability in specs}
    out.put(("ready", os.getpid()))
    while True:
        command = commands.get(timeout=TIMEOUT)
        if command[0] == "publish":
            for value in command[2]:
                pubs[command[1]].publish(value)
            out.put(("published", len(command[2])))
        elif command[0] == "wait_subscriptions":
            pub = pubs[command[1]]
            wait_until(lambda: pub.get_subscription_count() >= command[2], "subscriptions")
            out.put(("subscribed",))
        elif command[0] == "exit":
            break
    node.destroy_node()
    agnoshm.shutdown()
    out.put(("bye",))


def listener(node_name: str, specs: list, commands, out) -> None:
    """Subscriptions per ``(topic, type, depth)``; runs the commands:

    ``("collect", topic, n)`` replies ``("collected", [(seq, timestamp_ns, dict), ...])`` with
    the first ``n`` messages of ``topic``; ``("exit",)`` leaves and replies ``("bye",)``.
    """
    import agnoshm

    node = agnoshm.Node(node_name)
    received: dict[str, list] = {topic: [] for topic, _t, _d in specs}

    def keep(topic):
        return lambda msg: received[topic].append((msg.seq, msg.timestamp_ns, msg.to_dict()))

    for topic, type_name, depth in specs:
        node.create_subscription(type_name, topic, keep(topic), depth)
    out.put(("ready", os.getpid()))
    while True:
        command = commands.get(timeout=TIMEOUT)
        if command[0] == "collect":
            topic, n = command[1], command[2]
            deadline = time.monotonic() + TIMEOUT
            while len(received[topic]) < n and time.monotonic() < deadline:
                agnoshm.spin_once(node, timeout_sec=0.1)
            out.put(("collected", received[topic][:n]))
        elif command[0] == "exit":
            break
    node.destroy_node()
    agnoshm.shutdown()
    out.put(("bye",))


def finished_pid() -> int:
    """The pid of a process that has exited (and been waited for)."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                            capture_output=True, text=True, timeout=TIMEOUT, check=True)
    return int(result.stdout)


def join_and_wait(out, finish) -> None:
    """Join the domain with a publisher on /doomed, report the pid, wait (to be killed)."""
    import agnoshm

    node = agnoshm.Node("doomed")
    node.create_publisher("std_msgs/msg/String", "/doomed", 1)
    out.put(("ready", os.getpid()))
    finish.wait(TIMEOUT)
    node.destroy_node()
    agnoshm.shutdown()


def kill_the_last_member() -> int:
    """Start a process that joins the domain (a publisher on /doomed) and SIGKILL it: as the
    last process of its domain, it leaves its registry record, pool and queue. Its pid."""
    ctx = context()
    out, finish = ctx.Queue(), ctx.Event()
    child = ctx.Process(target=join_and_wait, args=(out, finish))
    child.start()
    try:
        return out.get(timeout=TIMEOUT)[1]
    finally:
        child.kill()
        child.join(TIMEOUT)


class Worker:
    """A started worker: ``call(command)`` sends it and returns the reply."""

    def __init__(self, target, *args):
        ctx = context()
        self.commands = ctx.Queue()
        self.out = ctx.Queue()
        self.process = ctx.Process(target=target, args=(*args, self.commands, self.out))
        self.process.start()
        reply = self.out.get(timeout=TIMEOUT)
        assert reply[0] == "ready", reply
        self.pid = reply[1]

    def call(self, *command):
        self.commands.put(command)
        return self.out.get(timeout=TIMEOUT)

    def stop(self) -> None:
        if self.process.is_alive():
            self.commands.put(("exit",))
            try:
                self.out.get(timeout=TIMEOUT)
            except Exception:
                pass
            self.process.join(TIMEOUT)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(TIMEOUT)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# -- running the command line -------------------------------------------------------------

def cli_command(*args: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "agnoshm", *args]


def run_cli(*args: str):
    """Run ``python -m agnoshm ARGS`` to completion; return the CompletedProcess (text)."""
    import subprocess

    from sources import child_cwd, child_env

    return subprocess.run(cli_command(*args), capture_output=True, text=True, timeout=TIMEOUT,
                          env=child_env(), cwd=child_cwd(), stdin=subprocess.DEVNULL)


def start_cli(*args: str):
    """Start ``python -m agnoshm ARGS``; read it with ``finish(process)``."""
    import subprocess

    from sources import child_cwd, child_env

    return subprocess.Popen(cli_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=child_env(), cwd=child_cwd(), stdin=subprocess.DEVNULL)


def finish(process) -> tuple[int, str, str]:
    """Wait for a started command (watchdog); return (exit status, stdout, stderr)."""
    try:
        out, err = process.communicate(timeout=TIMEOUT)
    except BaseException:
        process.kill()
        process.communicate()
        raise
    return process.returncode, out, err


def subscribed(topic: str, node_prefix: str, count: int = 1) -> bool:
    """True once ``count`` subscriptions of nodes named ``node_prefix...`` are on ``topic``."""
    from agnoshm.cli import snapshot

    try:
        t = snapshot.read().topic(topic)
    except snapshot.CommandError:
        return False
    return sum(s.node_name.startswith(node_prefix) for s in t.subscriptions) >= count


def wait_subscribed(process, topic: str, node_prefix: str, count: int = 1) -> None:
    """Wait until a started command subscribes to ``topic`` (or fail with its output)."""
    def ready():
        if process.poll() is not None:
            raise AssertionError(f"command exited with {process.returncode}: "
                                 f"{process.communicate()}")
        return subscribed(topic, node_prefix, count)

    wait_until(ready, f"a subscription of {node_prefix} on {topic}")
