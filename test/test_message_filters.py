"""agnoshm.message_filters: synchronizers over agnoshm subscriptions (issue 18, item 2).

Three groups:

* the policies, fed by plain filters in this process (as ``message_filters``' own
  tests do): matching, slop, queue size, what is dropped when, headerless input, bad input;
* across processes: a child (test/message_filters_workers.py) publishes images,
  camera infos and strings one command at a time, so the test knows what the
  synchronizer has seen; the callbacks get the received views, and the views the
  synchronizer drops are released in the registry;
* on an rclpy node (marked ``ros``; skips with the reason where ROS 2 is missing).
"""

from __future__ import annotations

import gc
import re
import subprocess
import sys
import time
import weakref
from pathlib import Path
from types import SimpleNamespace

import pytest

import agnoshm
import ros_packages
import workers
from agnoshm import message_filters
from agnoshm.errors import HeaderlessMessageError, InvalidSynchronizerError
from agnoshm.message_filters import (
    ApproximateTimeSynchronizer,
    SimpleFilter,
    Subscriber,
    TimeSynchronizer,
)
from agnoshm.msg import ReceivedView
from message_filters_workers import IMAGE_BYTES, TOPICS, image_byte, stamper
from sources import child_env
from workers import TIMEOUT

SEC = 1_000_000_000
MS = 1_000_000


class Stamped:
    """A message with ``header.stamp`` (weakly referenceable, to see when it is dropped)."""

    def __init__(self, stamp_ns: int, name: str = ""):
        sec, nanosec = divmod(stamp_ns, SEC)
        self.header = SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nanosec))
        self.name = name

    def __repr__(self) -> str:
        return self.name


class Headerless:
    def __init__(self, name: str = ""):
        self.name = name


def _inputs(n: int = 2) -> list[SimpleFilter]:
    return [SimpleFilter() for _ in range(n)]


def _collect(sut) -> list[tuple]:
    got: list[tuple] = []
    sut.registerCallback(lambda *msgs: got.append(tuple(m.name for m in msgs)))
    return got


def _queued(sut) -> list[list[str]]:
    return [[m.name for m in queue.values()] for queue in sut.queues]


# -- the policies ----------------------------------------------------------------------------------

def test_time_synchronizer_outputs_sets_of_equal_stamps_oldest_first():
    a, b, c = _inputs(3)
    sut = TimeSynchronizer([a, b, c], 10)
    got = _collect(sut)
    for t in (1, 2, 3):
        a.signalMessage(Stamped(t * SEC, f"a{t}"))
        c.signalMessage(Stamped(t * SEC, f"c{t}"))
    assert got == []
    b.signalMessage(Stamped(2 * SEC, "b2"))
    b.signalMessage(Stamped(3 * SEC, "b3"))
    assert got == [("a2", "b2", "c2"), ("a3", "b3", "c3")]
    assert _queued(sut) == [[], [], []]  # a1 and c1 can no longer match: b is past them


def test_time_synchronizer_matches_whatever_the_input_order_within_the_queues():
    a, b = _inputs()
    sut = TimeSynchronizer([a, b], 10)
    got = _collect(sut)
    for t in (3, 1, 2):  # shuffled before the other input has anything: all wait
        a.signalMessage(Stamped(t * SEC, f"a{t}"))
    b.signalMessage(Stamped(1 * SEC, "b1"))
    b.signalMessage(Stamped(2 * SEC, "b2"))
    assert got == [("a1", "b1"), ("a2", "b2")]


def test_approximate_pairs_a_new_message_with_the_closest_stamps_within_slop():
    a, b = _inputs()
    sut = ApproximateTimeSynchronizer([a, b], 10, 0.1)
    got = _collect(sut)
    a.signalMessage(Stamped(1000 * MS, "a1000"))
    a.signalMessage(Stamped(1030 * MS, "a1030"))
    b.signalMessage(Stamped(1020 * MS, "b1020"))
    assert got == [("a1030", "b1020")]  # 10 ms beats 20 ms
    # a1000 may still pair with a later b up to 1100 ms: it waits ...
    assert _queued(sut) == [["a1000"], []]
    b.signalMessage(Stamped(1200 * MS, "b1200"))  # ... until b is past 1000 ms + slop
    assert _queued(sut) == [[], ["b1200"]]
    a.signalMessage(Stamped(1150 * MS, "a1150"))
    assert got[-1] == ("a1150", "b1200")


