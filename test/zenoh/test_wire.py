"""rmw_zenoh's wire format as agnoshm.zenoh writes and reads it, checked against values taken
from rmw_zenoh's sources and from ROS 2 itself (not from this package's code)."""

from __future__ import annotations

import struct

import pytest

from agnoshm.zenoh import attachment, keyexpr, liveliness
from agnoshm.zenoh.config import load_options, parse_topic
from agnoshm.zenoh.errors import MalformedSampleError, ZenohConfigError, ZenohTopicNameError

pytest.importorskip("xxhash", reason="the zenoh extra (pip install 'agnoshm[zenoh]')")

# std_msgs/msg/String's RIHS01, as share/std_msgs/msg/String.json of ROS 2 Kilted has it
STRING_HASH = "RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18"
IMAGE_HASH = "RIHS01_d31d41a9a4c4bc8eae9be757b0beed306564f7526c88ea6a4588fb9582527d47"


def test_type_hashes_are_ros_2s():
    from agnoshm.msg import get_message

    assert get_message("std_msgs/msg/String").type_hash == STRING_HASH
    assert get_message("sensor_msgs/msg/Image").type_hash == IMAGE_HASH


def test_data_key_is_domain_topic_dds_type_and_hash():
    assert keyexpr.data_key(0, "/chatter", "std_msgs/msg/String", STRING_HASH) == \
        f"0/chatter/std_msgs::msg::dds_::String_/{STRING_HASH}"
    assert keyexpr.data_key(42, "/robot1/camera/image", "sensor_msgs/msg/Image", IMAGE_HASH) == \
        f"42/robot1/camera/image/sensor_msgs::msg::dds_::Image_/{IMAGE_HASH}"


def test_dds_type_names_go_both_ways():
    assert keyexpr.dds_type_name("geometry_msgs/msg/PoseStamped") == \
        "geometry_msgs::msg::dds_::PoseStamped_"
    assert keyexpr.ros_type_name("geometry_msgs::msg::dds_::PoseStamped_") == \
        "geometry_msgs/msg/PoseStamped"
    assert keyexpr.ros_type_name("not a type") is None


@pytest.mark.parametrize("name, char", [("/a/*", "*"), ("/a/**/b", "*"), ("/x$y", "$"),
                                        ("/q?x", "?"), ("/h#", "#"), ("/p%c", "%"), ("/@a", "@")])
def test_names_zenoh_cannot_carry_raise_a_typed_error_pointing_at_the_character(name, char):
    with pytest.raises(ZenohTopicNameError) as caught:
        keyexpr.check_topic_name(name)
    assert caught.value.index == name.index(char)
    assert isinstance(caught.value, ValueError)  # an InvalidTopicNameError, as agnoshm's


@pytest.mark.parametrize("name", ["/a//b", "/1x", "chatter", "/a/"])
def test_names_that_break_ros_rules_raise_the_same_typed_error(name):
    with pytest.raises(ZenohTopicNameError):
        keyexpr.check_topic_name(name)


def test_attachment_is_33_bytes_seq_stamp_0x10_gid():
    gid = bytes(range(16))
    data = attachment.encode(7, 1_700_000_000_123_456_789, gid)
    assert data == struct.pack("<qq", 7, 1_700_000_000_123_456_789) + b"\x10" + gid
    assert attachment.decode(data) == attachment.Attachment(7, 1_700_000_000_123_456_789, gid)


def test_the_labelled_attachment_of_jazzy_0_2_0_to_0_2_3_is_read():
    gid = bytes(range(16, 32))

    def text(s):
        return bytes([len(s)]) + s

    data = (text(b"sequence_number") + struct.pack("<q", 3) + text(b"source_timestamp") +
            struct.pack("<q", 99) + text(b"source_gid") + b"\x10" + gid)
    assert attachment.decode(data) == attachment.Attachment(3, 99, gid)
    with pytest.raises(MalformedSampleError):
        attachment.decode(data[:-1])


