"""The Zenoh bridge between real processes on loopback: two agnoshm domains joined through
Zenoh, and hand-written rmw_zenoh-format peers (built from the format as rmw_zenoh's sources
define it, not from agnoshm.zenoh) reading and writing agnoshm topics.

Every session listens on 127.0.0.1 and connects explicitly, with multicast scouting off, so
no test touches the network or sees another run.  Waits are on conditions (a line printed,
a message received, a Zenoh match), never on time.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

zenoh = pytest.importorskip("zenoh", reason="the zenoh extra (pip install 'agnoshm[zenoh]')")
xxhash = pytest.importorskip("xxhash", reason="the zenoh extra (pip install 'agnoshm[zenoh]')")

import agnoshm  # noqa: E402
from sources import child_cwd, child_env  # noqa: E402

WORKER = Path(__file__).with_name("zenoh_workers.py")
TIMEOUT = 120.0  # a deadlock watchdog, never a speed requirement
STRING_KEY = "{d}/chatter/std_msgs::msg::dds_::String_/" \
             "RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child process whose output lines are collected as they come."""

    def __init__(self, args: list[str], domain: int, python: str = sys.executable, **env_extra):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        # PYTHONFAULTHANDLER: a child that hangs is stopped with SIGABRT, which makes it print
        # every thread's stack first (see stop)
        env.update(ROS_DOMAIN_ID=str(domain), PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1",
                   **env_extra)
        if python == sys.executable:  # this agnoshm; another Python (an SDK's venv) gets none
            env = child_env(base=env)
        self.popen = subprocess.Popen([python, *args], cwd=child_cwd(), env=env, text=True,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._readers = [threading.Thread(target=self._read, args=(stream,), daemon=True)
                         for stream in (self.popen.stdout, self.popen.stderr)]
        for reader in self._readers:
            reader.start()

    def _read(self, stream) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_line(self, text: str, count: int = 1) -> str:
        with self._changed:
            found = self._changed.wait_for(
                lambda: len([ln for ln in self.lines if text in ln]) >= count, TIMEOUT)
            assert found, f"no {text!r} ({count}) in the last lines: {self.lines[-20:]}"
            return [ln for ln in self.lines if text in ln][count - 1]

    def send(self, command: str) -> None:
        """Send a worker command and wait for its ``done``."""
        done = len([ln for ln in self.lines if ln == "done"])
        self.write(command)
        self.wait_line("done", done + 1)

    def write(self, command: str) -> None:
        self.popen.stdin.write(command + "\n")
        self.popen.stdin.flush()

    def stop(self, sig=signal.SIGINT) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        try:
            return self.popen.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.popen.send_signal(signal.SIGABRT)  # faulthandler prints the stacks, then dies
            try:
                self.popen.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
            for reader in self._readers:
                reader.join(TIMEOUT)
            stacks = "\n".join(self.lines[-150:])
            raise AssertionError(f"{self.popen.args} did not end within {TIMEOUT:g} s of "
                                 f"{signal.Signals(sig).name}; its last lines and stacks:\n"
                                 f"{stacks}") from None

    def stats(self, topic: str) -> dict[str, int]:
        line = self.wait_line(f"{topic}: to_zenoh=")
        return {k: int(v) for k, v in (p.split("=") for p in line.split(": ", 1)[1].split())}


def bridge(domain: int, zenoh_domain: int, *args: str) -> Proc:
    return Proc(["-m", "agnoshm.zenoh", "--domain", str(zenoh_domain), "--depth", "100", *args],
                domain)


@pytest.fixture
def procs():
    started: list[Proc] = []
    yield started
    for proc in reversed(started):
        if proc.popen.poll() is None:
            proc.stop()


class Inbox:
    """An agnoshm subscription of this process, spun by a thread; keeps what arrives."""

    def __init__(self, node, type_name: str, topic: str, keep):
        self.items: list = []
        self._changed = threading.Condition()
        self._keep = keep
        node.create_subscription(type_name, topic, self._on_message, 100)

    def _on_message(self, msg) -> None:
        item = self._keep(msg)
        with self._changed:
            self.items.append(item)
            self._changed.notify_all()

    def wait_for(self, predicate, timeout: float = TIMEOUT) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self.items), timeout)


