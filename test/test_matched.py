"""Matched counts and events (issue 18, item 4): ``get_subscription_count()`` /
``get_publisher_count()``, matched callbacks run by the node's executor,
``wait_for_subscription()`` / ``wait_for_publisher()``, counts through the Zenoh and
ROS 2 bridges (the ROS 2 one in test/ros/test_bridge.py, beside its rclpy fixture), and
``ignore_local_publications``; endpoints in real processes that
come, go and die by SIGKILL."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading

import pytest

import agnoshm
import matched_workers
import workers
from agnoshm import PublisherEventCallbacks, SubscriptionEventCallbacks
from sources import child_cwd, child_env
from workers import TIMEOUT


class Child:
    """A process of the domain whose endpoints the test creates and destroys."""

    def __init__(self):
        ctx = workers.context()
        self.commands, self.out = ctx.Queue(), ctx.Queue()
        self.process = ctx.Process(target=matched_workers.endpoints,
                                   args=(self.commands, self.out))
        self.process.start()
        assert self.out.get(timeout=TIMEOUT)[0] == "ready"

    def do(self, *command) -> None:
        """Run ``command``; when it returns the registry shows its effect."""
        self.commands.put(command)
        assert self.out.get(timeout=TIMEOUT) == ("done", command)

    def quit(self) -> None:
        self.commands.put(("quit",))
        assert self.out.get(timeout=TIMEOUT) == ("bye",)
        self.process.join(TIMEOUT)
        assert self.process.exitcode == 0

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.join(TIMEOUT)


class Recorder:
    """A matched callback that keeps each MatchedInfo and the thread it ran in."""

    def __init__(self):
        self.infos: list = []
        self.threads: set[int] = set()

    def __call__(self, info) -> None:
        self.infos.append(info)
        self.threads.add(threading.get_ident())

    @property
    def current(self) -> int:
        return self.infos[-1].current_count if self.infos else 0

    def check(self, total: int, current: int) -> None:
        """The reports add up, as rmw's status does: changes since the previous callback."""
        last = self.infos[-1]
        assert (last.total_count, last.current_count) == (total, current), self.infos
        assert sum(i.current_count_change for i in self.infos) == current, self.infos
        assert sum(i.total_count_change for i in self.infos) == total, self.infos
        assert all(i.current_count_change or i.total_count_change for i in self.infos)


def test_counts_and_matched_events_follow_endpoints_of_other_processes(isolated_domain):
    node = agnoshm.Node("watcher")
    on_pub, on_sub = Recorder(), Recorder()
    pub = node.create_publisher(agnoshm.Bytes, "/m", 10,
                                event_callbacks=PublisherEventCallbacks(matched=on_pub))
    sub = node.create_subscription(agnoshm.Bytes, "/n", lambda msg: None, 10,
                                   event_callbacks=SubscriptionEventCallbacks(matched=on_sub))
    assert (pub.get_subscription_count(), sub.get_publisher_count()) == (0, 0)
    child = Child()
    child.do("sub", "/m")
    child.do("sub", "/m")
    child.do("pub", "/n")
    assert (pub.get_subscription_count(), sub.get_publisher_count()) == (2, 1)
    assert (node.count_subscribers("/m"), node.count_publishers("/n")) == (2, 1)

    # changes seen before the node is in an executor wait for one, then run in its thread
    executor = agnoshm.SingleThreadedExecutor()
    executor.add_node(node)
    assert executor.spin_until(lambda: on_pub.current == 2 and on_sub.current == 1, TIMEOUT)
    assert on_pub.threads == on_sub.threads == {threading.get_ident()}
    on_pub.check(total=2, current=2)
    on_sub.check(total=1, current=1)

    child.do("destroy", "sub", "/m")
    assert pub.get_subscription_count() == 1
    assert executor.spin_until(lambda: on_pub.current == 1, TIMEOUT)
    on_pub.check(total=2, current=1)

    doomed = Child()
    doomed.do("sub", "/m")
    assert executor.spin_until(lambda: on_pub.current == 2, TIMEOUT)
    doomed.kill()  # kill -9: its subscription goes when a housekeeping pass reaps it
    assert executor.spin_until(lambda: on_pub.current == 1, TIMEOUT)
    assert pub.get_subscription_count() == 1
    on_pub.check(total=3, current=1)

    child.quit()
    assert executor.spin_until(lambda: on_pub.current == 0 and on_sub.current == 0, TIMEOUT)
    assert (pub.get_subscription_count(), sub.get_publisher_count()) == (0, 0)
    on_pub.check(total=3, current=0)
    on_sub.check(total=1, current=0)
    executor.shutdown()
    node.destroy_node()