@pytest.mark.parametrize("data", [None, b"", b"\x00" * 32, b"\x00" * 34,
                                  b"\x00" * 16 + b"\x0f" + b"\x00" * 16, b"\x0fsequence_number"])
def test_malformed_attachments_raise_malformed_sample_error(data):
    with pytest.raises(MalformedSampleError):
        attachment.decode(data)


def test_qos_chunk_leaves_rmw_zenoh_defaults_empty():
    assert liveliness.QoS(depth=10).to_keyexpr() == "::,10:,:,:,,"
    assert liveliness.QoS(depth=42).to_keyexpr() == "::,:,:,:,,"
    assert liveliness.QoS(depth=1, transient_local=True).to_keyexpr() == ":1:,1:,:,:,,"
    parsed = liveliness.QoS.from_keyexpr("2:1:,5:,:,:,,")
    assert parsed == liveliness.QoS(depth=5, reliable=False, transient_local=True)
    assert liveliness.QoS.from_keyexpr("::,:,:,:,,") == liveliness.QoS()
    assert liveliness.QoS.from_keyexpr("garbage") is None


def test_tokens_follow_liveliness_utils_field_order():
    node = liveliness.Entity(0, "abc", 3, 3, liveliness.NODE, "talker")
    assert node.key == "@ros2_lv/0/abc/3/3/NN/%/%/talker"
    pub = liveliness.Entity(0, "abc", 3, 10, liveliness.PUBLISHER, "talker", "/robot",
                            topic="/robot/chatter", type_name="std_msgs::msg::dds_::String_",
                            type_hash=STRING_HASH, qos=liveliness.QoS(depth=7))
    assert pub.key == ("@ros2_lv/0/abc/3/10/MP/%/%robot/talker/%robot%chatter/"
                       f"std_msgs::msg::dds_::String_/{STRING_HASH}/::,7:,:,:,,")
    assert liveliness.parse(pub.key) == dataclass_with_text(pub)
    assert liveliness.parse(node.key) == node


def dataclass_with_text(entity):
    import dataclasses

    return dataclasses.replace(entity, qos_text=entity.qos.to_keyexpr())


@pytest.mark.parametrize("key", ["@ros2_lv/0/abc/3/3/XX/%/%/talker", "@ros2_lv/0/abc/3/3/NN/%/%",
                                 "@ros2_lv/x/abc/3/3/NN/%/%/talker", "other/0/abc/3/3/NN/%/%/t",
                                 "@ros2_lv/0/abc/3/4/MP/%/%/talker/%t/T_/H/nonsense"])
def test_keys_that_are_not_rmw_zenoh_tokens_parse_to_none(key):
    assert liveliness.parse(key) is None


def test_gid_is_xxh3_128_of_the_token_low_half_first():
    # computed by rmw_zenoh's own simplified_xxhash3.cpp (compiled from its sources),
    # printing the GID bytes as Entity::Entity copies them (low64, then high64)
    key = (f"@ros2_lv/0/abc/0/10/MP/%/%/talker/%chatter/std_msgs::msg::dds_::String_/"
           f"{STRING_HASH}/::,7:,:,:,,")
    assert liveliness.gid_of(key).hex() == "d264f42e2b268a1a93ae05f73ac1e6da"
    assert liveliness.gid_of("x" * 300).hex() == "5435c87d60b4d1a57abcd72aea375212"


def test_topic_specs_and_options():
    assert parse_topic("/cam:sensor_msgs/msg/Image").type_name == "sensor_msgs/msg/Image"
    assert parse_topic("chatter").name == "/chatter"
    options = load_options(topics=["/a"], default_domain=5)
    assert options.connect == ("tcp/localhost:7447",) and options.domain == 5
    options = load_options(topics=["/a"], listen=["tcp/127.0.0.1:7448"])
    assert options.connect == () and options.listen == ("tcp/127.0.0.1:7448",)
    with pytest.raises(ZenohConfigError, match="nothing to bridge"):
        load_options()
    with pytest.raises(ZenohConfigError, match="pkg/msg/Name"):
        parse_topic("/a:String")
    with pytest.raises(ZenohConfigError, match="client only connects"):
        load_options(topics=["/a"], mode="client", listen=["tcp/127.0.0.1:7448"])