class Spinner:
    def __init__(self, node):
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._spin, args=(node,), daemon=True)
        self.thread.start()

    def _spin(self, node) -> None:
        while not self.stop.is_set():
            agnoshm.spin_once(node, timeout_sec=0.1)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(TIMEOUT)


def raw_session(port: int):
    """A plain eclipse-zenoh peer connected to a bridge that listens on ``port``."""
    config = zenoh.Config()
    config.insert_json5("mode", '"peer"')
    config.insert_json5("connect/endpoints", json.dumps([f"tcp/127.0.0.1:{port}"]))
    config.insert_json5("listen/endpoints", "[]")
    config.insert_json5("scouting/multicast/enabled", "false")
    config.insert_json5("transport/shared_memory/enabled", "false")
    return zenoh.open(config)


def warm_up(talker: Proc, inbox: Inbox) -> None:
    """Publish until one message crosses: every route (agnoshm, Zenoh, agnoshm) is up."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        talker.send("string warmup")
        if inbox.wait_for(lambda items: "warmup" in items, timeout=0.5):
            return
    raise AssertionError("no message crossed the bridges")


def test_two_domains_exchange_strings_in_order_and_full_hd_images_through_zenoh(
        isolated_domain, claimed_domains, procs):
    import numpy as np

    sys.path.insert(0, str(WORKER.parent))
    from zenoh_workers import HEIGHT, WIDTH, image_bytes

    here, there = isolated_domain, claimed_domains()  # subscriber here, publisher there
    port = free_port()
    procs.append(bridge(there, here, "--topic", "/chatter:std_msgs/msg/String",
                        "--topic", "/image:sensor_msgs/msg/Image",
                        "--listen", f"tcp/127.0.0.1:{port}"))
    procs.append(bridge(here, here, "--topic", "/chatter", "--topic", "/image",
                        "--connect", f"tcp/127.0.0.1:{port}"))
    sender, receiver = procs
    sender.wait_line("bridging /image")
    # the receiving bridge was given no types: it learns them from the sender's tokens
    receiver.wait_line("bridging /chatter [std_msgs/msg/String]")
    receiver.wait_line("bridging /image [sensor_msgs/msg/Image]")
    talker = Proc([str(WORKER)], there)
    procs.append(talker)
    talker.wait_line("ready")

    node = agnoshm.Node("zenoh_test_listener")
    strings = Inbox(node, "std_msgs/msg/String", "/chatter", lambda m: str(m.data))
    images = Inbox(node, "sensor_msgs/msg/Image", "/image", lambda m: (
        m.width, m.height, str(m.encoding), str(m.header.frame_id),
        hashlib.sha256(np.asarray(m.data).tobytes()).hexdigest()))
    spinner = Spinner(node)
    try:
        warm_up(talker, strings)
        talker.send("strings 50 msg")
        expected = [f"msg {i}" for i in range(50)]
        assert strings.wait_for(lambda items: len(items) >= len(expected) + 1 and
                                items[-1] == "msg 49")
        assert [s for s in strings.items if s != "warmup"] == expected  # all, in order, once
        for k in range(3):
            talker.send(f"image {k}")
            assert images.wait_for(lambda items: len(items) == k + 1), f"image {k} lost"
        digests = [hashlib.sha256(image_bytes(k).tobytes()).hexdigest() for k in range(3)]
        assert images.items == [(WIDTH, HEIGHT, "rgb8", f"image {k}", digests[k])
                                for k in range(3)]
    finally:
        spinner.close()
        node.destroy_node()
    talker.write("quit")
    assert talker.popen.wait(TIMEOUT) == 0
    assert receiver.stop() == 0 and sender.stop() == 0
    sent, received = sender.stats("/chatter"), receiver.stats("/chatter")
    # every sample the receiver took reached the subscriber; the sender may have put a warm-up
    # sample or two before Zenoh routed the receiver's subscription (Zenoh drops those)
    assert received["from_zenoh"] == len(strings.items) <= sent["to_zenoh"]
    assert received["gaps"] == 0 and received["malformed"] == 0
    # nothing came back: the receiver's own publications were not sent to Zenoh again
    assert received["to_zenoh"] == 0 and sent["from_zenoh"] == 0
    assert receiver.stats("/image")["from_zenoh"] == 3


def test_a_plain_zenoh_subscriber_decodes_key_attachment_tokens_and_cdr(isolated_domain, procs):
    domain = isolated_domain
    port = free_port()
    procs.append(bridge(domain, domain, "--topic", "/chatter:std_msgs/msg/String",
                        "--listen", f"tcp/127.0.0.1:{port}"))
    procs[0].wait_line("bridging /chatter")
    talker = Proc([str(WORKER)], domain)
    procs.append(talker)
    talker.wait_line("ready")

    samples, tokens = [], []
    changed = threading.Condition()

    def on_sample(sample):
        with changed:
            samples.append((str(sample.key_expr), sample.payload.to_bytes(),
                            sample.attachment.to_bytes() if sample.attachment else None))
            changed.notify_all()

    def on_token(sample):
        with changed:
            tokens.append(str(sample.key_expr))
            changed.notify_all()

    session = raw_session(port)
    try:
        session.liveliness().declare_subscriber(f"@ros2_lv/{domain}/**", on_token, history=True)
        session.declare_subscriber(f"{domain}/chatter/**", on_sample)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:  # until the route is up
            talker.send("string warmup")
            with changed:
                if changed.wait_for(lambda: samples, 0.5):
                    break
        talker.send("strings 5 hello")
        with changed:
            assert changed.wait_for(lambda: len(samples) >= 6 and
                                    b"hello 4" in samples[-1][1], TIMEOUT)
            first = len(samples) - 5
            received = samples[first:]
    finally:
        session.close()
    before = time.time_ns()

    publisher_tokens = [t for t in tokens if "/MP/" in t and t.endswith("::,100:,:,:,,")]
    assert len(publisher_tokens) == 1, tokens
    token = publisher_tokens[0]
    parts = token.split("/")
    assert parts[:2] == ["@ros2_lv", str(domain)] and parts[5:9] == [
        "MP", "%", "%", "agnoshm_zenoh_bridge"]
    assert parts[9:12] == ["%chatter", "std_msgs::msg::dds_::String_",
                           STRING_KEY.split("/")[-1]]
    node_token = "/".join(parts[:3] + ["0", "0", "NN", "%", "%", "agnoshm_zenoh_bridge"])
    assert node_token in tokens
    gid = xxhash.xxh3_128_intdigest(token.encode()).to_bytes(16, "little")

    sequence = []
    for i, (key, payload, extra) in enumerate(received):
        assert key == STRING_KEY.format(d=domain)
        assert extra is not None and len(extra) == 33 and extra[16] == 0x10
        seq, stamp = struct.unpack_from("<qq", extra)
        assert extra[17:] == gid
        assert 0 < before - stamp < 600 * 10**9  # ns since the epoch, in the past
        sequence.append(seq)
        assert payload[:4] == b"\x00\x01\x00\x00"  # CDR little-endian
        (length,) = struct.unpack_from("<I", payload, 4)
        assert payload[8:8 + length] == f"hello {i}".encode() + b"\x00"
    assert sequence == list(range(sequence[0], sequence[0] + 5)) and sequence[0] >= 2
    talker.write("quit")
    assert talker.popen.wait(TIMEOUT) == 0
    assert procs[0].stop() == 0


def cdr_string(text: str) -> bytes:
    data = text.encode() + b"\x00"
    return b"\x00\x01\x00\x00" + struct.pack("<I", len(data)) + data


def test_a_plain_zenoh_publisher_feeds_agnoshm_and_bad_input_is_dropped_and_counted(
        isolated_domain, procs):
    domain = isolated_domain
    port = free_port()
    procs.append(bridge(domain, domain, "--topic", "/chatter:std_msgs/msg/String",
                        "--topic", "/mystery", "--listen", f"tcp/127.0.0.1:{port}"))
    bridge_proc = procs[0]
    bridge_proc.wait_line("bridging /chatter")
    node = agnoshm.Node("zenoh_test_listener")
    inbox = Inbox(node, "std_msgs/msg/String", "/chatter", lambda m: str(m.data))
    spinner = Spinner(node)
    session = raw_session(port)
    try:
        zid = str(session.zid())
        key = STRING_KEY.format(d=domain)
        token = (f"@ros2_lv/{domain}/{zid}/0/1/MP/%/%/talker/%chatter/"
                 f"{key.split('/', 2)[2].replace('/', '/')}/::,7:,:,:,,")
        liveliness = session.liveliness()
        tokens = [liveliness.declare_token(f"@ros2_lv/{domain}/{zid}/0/0/NN/%/%/talker"),
                  liveliness.declare_token(token)]
        gid = xxhash.xxh3_128_intdigest(token.encode()).to_bytes(16, "little")
        publisher = session.declare_publisher(key)
        deadline = time.monotonic() + TIMEOUT
        while not publisher.matching_status.matching and time.monotonic() < deadline:
            time.sleep(0.05)  # polls a condition: Zenoh routes the bridge's subscription
        assert publisher.matching_status.matching

        def attach(seq):
            return struct.pack("<qqB", seq, time.time_ns(), 16) + gid

        publisher.put(cdr_string("one"), attachment=attach(1))
        publisher.put(cdr_string("no attachment"))
        publisher.put(cdr_string("short attachment"), attachment=attach(2)[:20])
        publisher.put(b"\x00\x00\x00\x00" + cdr_string("big endian")[4:], attachment=attach(2))
        publisher.put(cdr_string("truncated")[:9], attachment=attach(2))
        publisher.put(b"\x00\x01\x00\x00\xff\xff\xff\x7f", attachment=attach(2))
        for seq, text in enumerate(["two", "three", "four", "five"], start=2):
            publisher.put(cdr_string(text), attachment=attach(seq))
        assert inbox.wait_for(lambda items: len(items) >= 5)

        # a publisher of another hash on the same topic: its keys never meet; the bridge says so
        other = token.replace("RIHS01_df66", "RIHS01_0000").replace("/0/1/MP/", "/0/2/MP/")
        tokens.append(liveliness.declare_token(other))
        bridge_proc.wait_line("type mismatch on /chatter")
        # a type this machine does not know, on a topic configured without one
        tokens.append(liveliness.declare_token(
            f"@ros2_lv/{domain}/{zid}/0/3/MP/%/%/talker/%mystery/"
            f"nowhere_msgs::msg::dds_::Thing_/RIHS01_{'ab' * 32}/::,:,:,:,,"))
        bridge_proc.wait_line("unknown type on the wire")
    finally:
        session.close()
        spinner.close()
        node.destroy_node()
    assert inbox.items == ["one", "two", "three", "four", "five"]
    assert bridge_proc.stop(signal.SIGTERM) == 0
    stats = bridge_proc.stats("/chatter")
    assert stats["from_zenoh"] == 5 and stats["malformed"] == 5 and stats["gaps"] == 0
    assert "Traceback" not in "\n".join(bridge_proc.lines)


def test_an_unreachable_router_is_retried_with_a_message_until_it_answers(
        isolated_domain, claimed_domains, procs):
    port = free_port()
    procs.append(bridge(isolated_domain, isolated_domain, "--topic",
                        "/chatter:std_msgs/msg/String", "--mode", "client",
                        "--connect", f"tcp/127.0.0.1:{port}"))
    client = procs[0]
    client.wait_line("retrying in", count=2)
    assert client.popen.poll() is None
    procs.append(bridge(claimed_domains(), isolated_domain, "--topic",
                        "/chatter:std_msgs/msg/String", "--listen", f"tcp/127.0.0.1:{port}"))
    client.wait_line("bridging /chatter")
    assert client.stop() == 0
    assert procs[1].stop(signal.SIGTERM) == 0
    assert "Traceback" not in "\n".join(client.lines)


def test_close_closes_the_session_even_when_a_relay_fails_to_close(isolated_domain):
    """eclipse-zenoh runs Python callbacks on non-daemon threads that end only with their
    subscribers, so a bridge whose close() stopped at a failing step, leaving the session
    open, kept its process from exiting: the unreachable-router test's client hung so once
    a Ctrl-C had left a registry mutex locked (agnoshm/registry/lock.py)."""
    import errno

    from agnoshm.zenoh.bridge import ZenohBridge
    from agnoshm.zenoh.config import load_options

    options = load_options(topics=["/chatter:std_msgs/msg/String"],
                           listen=["tcp/127.0.0.1:0"], domain=isolated_domain)
    bridge = ZenohBridge(options)
    session = bridge.session
    try:
        bridge.update()
        relay = bridge.relays["/chatter"]

        def fail():
            raise OSError(errno.EDEADLK, "as a registry mutex left locked does")

        relay.close = fail
        with pytest.raises(OSError, match="registry mutex"):
            bridge.close()
        assert session.is_closed() and bridge.session is None
        del relay.close
        relay.close()  # its agnoshm endpoints (the session's side is gone already)
    finally:
        if not session.is_closed():
            session.close()


def test_cli_refuses_names_zenoh_cannot_carry_and_missing_topics(capsys):
    from agnoshm.cli.main import main

    assert main(["bridge", "zenoh", "--topic", "/a/*/b"]) == 2
    assert "Zenoh wildcard" in capsys.readouterr().err
    assert main(["bridge", "zenoh"]) == 2
    assert "nothing to bridge" in capsys.readouterr().err
    assert main(["bridge", "zenoh", "--topic", "/a", "--connect", "nonsense"]) == 2
    assert "endpoints" in capsys.readouterr().err


LATCHER = """
import sys, agnoshm
from agnoshm.qos import DurabilityPolicy, QoSProfile
node = agnoshm.Node("zenoh_test_latcher")
pub = node.create_publisher("std_msgs/msg/String", "/latched",
                            QoSProfile(depth=5, durability=DurabilityPolicy.TRANSIENT_LOCAL))