def test_wait_for_subscription_and_publisher_return_true_when_one_comes_false_on_timeout(
        isolated_domain):
    node = agnoshm.Node("waiter")
    pub = node.create_publisher(agnoshm.Bytes, "/w", 10)
    sub = node.create_polling_subscription(agnoshm.Bytes, "/v", 10)
    assert pub.wait_for_subscription(timeout_sec=0.1) is False
    assert sub.wait_for_publisher(timeout_sec=0) is False
    child = Child()
    result = {}
    waiter = threading.Thread(target=lambda: result.update(found=pub.wait_for_subscription()))
    waiter.start()  # waits with no timeout
    child.do("sub", "/w")
    waiter.join(TIMEOUT)
    assert result == {"found": True}
    child.do("pub", "/v")
    assert sub.wait_for_publisher(timeout_sec=TIMEOUT) is True
    assert pub.wait_for_subscription(timeout_sec=0) is True  # already there: no wait
    child.quit()
    node.destroy_publisher(pub)
    with pytest.raises(agnoshm.InvalidHandleError, match="destroyed"):
        pub.wait_for_subscription(timeout_sec=0)
    node.destroy_node()


def test_shutdown_ends_a_wait_with_false(isolated_domain):
    node = agnoshm.Node("waiter")
    pub = node.create_publisher(agnoshm.Bytes, "/nobody", 10)
    result = {}
    waiting = threading.Event()

    def wait() -> None:
        waiting.set()
        result["found"] = pub.wait_for_subscription()

    waiter = threading.Thread(target=wait)
    waiter.start()
    assert waiting.wait(TIMEOUT)
    agnoshm.shutdown()
    waiter.join(TIMEOUT)
    assert result == {"found": False}


def test_event_callbacks_agnoshm_cannot_honour_are_refused_before_anything_is_created(
        isolated_domain, caplog):
    node = agnoshm.Node("events")
    with pytest.raises(agnoshm.UnsupportedEventTypeError, match="deadline.*matched= is supported"):
        node.create_publisher(agnoshm.Bytes, "/e", 10,
                              event_callbacks=PublisherEventCallbacks(deadline=print))
    with pytest.raises(agnoshm.UnsupportedEventTypeError, match="message_lost"):
        node.create_subscription(agnoshm.Bytes, "/e", print, 10,
                                 event_callbacks=SubscriptionEventCallbacks(message_lost=print))
    with pytest.raises(TypeError, match="PublisherEventCallbacks"):
        node.create_publisher(agnoshm.Bytes, "/e", 10, event_callbacks=print)
    assert node.count_publishers("/e") == node.count_subscribers("/e") == 0

    # a matched callback that raises is logged; the executor carries on
    def broken(info):
        raise ValueError("boom")

    pub = node.create_publisher(agnoshm.Bytes, "/e", 10,
                                event_callbacks=PublisherEventCallbacks(matched=broken))
    fine = Recorder()
    node.create_publisher(agnoshm.Bytes, "/e", 10,
                          event_callbacks=PublisherEventCallbacks(matched=fine))
    executor = agnoshm.SingleThreadedExecutor()
    executor.add_node(node)
    with caplog.at_level(logging.ERROR, logger="agnoshm.events"):
        node.create_polling_subscription(agnoshm.Bytes, "/e", 10)
        assert executor.spin_until(lambda: fine.current == 1, TIMEOUT)
        executor.spin_until(lambda: "boom" in caplog.text, TIMEOUT)
    assert "matched callback" in caplog.text and "ValueError: boom" in caplog.text
    assert pub.get_subscription_count() == 1
    executor.shutdown()
    node.destroy_node()


def test_ignore_local_publications_skips_this_process_messages_only(isolated_domain):
    node = agnoshm.Node("local")
    pub = node.create_publisher(agnoshm.Bytes, "/local", 10)
    skipping = node.create_polling_subscription(agnoshm.Bytes, "/local", 10,
                                                ignore_local_publications=True)
    everything = node.create_polling_subscription(agnoshm.Bytes, "/local", 10)
    child = Child()
    child.do("pub", "/local")
    assert skipping.get_publisher_count() == 2  # still matched: only its messages are skipped
    pub.publish(b"mine")
    child.do("publish", "/local", "theirs")
    workers.wait_until(lambda: everything.has_data() and skipping.has_data(), what="messages")
    got_all = [bytes(m.data) for m in iter(everything.take, None)]
    workers.wait_until(lambda: len(got_all) >= 2 or
                       got_all.extend(bytes(m.data) for m in iter(everything.take, None)),
                       what="both messages")
    assert got_all == [b"mine", b"theirs"]
    assert [bytes(m.data) for m in iter(skipping.take, None)] == [b"theirs"]
    child.quit()
    node.destroy_node()