def test_approximate_sets_need_stamps_strictly_closer_than_slop():
    # message_filters' rule: newest minus oldest < slop
    a, b = _inputs()
    sut = ApproximateTimeSynchronizer([a, b], 10, 0.1)
    got = _collect(sut)
    a.signalMessage(Stamped(1000 * MS, "a"))
    b.signalMessage(Stamped(1100 * MS, "b"))
    assert got == [] and _queued(sut) == [[], ["b"]]  # a can never match now: dropped
    a.signalMessage(Stamped(1001 * MS, "a'"))
    assert got == [("a'", "b")]


def test_approximate_with_three_inputs_outputs_a_set_within_slop_of_each_other():
    a, b, c = _inputs(3)
    sut = ApproximateTimeSynchronizer([a, b, c], 10, 0.05)
    got = _collect(sut)
    a.signalMessage(Stamped(1000 * MS, "a"))
    a.signalMessage(Stamped(1030 * MS, "a'"))
    b.signalMessage(Stamped(1040 * MS, "b"))
    assert got == []
    c.signalMessage(Stamped(1045 * MS, "c"))
    assert got == [("a'", "b", "c")]  # a' is closer to c than a
    assert _queued(sut) == [["a"], [], []]  # b and c may still bring stamps within 50 ms of a


def test_approximate_matches_in_order_streams_like_message_filters():
    # the in-order half of message_filters' test_approx: pairs at equal stamps, queue size 1
    a, b = _inputs()
    sut = ApproximateTimeSynchronizer([a, b], 1, 0.1)
    got = _collect(sut)
    for t in range(10):
        a.signalMessage(Stamped(t * SEC, f"a{t}"))
        assert len(got) == t
        b.signalMessage(Stamped(t * SEC, f"b{t}"))
        assert got[-1] == (f"a{t}", f"b{t}")


def test_queue_size_keeps_the_newest_stamps_of_each_input():
    a, b = _inputs()
    sut = TimeSynchronizer([a, b], 2)
    got = _collect(sut)
    for t in (1, 2, 3):
        a.signalMessage(Stamped(t * SEC, f"a{t}"))
    assert _queued(sut) == [["a2", "a3"], []]  # a1 went: the oldest stamp over queue_size
    for t in (1, 2, 3):
        b.signalMessage(Stamped(t * SEC, f"b{t}"))
    assert got == [("a2", "b2"), ("a3", "b3")]
    assert _queued(sut) == [[], []]  # b1 arrived after a moved past 1 s: dropped at once


def test_the_synchronizer_keeps_no_reference_to_what_it_dropped_or_output():
    a, b = _inputs()
    sut = ApproximateTimeSynchronizer([a, b], 3, 0.01)
    kept = []
    sut.registerCallback(lambda x, y: None)
    for t in range(6):  # a alone: the queue keeps the last 3
        msg = Stamped(t * SEC, f"a{t}")
        kept.append(weakref.ref(msg))
        a.signalMessage(msg)
        del msg
    gc.collect()
    assert [r() is not None for r in kept] == [False] * 3 + [True] * 3
    b.signalMessage(Stamped(5 * SEC, "b5"))  # matches a5 (output, then let go) ...
    gc.collect()
    assert [r() is not None for r in kept] == [False] * 6  # ... and a3, a4 can never match
    assert _queued(sut) == [[], []]


def test_a_headerless_message_raises_naming_the_input_and_the_fix():
    a, b = _inputs()
    sut = ApproximateTimeSynchronizer([a, b], 10, 0.1)
    with pytest.raises(HeaderlessMessageError) as info:
        b.signalMessage(Headerless("x"))
    assert isinstance(info.value, agnoshm.AgnoshmError) and isinstance(info.value, TypeError)
    text = str(info.value)
    assert "input 1" in text and "Headerless" in text and "allow_headerless=True" in text
    assert _queued(sut) == [[], []]
    c, d = _inputs()
    TimeSynchronizer([c, d], 10)
    with pytest.raises(HeaderlessMessageError) as info:  # exact time: no receive-time fallback
        c.signalMessage(Headerless("y"))
    assert "ApproximateTimeSynchronizer(fs, queue_size, slop, allow_headerless=True)" \
        in str(info.value)


def test_allow_headerless_stamps_messages_with_their_receive_time_on_the_system_clock():
    a, b = _inputs()
    sut = ApproximateTimeSynchronizer([a, b], 10, 3600.0, allow_headerless=True)
    got = _collect(sut)
    before = time.time_ns()
    b.signalMessage(Headerless("text"))
    after = time.time_ns()
    (stamp,) = sut.queues[1]
    assert before <= stamp <= after
    a.signalMessage(Stamped(stamp, "image"))
    assert got == [("image", "text")]