for i in range(3):
    pub.publish({"data": f"latched {i}"})
print("published", flush=True)
sys.stdin.readline()
node.destroy_node(); agnoshm.shutdown()
"""


def test_transient_local_reaches_a_late_bridge_and_a_late_subscriber(
        isolated_domain, claimed_domains, tmp_path, procs):
    """The publisher has published before either bridge exists: the sending bridge's
    TRANSIENT_LOCAL subscription takes the history into its Zenoh cache; the receiving
    bridge joins later and queries it, as rmw_zenoh's advanced subscriber does."""
    from agnoshm.qos import DurabilityPolicy, QoSProfile

    config = tmp_path / "latched.yaml"
    config.write_text("topics:\n  - {name: /latched, type: std_msgs/msg/String, depth: 5, "
                      "durability: transient_local}\n")
    here, there = isolated_domain, claimed_domains()
    latcher = Proc(["-c", LATCHER], there)
    procs.append(latcher)
    latcher.wait_line("published")
    port = free_port()
    procs.append(bridge(there, here, "--config", str(config), "--listen", f"tcp/127.0.0.1:{port}"))
    procs[-1].wait_line("bridging /latched")
    procs.append(bridge(here, here, "--config", str(config), "--connect", f"tcp/127.0.0.1:{port}"))
    receiver = procs[-1]
    receiver.wait_line("bridging /latched")
    received = [ln for ln in receiver.lines]
    assert not any("Traceback" in ln for ln in received)
    node = agnoshm.Node("zenoh_test_late")
    got: list[str] = []
    changed = threading.Condition()

    def on_message(msg):
        with changed:
            got.append(str(msg.data))
            changed.notify_all()

    node.create_subscription("std_msgs/msg/String", "/latched", on_message,
                             QoSProfile(depth=5, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    spinner = Spinner(node)
    try:
        with changed:
            assert changed.wait_for(lambda: len(got) >= 3, TIMEOUT), got
    finally:
        spinner.close()
        node.destroy_node()
    assert got == ["latched 0", "latched 1", "latched 2"]
    latcher.write("")
    assert latcher.popen.wait(TIMEOUT) == 0
    assert receiver.stop() == 0 and procs[1].stop() == 0


SDK_SUBSCRIBER = """
import os, sys, threading
from zenoh_ros2_sdk import ROS2Subscriber, get_registry
get_registry(sys.argv[3])  # local .msg files: no git clone
got, done = [], threading.Event()
def on_message(msg):
    got.append(msg.data)
    print("heard", msg.data, flush=True)
ROS2Subscriber(topic="/chatter", msg_type="std_msgs/msg/String", callback=on_message,
               domain_id=int(sys.argv[2]), router_ip="127.0.0.1", router_port=int(sys.argv[1]))
print("ready", flush=True)
sys.stdin.readline()
os._exit(0)
"""


@pytest.mark.skipif(not os.environ.get("AGNOSHM_TEST_ZENOH_ROS2_SDK_PYTHON"),
                    reason="set AGNOSHM_TEST_ZENOH_ROS2_SDK_PYTHON to a Python with "
                           "zenoh-ros2-sdk 0.1.8 (kept out of the dev venv)")
def test_zenoh_ros2_sdk_an_independent_implementation_hears_the_bridge(
        isolated_domain, tmp_path, procs):
    msgs = tmp_path / "std_msgs" / "msg"
    msgs.mkdir(parents=True)
    (msgs / "String.msg").write_text("string data\n")
    domain = isolated_domain
    port = free_port()
    procs.append(bridge(domain, domain, "--topic", "/chatter:std_msgs/msg/String",
                        "--listen", f"tcp/127.0.0.1:{port}"))
    procs[0].wait_line("bridging /chatter")
    sdk = Proc(["-c", SDK_SUBSCRIBER, str(port), str(domain), str(tmp_path)], domain,
               os.environ["AGNOSHM_TEST_ZENOH_ROS2_SDK_PYTHON"],
               ZENOH_CONFIG_OVERRIDE="scouting/multicast/enabled=false",
               ZENOH_ROS2_SDK_CACHE=str(tmp_path / "cache"))
    procs.append(sdk)
    sdk.wait_line("ready")
    talker = Proc([str(WORKER)], domain)
    procs.append(talker)
    talker.wait_line("ready")
    deadline = time.monotonic() + TIMEOUT
    while not any("heard" in ln for ln in sdk.lines) and time.monotonic() < deadline:
        talker.send("string from agnoshm")  # until the SDK's subscription is routed
        with sdk._changed:
            sdk._changed.wait_for(lambda: any("heard" in ln for ln in sdk.lines), 0.5)
    assert "heard from agnoshm" in sdk.lines
    talker.write("quit")
    sdk.write("")
    assert sdk.popen.wait(TIMEOUT) == 0 and talker.popen.wait(TIMEOUT) == 0
    assert procs[0].stop() == 0


def test_on_demand_bridges_connect_a_topic_neither_was_told_about_while_it_has_peers(
        isolated_domain, claimed_domains, procs):
    """Two on-demand bridges, no topic configured: the publisher's topics there have no
    subscriber until one appears here on /chatter; then both bridges relay /chatter (and
    only it), and stop when the subscriber goes."""
    here, there = isolated_domain, claimed_domains()  # subscriber here, publisher there
    port = free_port()
    procs.append(bridge(there, here, "--on-demand", "--period", "0.2",
                        "--listen", f"tcp/127.0.0.1:{port}"))
    procs.append(bridge(here, here, "--on-demand", "--period", "0.2",
                        "--connect", f"tcp/127.0.0.1:{port}"))
    sender, receiver = procs
    talker = Proc([str(WORKER)], there)
    procs.append(talker)
    talker.wait_line("ready")

    node = agnoshm.Node("zenoh_test_listener")
    strings = Inbox(node, "std_msgs/msg/String", "/chatter", lambda m: str(m.data))
    spinner = Spinner(node)
    try:
        sender.wait_line("bridging /chatter [std_msgs/msg/String]")
        receiver.wait_line("bridging /chatter [std_msgs/msg/String]")
        warm_up(talker, strings)
        talker.send("strings 20 demand")
        expected = [f"demand {i}" for i in range(20)]
        assert strings.wait_for(lambda items: items[-1:] == ["demand 19"])
        assert [s for s in strings.items if s != "warmup"] == expected
    finally:
        spinner.close()
        node.destroy_node()
    # the subscriber is gone: neither side has a peer for the other any more
    receiver.wait_line("stopped bridging /chatter")
    sender.wait_line("stopped bridging /chatter")
    talker.write("quit")
    assert talker.popen.wait(TIMEOUT) == 0
    assert receiver.stop() == 0 and sender.stop() == 0
    for proc in (sender, receiver):  # /image has a publisher there and no subscriber anywhere
        assert not any("bridging /image" in ln or "Traceback" in ln for ln in proc.lines), \
            proc.lines