# -- through bridges ----------------------------------------------------------------------------

_ZENOH_REMOTE = """
import json, sys, zenoh
from agnoshm.zenoh import liveliness
config = zenoh.Config()
config.insert_json5("mode", '"peer"')
config.insert_json5("connect/endpoints", json.dumps([sys.argv[1]]))
config.insert_json5("listen/endpoints", "[]")
config.insert_json5("scouting/multicast/enabled", "false")
config.insert_json5("transport/shared_memory/enabled", "false")
session = zenoh.open(config)
zid, domain, tokens = str(session.zid()), int(sys.argv[2]), {}
print("ready", flush=True)
for line in sys.stdin:
    verb, kind, eid = line.split()
    entity = liveliness.Entity(domain, zid, 1, int(eid), kind, "remote_peer",
                               topic="/chatter", type_name="std_msgs::msg::dds_::String_",
                               type_hash="RIHS01_" + "0" * 64)
    if verb == "declare":
        tokens[eid] = session.liveliness().declare_token(entity.key)
    else:
        tokens.pop(eid).undeclare()
    print("done", flush=True)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child(args: list[str], domain: int) -> subprocess.Popen:
    env = child_env(base={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
                    ROS_DOMAIN_ID=str(domain), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, *args], cwd=child_cwd(), env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def _read_until(proc: subprocess.Popen, text: str) -> None:
    for line in proc.stdout:  # the child's own output; it ends if the child dies
        if text in line:
            return
    raise AssertionError(f"the child ended (exit {proc.wait(TIMEOUT)}) before {text!r}")


def test_zenoh_bridge_counts_remote_endpoints_not_itself(isolated_domain):
    """A Zenoh bridge relays /chatter; a remote rmw_zenoh peer (its liveliness tokens)
    declares subscriptions and a publisher: agnoshm counts those, never the bridge's own."""
    pytest.importorskip("zenoh", reason="the zenoh extra (pip install 'agnoshm[zenoh]')")
    domain, port = isolated_domain, _free_port()
    bridge = _child(["-m", "agnoshm.zenoh", "--domain", str(domain), "--period", "0.2",
                     "--topic", "/chatter:std_msgs/msg/String",
                     "--listen", f"tcp/127.0.0.1:{port}"], domain)
    remote = None
    node = agnoshm.Node("counted")
    try:
        _read_until(bridge, "bridging /chatter")
        pub = node.create_publisher("std_msgs/msg/String", "/chatter", 10)
        sub = node.create_polling_subscription("std_msgs/msg/String", "/chatter", 10)
        # the bridge's endpoints stand for no one yet (the first count follows its creation)
        workers.wait_until(lambda: pub.get_subscription_count() == 1 and
                           sub.get_publisher_count() == 1, what="the bridge to count no one")
        on_pub = Recorder()
        watched = node.create_publisher("std_msgs/msg/String", "/chatter", 10,
                                        event_callbacks=PublisherEventCallbacks(matched=on_pub))
        executor = agnoshm.SingleThreadedExecutor()
        executor.add_node(node)
        assert executor.spin_until(lambda: on_pub.current == 1, TIMEOUT)  # our own subscription
        remote = _child(["-c", _ZENOH_REMOTE, f"tcp/127.0.0.1:{port}", str(domain)], domain)
        _read_until(remote, "ready")
        for command in ("declare MS 10", "declare MS 11", "declare MP 12"):
            remote.stdin.write(command + "\n")
            remote.stdin.flush()
            _read_until(remote, "done")
        assert watched.wait_for_subscription(TIMEOUT)
        workers.wait_until(lambda: pub.get_subscription_count() == 3 and
                           sub.get_publisher_count() == 3, what="the remote endpoints")
        assert executor.spin_until(lambda: on_pub.current == 3, TIMEOUT)
        remote.stdin.close()  # the remote session ends: its tokens go
        remote.wait(TIMEOUT)
        workers.wait_until(lambda: pub.get_subscription_count() == 1 and
                           sub.get_publisher_count() == 2, what="the remote endpoints to go")
        assert executor.spin_until(lambda: on_pub.current == 1, TIMEOUT)
        on_pub.check(total=3, current=1)
        executor.shutdown()
    finally:
        node.destroy_node()
        for proc in (remote, bridge):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                proc.wait(TIMEOUT)
    assert bridge.returncode == 0
