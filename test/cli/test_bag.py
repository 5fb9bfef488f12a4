"""``agnoshm bag``: recordings read back by an independent reader; playback into topics."""

from __future__ import annotations

import os
import signal
import sys

import pytest
import yaml

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # for `import cli_workers`, here and in spawned children
    sys.path.append(_HERE)

import cli_workers as cw  # noqa: E402

rosbag2 = pytest.importorskip("rosbags.rosbag2")
typesys = pytest.importorskip("rosbags.typesys")

SPECS = [("/chatter", "std_msgs/msg/String", 10, "volatile"),
         ("/image", "sensor_msgs/msg/Image", 10, "volatile")]


def read_bag(path):
    """``(clock offset, {topic: [(timestamp, message)]})`` read with rosbags alone."""
    info = yaml.safe_load(open(os.path.join(path, "metadata.yaml")))["rosbag2_bagfile_information"]
    assert info["storage_identifier"] == "mcap"
    offset = int(info["custom_data"]["agnoshm.monotonic_to_realtime_ns"])
    typestore = typesys.get_typestore(typesys.Stores.ROS2_HUMBLE)
    found: dict[str, list] = {}
    with rosbag2.Reader(path) as reader:
        for connection, timestamp, raw in reader.messages():
            msg = typestore.deserialize_cdr(raw, connection.msgtype)
            found.setdefault(connection.topic, []).append((timestamp, msg))
    return offset, found


def _image_fields(msg) -> tuple:
    if isinstance(msg, dict):
        h = msg["header"]
        return (h["frame_id"], h["stamp"]["sec"], h["stamp"]["nanosec"], msg["height"],
                msg["width"], msg["encoding"], msg["step"], list(msg["data"]))
    return (msg.header.frame_id, msg.header.stamp.sec, msg.header.stamp.nanosec, msg.height,
            msg.width, msg.encoding, msg.step, msg.data.tolist())


def test_a_recording_holds_every_message_with_its_publish_time(isolated_domain, tmp_path):
    bag = str(tmp_path / "bag")
    with cw.Worker(cw.talker, "talker", SPECS) as talker, \
            cw.Worker(cw.listener, "listener", [(t, ty, 10) for t, ty, _d, _q in SPECS]) as ear:
        recorder = cw.start_cli("bag", "record", "/chatter", "image", "-o", bag, "--count", "10")
        cw.wait_subscribed(recorder, "/chatter", "/_agnoshm_bag_record")
        cw.wait_subscribed(recorder, "/image", "/_agnoshm_bag_record")
        talker.call("publish", "/chatter", [{"data": f"message {i}"} for i in range(5)])
        talker.call("publish", "/image", [cw.image(i, 600) for i in range(5)])
        code, out, err = cw.finish(recorder)
        assert code == 0, err
        assert out.startswith("recorded 10 messages (/chatter: 5, /image: 5) over ")
        assert f"recording /chatter, /image to {bag}\n" in err
        heard = {topic: ear.call("collect", topic, 5)[1] for topic, *_ in SPECS}
    assert [f for f in os.listdir(bag) if f.endswith(".mcap")]
    offset, found = read_bag(bag)
    assert [(t - offset, m.data) for t, m in found["/chatter"]] == \
        [(stamp, d["data"]) for _seq, stamp, d in heard["/chatter"]]
    assert [(t - offset, _image_fields(m)) for t, m in found["/image"]] == \
        [(stamp, _image_fields(d)) for _seq, stamp, d in heard["/image"]]
    assert _image_fields(found["/image"][3][1]) == _image_fields(cw.image(3, 600) | {
        "data": list(cw.image(3, 600)["data"])})


def test_ctrl_c_ends_a_recording_with_a_complete_bag(isolated_domain, tmp_path):
    from agnoshm.cli import snapshot

    bag = str(tmp_path / "bag")
    with cw.Worker(cw.talker, "talker", SPECS[:1]) as talker:
        recorder = cw.start_cli("bag", "record", "/chatter", "-o", bag)
        cw.wait_subscribed(recorder, "/chatter", "/_agnoshm_bag_record")
        talker.call("publish", "/chatter", [{"data": str(i)} for i in range(3)])

        def taken():
            subs = snapshot.read().topic("/chatter").subscriptions
            return any(s.received >= 3 for s in subs)

        cw.wait_until(taken, "the recorder to take 3 messages")
        recorder.send_signal(signal.SIGINT)
        code, out, err = cw.finish(recorder)
    assert code == 0, err
    assert "recorded 3 messages (/chatter: 3)" in out
    _offset, found = read_bag(bag)
    assert [m.data for _t, m in found["/chatter"]] == ["0", "1", "2"]


def _write_bag(path, messages):
    """A bag written by rosbags alone: ``messages`` is ``[(topic, type, timestamp, msg)]``."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    typestore = typesys.get_typestore(typesys.Stores.ROS2_HUMBLE)
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connections = {}
        for topic, msgtype, timestamp, msg in messages:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=typestore)
            writer.write(connections[topic], timestamp,
                         typestore.serialize_cdr(msg, msgtype))
    return typestore


def test_play_publishes_a_bags_messages_into_topics(isolated_domain, tmp_path, monkeypatch):
    monkeypatch.setenv("AGNOSHM_LINGER_SEC", str(cw.TIMEOUT))  # the player waits for the taker
    bag = str(tmp_path / "bag")
    typestore = typesys.get_typestore(typesys.Stores.ROS2_HUMBLE)
    String = typestore.types["std_msgs/msg/String"]
    start = 1_700_000_000_000_000_000
    _write_bag(bag, [("/played", "std_msgs/msg/String", start + i * 10_000_000, String(f"m{i}"))
                     for i in range(4)])
    with cw.Worker(cw.listener, "listener", [("/played", "std_msgs/msg/String", 10)]) as ear:
        ear.commands.put(("collect", "/played", 4))  # spins while the bag plays
        result = cw.run_cli("bag", "play", bag, "--rate", "4", "--wait-for-subscribers")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("published 4 messages (/played: 4) from ")
        heard = ear.out.get(timeout=cw.TIMEOUT)[1]
    assert [d["data"] for _seq, _stamp, d in heard] == ["m0", "m1", "m2", "m3"]
    assert [seq for seq, _stamp, _d in heard] == [1, 2, 3, 4]


def test_bag_info_and_bad_bags(isolated_domain, tmp_path):
    bag = str(tmp_path / "bag")
    typestore = typesys.get_typestore(typesys.Stores.ROS2_HUMBLE)
    String = typestore.types["std_msgs/msg/String"]
    _write_bag(bag, [("/a", "std_msgs/msg/String", 5, String("x"))])
    result = cw.run_cli("bag", "info", bag)
    assert result.returncode == 0, result.stderr
    assert "Storage: mcap, rosbag2 version 9" in result.stdout
    assert "  /a: std_msgs/msg/String (1 message)" in result.stdout
    result = cw.run_cli("bag", "record", "/a", "-o", bag, "--count", "1")
    assert result.returncode == 2 and "exists already" in result.stderr
    assert "recording" not in result.stderr  # the error alone, not a recording that never began
    result = cw.run_cli("bag", "play", str(tmp_path / "missing"))
    assert result.returncode == 2 and "cannot read bag" in result.stderr
    result = cw.run_cli("bag", "play", bag, "--topics", "/b")
    assert result.returncode == 2 and "holds none of ['/b']; its topics: /a" in result.stderr
    assert "Traceback" not in result.stderr