def test_the_yaml_file_in_config_loads(tmp_path):
    from pathlib import Path

    options = load_options(str(Path(__file__).resolve().parents[2] / "config" /
                               "zenoh_bridge.yaml"))
    assert options.topics and options.mode in ("peer", "client")
    bad = tmp_path / "bad.yaml"
    bad.write_text("topics: [/a]\nrouter: x\n")
    with pytest.raises(ZenohConfigError, match="unknown key"):
        load_options(str(bad))


def test_on_demand_wants_a_publisher_on_one_side_and_a_subscription_on_the_other():
    from agnoshm.zenoh.demand import LocalTopic, remote_transient_local, wanted

    def remote(kind, node, transient_local=False):
        return liveliness.Entity(0, "abc", 1, 2, kind, node, topic="/t",
                                 type_name="std_msgs::msg::dds_::String_", type_hash="RIHS01_x",
                                 qos=liveliness.QoS(transient_local=transient_local))

    pub, sub = liveliness.PUBLISHER, liveliness.SUBSCRIPTION
    local_pub = LocalTopic("/t", "std_msgs/msg/String", "RIHS01_x", (("/talker", False),))
    local_sub = LocalTopic("/t", "std_msgs/msg/String", "RIHS01_x", (), ("/listener",))
    assert wanted(local_pub, [remote(sub, "listener")])
    assert wanted(local_sub, [remote(pub, "talker")])
    assert not wanted(local_pub, [remote(pub, "talker")])  # publishers on both sides only
    assert not wanted(None, [remote(pub, "talker"), remote(sub, "listener")])  # not ours
    # another bridge's relay (its node is agnoshm_zenoh_bridge*) is no demand
    assert not wanted(local_pub, [remote(sub, "agnoshm_zenoh_bridge")])
    assert not wanted(local_sub, [remote(pub, "agnoshm_zenoh_bridge_2")])
    assert remote_transient_local([remote(pub, "a", True), remote(sub, "b")])
    assert not remote_transient_local([remote(pub, "a", True), remote(pub, "b")])
    assert not remote_transient_local([remote(pub, "agnoshm_zenoh_bridge", True)])


def test_on_demand_needs_no_topic_and_is_a_bool(tmp_path):
    options = load_options(None, on_demand=True)
    assert options.on_demand and options.topics == ()
    config = tmp_path / "bridge.yaml"
    config.write_text("on_demand: true\n")
    assert load_options(str(config)).on_demand
    config.write_text("on_demand: yes please\n")
    with pytest.raises(ZenohConfigError, match="on_demand must be true or false"):
        load_options(str(config))
    with pytest.raises(ZenohConfigError, match="--on-demand"):
        load_options(None)


def test_a_flood_of_invented_writer_gids_does_not_grow_a_relay():
    """Gap counting remembers at most MAX_REMOTE_WRITERS remote writers: a peer that invents
    a GID per sample cannot grow the bridge's memory, and a real writer's gaps still count."""
    from agnoshm.zenoh import relay as relay_module
    from agnoshm.zenoh.attachment import Attachment

    relay = relay_module.TopicRelay.__new__(relay_module.TopicRelay)  # only its gap counting
    relay._last_seen, relay.stats = {}, relay_module.RelayStats()
    real = b"\x01" * 16
    relay._note_sequence(Attachment(1, 0, real))
    relay._note_sequence(Attachment(3, 0, real))
    assert relay.stats.gaps == 1
    for i in range(3 * relay_module.MAX_REMOTE_WRITERS):
        relay._note_sequence(Attachment(1, 0, i.to_bytes(16, "little")))
    assert len(relay._last_seen) == relay_module.MAX_REMOTE_WRITERS
    assert relay.stats.gaps == 1, "a first sample of a writer is no gap"