@pytest.mark.parametrize("fs, queue_size, slop, words", [
    ([SimpleFilter()], 10, 0.1, ["at least 2 inputs", "got 1", "registerCallback(cb)"]),
    ([], 10, 0.1, ["at least 2 inputs", "got 0"]),
    ([SimpleFilter(), "/camera/image"], 10, 0.1, ["input 1 is a str, not a filter", "Subscriber("]),
    (SimpleFilter(), 10, 0.1, ["list of input filters", "SimpleFilter"]),
    (_inputs(), 0, 0.1, ["queue_size must be an int >= 1", "got 0", "pass e.g. 10"]),
    (_inputs(), -3, 0.1, ["queue_size", "got -3"]),
    (_inputs(), 2.5, 0.1, ["queue_size", "got 2.5"]),
    (_inputs(), True, 0.1, ["queue_size", "got True"]),
    (_inputs(), 10, -0.1, ["slop must be a positive number of seconds", "got -0.1", "e.g. 0.1"]),
    (_inputs(), 10, 0, ["slop", "got 0", "TimeSynchronizer for equal stamps"]),
    (_inputs(), 10, float("nan"), ["slop", "got nan"]),
    (_inputs(), 10, "0.1", ["slop", "got '0.1'"]),
])
def test_bad_arguments_raise_naming_the_cause_and_the_fix(fs, queue_size, slop, words):
    with pytest.raises(InvalidSynchronizerError) as info:
        ApproximateTimeSynchronizer(fs, queue_size, slop)
    assert isinstance(info.value, agnoshm.AgnoshmError) and isinstance(info.value, ValueError)
    for word in words:
        assert word in str(info.value)
    if slop == 0.1:
        with pytest.raises(InvalidSynchronizerError):
            TimeSynchronizer(fs, queue_size)


# -- across processes ------------------------------------------------------------------------------

class Camera:
    """A child process that publishes on :data:`TOPICS` one command at a time, and the
    lockstep with this process: :meth:`send` returns once the message went through the
    synchronizer's input, so the test knows exactly what the synchronizer has seen."""

    def __init__(self, inputs: dict[str, SimpleFilter], spin_until, depth: int = 50):
        self._spin_until = spin_until
        self.arrived = {kind: [] for kind in inputs}  # weak references to what came in
        for kind, f in inputs.items():
            f.registerCallback(lambda msg, kind=kind: self.arrived[kind].append(weakref.ref(msg)))
        ctx = workers.context()
        self._commands, self._out = ctx.Queue(), ctx.Queue()
        self.process = ctx.Process(target=stamper, args=(self._commands, self._out, depth))
        self.process.start()
        assert self._reply()[0] == "ready"

    def _reply(self):
        reply = self._out.get(timeout=TIMEOUT)
        assert reply[0] != "error", reply[1]
        return reply

    def send(self, kind: str, stamp_ns: int | None) -> int:
        """Publish one ``kind`` stamped ``stamp_ns`` (None: now); wait until it arrived."""
        count = len(self.arrived[kind]) + 1
        self._commands.put((kind, stamp_ns))
        _, _, stamp_ns = self._reply()
        assert self._spin_until(lambda: len(self.arrived[kind]) >= count), f"no {kind} arrived"
        return stamp_ns

    def stop(self) -> None:
        self._commands.put(("stop",))
        self.process.join(TIMEOUT)
        assert self.process.exitcode == 0


@pytest.fixture
def start_camera(isolated_domain):
    """``start_camera(inputs, spin_until, depth=50) -> Camera``; stopped after the test."""
    cameras: list[Camera] = []

    def start(inputs, spin_until, depth: int = 50) -> Camera:
        cameras.append(Camera(inputs, spin_until, depth))
        return cameras[-1]

    yield start
    for camera in cameras:  # a test that failed half way
        if camera.process.exitcode is None:
            camera._commands.put(("stop",))
            camera.process.join(TIMEOUT)


@pytest.fixture
def node(isolated_domain):
    sut = agnoshm.Node("sync")
    executor = agnoshm.SingleThreadedExecutor()
    executor.add_node(sut)
    sut.spin_until = lambda predicate: executor.spin_until(predicate, TIMEOUT)
    yield sut
    executor.shutdown()
    sut.destroy_node()


def _camera_inputs(node, qos_profile=50):
    return {kind: Subscriber(node, msg_type, topic, qos_profile)
            for kind, (msg_type, topic) in TOPICS.items() if kind != "text"}


def _image_pairs(sut) -> list[tuple]:
    """Record each output as (image stamp, info stamp, image pixel, views read-only)."""
    got = []

    def on_pair(image, info):
        assert isinstance(image, ReceivedView) and isinstance(info, ReceivedView)
        assert not image.data.flags.writeable and len(image.data) == IMAGE_BYTES
        got.append((message_filters.stamp_of(image), message_filters.stamp_of(info),
                    int(image.data[0])))

    sut.registerCallback(on_pair)
    return got


def _held(topic: str) -> int:
    """Messages of ``topic`` this process's subscriptions hold, by the registry's read API."""
    found = agnoshm.context.get_runtime().registry.read_topic(topic)
    return sum(s.held for s in found.subscriptions)


def test_exact_sync_outputs_image_and_camera_info_published_by_another_process(node, start_camera):
    inputs = _camera_inputs(node)
    sut = TimeSynchronizer([inputs["image"], inputs["info"]], 10)
    pairs = _image_pairs(sut)
    camera = start_camera(inputs, node.spin_until)
    camera.send("image", 1 * SEC)
    camera.send("info", 1 * SEC)
    camera.send("image", 2 * SEC)  # its camera_info is lost
    camera.send("image", 3 * SEC)
    assert [r() is not None for r in camera.arrived["image"]] == [False, True, True]
    camera.send("info", 3 * SEC)
    camera.stop()
    gc.collect()
    assert pairs == [(t * SEC, t * SEC, image_byte(t * SEC)) for t in (1, 3)]
    assert not any(r() for refs in camera.arrived.values() for r in refs)  # image 2 went too
    assert _held(TOPICS["image"][1]) == 0 and _held(TOPICS["info"][1]) == 0


def test_approximate_sync_pairs_stamps_within_slop_across_processes(node, start_camera):
    inputs = _camera_inputs(node)
    sut = ApproximateTimeSynchronizer([inputs["image"], inputs["info"]], 10, slop=0.02)
    pairs = _image_pairs(sut)
    camera = start_camera(inputs, node.spin_until)
    camera.send("image", 1000 * MS)
    camera.send("info", 1015 * MS)   # 15 ms: a pair
    camera.send("image", 1100 * MS)
    camera.send("info", 1125 * MS)   # 25 ms > slop: image 1100 can never match now
    camera.send("image", 1130 * MS)  # 5 ms
    camera.send("image", 1200 * MS)
    camera.send("image", 1210 * MS)
    camera.send("info", 1212 * MS)   # 2 ms from 1210 beats 12 ms from 1200
    camera.stop()
    assert [(i // MS, c // MS) for i, c, _ in pairs] == [(1000, 1015), (1130, 1125), (1210, 1212)]
    assert [p for _, _, p in pairs] == [image_byte(s * MS) for s in (1000, 1130, 1210)]
    assert list(sut.queues[0]) == [1200 * MS]  # a later info may still come within 20 ms
    gc.collect()
    assert [r() is not None for r in camera.arrived["image"]] == [False] * 3 + [True, False]


def test_the_synchronizer_holds_at_most_queue_size_messages_and_releases_what_it_drops(
        node, start_camera):
    inputs = _camera_inputs(node)
    image_topic = TOPICS["image"][1]
    sut = ApproximateTimeSynchronizer([inputs["image"], inputs["info"]], 3, slop=0.01)
    pairs = _image_pairs(sut)
    camera = start_camera(inputs, node.spin_until)
    for t in range(10):  # no camera_info yet: the queue keeps the 3 newest images
        camera.send("image", t * SEC)
        gc.collect()
        assert sum(r() is not None for r in camera.arrived["image"]) == min(t + 1, 3)
    assert _held(image_topic) == 3
    camera.send("info", 9 * SEC)  # matches image 9; images 7 and 8 can never match now
    gc.collect()
    assert len(pairs) == 1 and not any(r() for r in camera.arrived["image"])
    assert _held(image_topic) == 0 and _held(TOPICS["info"][1]) == 0
    camera.stop()


def test_a_publisher_with_few_entries_keeps_publishing_while_the_synchronizer_waits(
        isolated_domain, start_camera, monkeypatch):
    # 4 live messages per publisher in this domain: a synchronizer that pinned more than
    # queue_size images would make the camera's publish raise LimitReachedError
    monkeypatch.setenv("AGNOSHM_MAX_ENTRIES", "4")
    sut_node = agnoshm.Node("sync")
    executor = agnoshm.SingleThreadedExecutor()
    executor.add_node(sut_node)
    inputs = _camera_inputs(sut_node, qos_profile=1)
    sut = ApproximateTimeSynchronizer([inputs["image"], inputs["info"]], 2, slop=0.01)
    pairs = _image_pairs(sut)
    camera = start_camera(inputs, lambda p: executor.spin_until(p, TIMEOUT), depth=1)
    for t in range(20):
        camera.send("image", t * SEC)
    camera.send("info", 19 * SEC)
    camera.stop()
    assert [(i // SEC, c // SEC) for i, c, _ in pairs] == [(19, 19)]
    executor.shutdown()
    sut_node.destroy_node()


def test_a_subscriber_of_a_headerless_type_is_refused_naming_topic_type_and_fix(node):
    text = Subscriber(node, "std_msgs/msg/String", "/text")
    image = Subscriber(node, "sensor_msgs/msg/Image", "/camera/image")
    with pytest.raises(HeaderlessMessageError) as info:
        ApproximateTimeSynchronizer([image, text], 10, 0.1)
    message = str(info.value)
    assert "input 1 (topic '/text')" in message and "std_msgs/msg/String" in message
    assert "allow_headerless=True" in message and "a type with a header" in message
    with pytest.raises(HeaderlessMessageError, match="std_msgs/msg/String"):
        TimeSynchronizer([text, image], 10)
    assert message_filters.has_stamp("sensor_msgs/msg/CameraInfo")
    assert not message_filters.has_stamp("std_msgs/msg/String")
    assert not message_filters.has_stamp("std_msgs/msg/Header")  # a header, but no header field


def test_allow_headerless_pairs_a_string_by_its_receive_time_across_processes(node, start_camera):
    inputs = {"image": Subscriber(node, *TOPICS["image"], 50),
              "text": Subscriber(node, *TOPICS["text"], 50)}
    # the image is stamped when the camera publishes it, the string when it arrives here:
    # a slop of an hour leaves any scheduling delay on this machine out of the test
    sut = ApproximateTimeSynchronizer([inputs["image"], inputs["text"]], 10, 3600.0,
                                      allow_headerless=True)
    got = []
    sut.registerCallback(lambda image, text: got.append((message_filters.stamp_of(image),
                                                         text.data)))
    camera = start_camera(inputs, node.spin_until)
    before = time.time_ns()
    stamp = camera.send("image", None)
    text_stamp = camera.send("text", 0)
    camera.stop()
    assert before <= stamp and got == [(stamp, str(text_stamp))]


def test_the_example_of_docs_message_filters_runs(isolated_domain, tmp_path):
    text = (Path(__file__).resolve().parents[1] / "docs" / "message_filters.md").read_text()
    example = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    (tmp_path / "example.py").write_text(example)
    result = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, env=child_env(),
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 5, result.stdout
    assert all(line == "image 640x480 (mean 128) with its camera_info, stamps 3.0 ms apart"
               for line in lines), result.stdout


# -- on an rclpy node ------------------------------------------------------------------------------

@pytest.fixture
def rclpy_node(isolated_domain, ros_domain_id):
    """An rclpy node on its own context, with ``spin_until(predicate)`` on an rclpy executor."""
    ros_packages.require("sensor_msgs.msg")
    import rclpy
    import rclpy.context
    import rclpy.executors

    context = rclpy.context.Context()
    rclpy.init(context=context, domain_id=ros_domain_id)
    sut = rclpy.create_node("sync", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(sut)

    def spin_until(predicate) -> bool:
        deadline = time.monotonic() + TIMEOUT  # a watchdog, not a timer
        while not predicate() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        return predicate()

    yield sut, spin_until
    executor.shutdown()
    sut.destroy_node()
    rclpy.try_shutdown(context=context)


@pytest.mark.ros
@ros_packages.needs("sensor_msgs.msg")
def test_approximate_sync_on_an_rclpy_node_gets_views_published_by_another_process(
        rclpy_node, start_camera):
    from sensor_msgs.msg import CameraInfo, Image

    from agnoshm.ros import RosSubscription

    node, spin_until = rclpy_node
    inputs = {"image": Subscriber(node, Image, TOPICS["image"][1], 50),
              "info": Subscriber(node, CameraInfo, TOPICS["info"][1], 50)}
    assert isinstance(inputs["image"].sub, RosSubscription)
    sut = ApproximateTimeSynchronizer([inputs["image"], inputs["info"]], 10, slop=0.02)
    pairs = _image_pairs(sut)
    camera = start_camera(inputs, spin_until)
    camera.send("image", 1000 * MS)
    camera.send("info", 1010 * MS)
    camera.send("image", 1100 * MS)
    camera.send("image", 1200 * MS)  # image 1100's info is lost
    camera.send("info", 1205 * MS)
    camera.stop()
    assert [(i // MS, c // MS) for i, c, _ in pairs] == [(1000, 1010), (1200, 1205)]
    gc.collect()
    assert not any(r() for refs in camera.arrived.values() for r in refs)
