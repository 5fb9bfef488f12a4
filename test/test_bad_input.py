"""Bad input raises a typed agnoshm error that names the cause and the fix, and breaks nothing.

Every test runs in its own domain; after it, the registry must still pass
``check_consistency()``.
"""

from __future__ import annotations

import numpy as np
import pytest

import agnoshm
from agnoshm import context
from agnoshm.errors import (
    AgnoshmError,
    InvalidHandleError,
    InvalidQoSError,
    InvalidTopicNameError,
    LimitReachedError,
    LoanError,
    MessageInvalidatedError,
    NotInitializedError,
    PoolExhaustedError,
)
from agnoshm.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from agnoshm.topic_name import MAX_TOPIC_NAME_LENGTH

MiB = 1 << 20


@pytest.fixture
def domain(isolated_domain, monkeypatch):
    """An isolated domain whose registry is checked after the test; publishers never linger."""
    monkeypatch.setenv("AGNOSHM_LINGER_SEC", "0")
    yield isolated_domain
    if agnoshm.ok():
        assert context.get_runtime().registry.check_consistency() == []


@pytest.fixture
def node(domain):
    sut = agnoshm.Node("bad_input")
    yield sut
    sut.destroy_node()


def assert_consistent() -> None:
    assert context.get_runtime().registry.check_consistency() == []


def assert_caret_under_the_bad_character(err: InvalidTopicNameError) -> None:
    *_, shown, caret = str(err).split("\n")
    column = caret.index("^")
    assert caret[:column].strip() == "" and caret[column + 1:] == ""
    assert shown == f" '{err.name}'"
    if err.index < len(err.name):
        assert shown[column] == err.name[err.index], (shown, caret)
    else:  # an empty name: the caret sits where the first character would be
        assert column == 2


# -- topic names -------------------------------------------------------------------------------------

BAD_TOPICS = [  # name as given, reason fragment, index in the expanded name
    ("", "empty", 0),
    ("/", "just '/'", 0),
    ("//", "'/'", 1),
    ("/a//b", "'//'", 3),
    ("/a/", "end with '/'", 2),
    ("1abc", "digit", 1),
    ("/a/1b", "digit", 3),
    ("/a b", "' '", 2),
    ("/a-b", "'-'", 2),
    ("foo~", "'~'", 4),
    ("/caf\u00e9", "'\u00e9'", 4),
    ("/" + "a" * MAX_TOPIC_NAME_LENGTH, f"longer than {MAX_TOPIC_NAME_LENGTH}", MAX_TOPIC_NAME_LENGTH),
]


@pytest.mark.parametrize("topic,reason,index", BAD_TOPICS)
def test_publisher_on_an_invalid_topic_name_raises_with_a_caret(node, topic, reason, index):
    with pytest.raises(InvalidTopicNameError) as info:
        node.create_publisher(agnoshm.Bytes, topic, 10)
    assert isinstance(info.value, ValueError) and isinstance(info.value, AgnoshmError)
    assert reason in str(info.value)
    assert info.value.index == index
    assert_caret_under_the_bad_character(info.value)
    assert node.publishers == []
    assert_consistent()


@pytest.mark.parametrize("topic,reason,index", BAD_TOPICS)
def test_subscription_on_an_invalid_topic_name_raises(node, topic, reason, index):
    with pytest.raises(InvalidTopicNameError, match=reason.replace("(", r"\(")):
        node.create_subscription(agnoshm.Bytes, topic, lambda msg: None, 10)
    with pytest.raises(InvalidTopicNameError):
        node.create_polling_subscription(agnoshm.Bytes, topic, 10)
    assert node.subscriptions == []


def test_topic_name_of_the_maximum_length_is_accepted(node):
    name = "/" + "a" * (MAX_TOPIC_NAME_LENGTH - 1)
    assert node.create_publisher(agnoshm.Bytes, name, 1).topic_name == name


@pytest.mark.parametrize("namespace,topic,expanded", [
    (None, "chatter", "/chatter"),
    (None, "~", "/bad_input"),
    (None, "~/private", "/bad_input/private"),
    ("/robot", "chatter", "/robot/chatter"),
    ("/robot", "~/private", "/robot/bad_input/private"),
    ("robot", "/absolute", "/absolute"),
])
def test_relative_and_tilde_names_expand_against_the_node(domain, namespace, topic, expanded):
    sut = agnoshm.Node("bad_input", namespace=namespace)
    try:
        assert sut.create_publisher(agnoshm.Bytes, topic, 1).topic_name == expanded
    finally:
        sut.destroy_node()


def test_non_string_topic_name_raises_type_error(node):
    with pytest.raises(TypeError):
        node.create_publisher(agnoshm.Bytes, b"/bytes", 10)


# -- QoS ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("qos", [
    0, -1,
    QoSProfile(depth=0),
    QoSProfile(history=HistoryPolicy.KEEP_ALL, depth=10),
    QoSProfile(depth=5, durability=DurabilityPolicy.UNKNOWN),
    QoSProfile(history=HistoryPolicy.UNKNOWN, depth=5),
], ids=["zero", "negative", "profile-depth-zero", "keep-all", "durability-unknown", "history-unknown"])
def test_qos_agnoshm_cannot_honour_raises_invalid_qos(node, qos):
    with pytest.raises(InvalidQoSError) as info:
        node.create_publisher(agnoshm.Bytes, "/qos", qos)
    assert isinstance(info.value, ValueError)
    with pytest.raises(InvalidQoSError):
        node.create_polling_subscription(agnoshm.Bytes, "/qos", qos)
    assert node.count_publishers("/qos") == 0 and node.count_subscribers("/qos") == 0


def test_keep_all_error_names_the_fix(node):
    with pytest.raises(InvalidQoSError, match="KEEP_LAST"):
        node.create_publisher(agnoshm.Bytes, "/qos", QoSProfile(history=HistoryPolicy.KEEP_ALL))


@pytest.mark.parametrize("qos", ["10", 1.5, None, True, object(), [10]],
                         ids=["str", "float", "none", "bool", "object", "list"])
def test_qos_that_is_neither_int_nor_profile_raises_type_error(node, qos):
    with pytest.raises(TypeError, match="QoSProfile or int"):
        node.create_publisher(agnoshm.Bytes, "/qos", qos)


def test_qos_profile_without_history_or_depth_raises_invalid_qos():
    with pytest.raises(InvalidQoSError, match="depth"):
        QoSProfile()


def test_every_reliability_is_accepted_as_reliable_within_depth(node):
    for reliability in (ReliabilityPolicy.BEST_EFFORT, ReliabilityPolicy.SYSTEM_DEFAULT):
        node.create_publisher(agnoshm.Bytes, "/qos", QoSProfile(depth=3, reliability=reliability))


# -- loaned messages ------------------------------------------------------------------------------------


def test_publishing_a_message_twice_raises_message_invalidated(node):
    pub = node.create_publisher(agnoshm.Bytes, "/twice", 4)
    msg = pub.borrow_loaned_message()
    msg.data = b"once"
    pub.publish(msg)
    with pytest.raises(MessageInvalidatedError, match="already published"):
        pub.publish(msg)
    assert pub._port.record.published == 1
    assert_consistent()


@pytest.mark.parametrize("use", [
    lambda msg: msg.data,
    lambda msg: msg.alloc("data", 8),
    lambda msg: setattr(msg, "data", b"again"),
], ids=["read", "alloc", "assign"])
def test_using_a_loaned_message_after_publish_raises_message_invalidated(node, use):
    pub = node.create_publisher(agnoshm.Bytes, "/used", 4)
    msg = pub.borrow_loaned_message()
    msg.data = b"payload"
    pub.publish(msg)
    with pytest.raises(MessageInvalidatedError, match="borrow a new one"):
        use(msg)
    assert "published" in repr(msg)
    assert_consistent()


def test_publishing_a_loan_of_another_publisher_raises_message_invalidated(node):
    first = node.create_publisher(agnoshm.Bytes, "/one", 4)
    second = node.create_publisher(agnoshm.Bytes, "/two", 4)
    msg = first.borrow_loaned_message()
    with pytest.raises(MessageInvalidatedError, match="another publisher"):
        second.publish(msg)
    first.publish(msg)  # still valid for its own publisher
    assert_consistent()


def test_loaned_message_rejects_an_unknown_field_and_a_bad_length(node):
    msg = node.create_publisher(agnoshm.Bytes, "/fields", 4).borrow_loaned_message()
    with pytest.raises(AttributeError, match="no field 'payload'"):
        msg.alloc("payload", 4)
    with pytest.raises(ValueError, match="non-negative int"):
        msg.alloc("data", -1)
    with pytest.raises(ValueError, match="uint8"):
        msg.data = np.array([1, 300])


# -- destroyed entities ------------------------------------------------------------------------------------


def test_publish_after_destroy_node_raises_invalid_handle(domain):
    sut = agnoshm.Node("doomed")
    pub = sut.create_publisher(agnoshm.Bytes, "/gone", 4)
    msg = pub.borrow_loaned_message()
    sut.destroy_node()
    with pytest.raises(InvalidHandleError, match="destroyed"):
        pub.publish(msg)
    with pytest.raises(InvalidHandleError):
        pub.publish(b"bytes")
    with pytest.raises(InvalidHandleError):
        pub.borrow_loaned_message()
    with pytest.raises(InvalidHandleError):
        pub.get_subscription_count()
    with pytest.raises(InvalidHandleError, match="create a new node"):
        sut.create_publisher(agnoshm.Bytes, "/gone", 4)
    assert sut.count_publishers("/gone") == 0
    assert_consistent()


def test_take_after_destroy_subscription_raises_invalid_handle(node):
    sub = node.create_polling_subscription(agnoshm.Bytes, "/gone", 4)
    assert node.destroy_subscription(sub) is True
    assert node.destroy_subscription(sub) is False
    with pytest.raises(InvalidHandleError):
        sub.take()
    assert sub.has_data() is False
    assert_consistent()


# -- resources -------------------------------------------------------------------------------------------


@pytest.fixture
def small_pool(monkeypatch):
    monkeypatch.setenv("AGNOSHM_POOL_SIZE", "4M")


def test_a_message_larger_than_the_pool_raises_pool_exhausted_naming_the_fix(domain, small_pool):
    sut = agnoshm.Node("big")
    pub = sut.create_publisher(agnoshm.Bytes, "/big", 64)
    msg = pub.borrow_loaned_message()
    with pytest.raises(PoolExhaustedError) as info:
        msg.alloc("data", 8 * MiB)
    assert isinstance(info.value, LoanError) and isinstance(info.value, MemoryError)
    assert "AGNOSHM_POOL_SIZE" in str(info.value)
    msg.data = b"small still fits"
    pub.publish(msg)
    assert_consistent()
    sut.destroy_node()


def test_a_reassignment_the_pool_cannot_hold_leaves_the_field_as_it_was(domain, small_pool):
    sut = agnoshm.Node("reassign")
    pub = sut.create_publisher("std_msgs/msg/String", "/re", 4)
    sub = sut.create_polling_subscription("std_msgs/msg/String", "/re", 4)
    msg = pub.borrow_loaned_message()
    msg.data = "kept"
    with pytest.raises(PoolExhaustedError):
        msg.data = "x" * (8 * MiB)
    other = pub.borrow_loaned_message()
    other.data = "evil"  # would reuse the block if the failed assignment had freed it
    assert msg.data == "kept"  # not a pointer to freed memory
    pub.publish(msg)
    assert sub.take().data == "kept"
    bytes_pub = sut.create_publisher(agnoshm.Bytes, "/re_bytes", 4)
    loaned = bytes_pub.borrow_loaned_message()
    loaned.alloc("data", 3)[:] = [1, 2, 3]
    with pytest.raises(PoolExhaustedError):
        loaned.alloc("data", 8 * MiB)
    bytes_pub.borrow_loaned_message().alloc("data", 3)[:] = [6, 6, 6]  # the same block size
    assert loaned.data.tolist() == [1, 2, 3]
    assert_consistent()
    sut.destroy_node()


def test_a_sequence_the_pool_runs_out_for_midway_keeps_its_old_value(domain, small_pool):
    """Strings and messages are written into new storage first: running out of room at the
    third element frees the first two and leaves the old elements in place."""
    sut = agnoshm.Node("midway")
    pub = sut.create_publisher("sensor_msgs/msg/JointState", "/joints", 4)
    sub = sut.create_polling_subscription("sensor_msgs/msg/JointState", "/joints", 4)
    path_pub = sut.create_publisher("nav_msgs/msg/Path", "/path", 4)
    allocator = agnoshm.context.get_runtime().allocator
    msg = pub.borrow_loaned_message()
    msg.name = ["kept", "too"]
    path = path_pub.borrow_loaned_message()
    path.poses = [{"header": {"frame_id": "kept"}}]
    used = allocator.used_bytes
    big = "x" * (MiB + 1)
    with pytest.raises(PoolExhaustedError):
        msg.name = ["a", big, big, big, big]
    with pytest.raises(PoolExhaustedError):
        path.poses = [{"header": {"frame_id": big}}] * 5
    assert allocator.used_bytes == used
    assert list(msg.name) == ["kept", "too"] and path.poses[0].header.frame_id == "kept"
    pub.publish(msg)
    assert sub.take().name == ("kept", "too")
    assert_consistent()
    sut.destroy_node()


def test_retained_messages_filling_the_pool_raise_pool_exhausted(domain, small_pool):
    sut = agnoshm.Node("hoarder")
    pub = sut.create_publisher(agnoshm.Bytes, "/hoard", 64)  # keeps 64 messages of 1 MiB
    published = 0
    with pytest.raises(PoolExhaustedError) as info:
        for _ in range(64):
            msg = pub.borrow_loaned_message()
            msg.alloc("data", MiB)[:] = 1
            pub.publish(msg)
            published += 1
    assert 1 <= published < 4
    assert "depth" in str(info.value)
    assert_consistent()
    sut.destroy_node()


def test_subscribers_holding_every_entry_raise_limit_reached(domain, monkeypatch):
    monkeypatch.setenv("AGNOSHM_MAX_ENTRIES", "4")
    sut = agnoshm.Node("held")
    pub = sut.create_publisher(agnoshm.Bytes, "/held", 2)
    sub = sut.create_polling_subscription(agnoshm.Bytes, "/held", 4)
    views = []
    for i in range(4):
        pub.publish(bytes([i]) * 16)
        views.append(sub.take())
    msg = pub.borrow_loaned_message()
    msg.data = b"fifth"
    with pytest.raises(LimitReachedError) as info:
        pub.publish(msg)
    assert "release received messages" in str(info.value) and "max_entries" in str(info.value)
    assert_consistent()
    assert [bytes(v.data[:1]) for v in views] == [b"\0", b"\1", b"\2", b"\3"], "held bytes changed"
    del views
    pub.publish(msg)  # the failed publish left the loan valid; released entries are reused
    assert bytes(sub.take().data) == b"fifth"
    assert_consistent()
    sut.destroy_node()


def test_depth_beyond_max_entries_raises_limit_reached(domain, monkeypatch):
    monkeypatch.setenv("AGNOSHM_MAX_ENTRIES", "4")
    sut = agnoshm.Node("deep")
    with pytest.raises(LimitReachedError, match="AGNOSHM_MAX_ENTRIES"):
        sut.create_publisher(agnoshm.Bytes, "/deep", 5)
    assert sut.count_publishers("/deep") == 0
    assert_consistent()
    sut.destroy_node()


# -- received messages ------------------------------------------------------------------------------------


def test_received_message_is_read_only(node):
    pub = node.create_publisher(agnoshm.Bytes, "/ro", 4)
    sub = node.create_polling_subscription(agnoshm.Bytes, "/ro", 4)
    pub.publish(b"read only")
    view = sub.take()
    with pytest.raises(AttributeError, match="read-only"):
        view.data = b"changed"
    with pytest.raises(AttributeError, match="read-only"):
        view.extra = 1
    with pytest.raises(ValueError, match="read-only"):
        view.data[0] = 0
    assert bytes(view.data) == b"read only"
    assert_consistent()


# -- after shutdown ----------------------------------------------------------------------------------------


def test_entities_and_messages_used_after_shutdown_raise_instead_of_crashing(domain):
    sut = agnoshm.Node("late")
    pub = sut.create_publisher(agnoshm.Bytes, "/late", 4)
    sub = sut.create_polling_subscription(agnoshm.Bytes, "/late", 4)
    pub.publish(b"before")
    view = sub.take()
    msg = pub.borrow_loaned_message()
    agnoshm.shutdown()
    assert not agnoshm.ok()
    with pytest.raises(InvalidHandleError):
        pub.publish(msg)
    with pytest.raises(InvalidHandleError):
        pub.borrow_loaned_message()
    with pytest.raises(InvalidHandleError):
        pub.get_subscription_count()
    with pytest.raises(InvalidHandleError):
        sub.take()
    assert sub.has_data() is False
    with pytest.raises(InvalidHandleError):
        sut.create_publisher(agnoshm.Bytes, "/late", 4)
    with pytest.raises(MessageInvalidatedError, match="shut down"):
        msg.data
    with pytest.raises(MessageInvalidatedError, match="shut down"):
        view.data
    assert "shut down" in repr(msg) and "shut down" in repr(view)
    with pytest.raises(NotInitializedError, match="agnoshm.init"):
        agnoshm.spin_once(sut, timeout_sec=0)
    sut.destroy_node()  # idempotent and harmless now


def test_a_new_node_after_shutdown_starts_agnoshm_again(domain):
    agnoshm.Node("first").destroy_node()
    agnoshm.shutdown()
    sut = agnoshm.Node("second")
    assert agnoshm.ok()
    sut.create_publisher(agnoshm.Bytes, "/again", 1).publish(b"works")
    assert_consistent()
    sut.destroy_node()


# -- node names ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,index", [
    ("", 0), ("1abc", 0), ("my-node", 2), ("a b", 1), ("n\u00f6de", 1), ("/talker", 0),
])
def test_node_with_an_invalid_name_raises(domain, name, index):
    with pytest.raises(InvalidTopicNameError) as info:
        agnoshm.Node(name)
    assert "node name" in str(info.value) and info.value.index == index
    assert_caret_under_the_bad_character(info.value)


def test_node_with_a_non_string_name_raises(domain):
    with pytest.raises((TypeError, ValueError)):
        agnoshm.Node(42)


@pytest.mark.parametrize("namespace", ["/bad ns", "/a/", "/1a", "/a//b"])
def test_node_with_an_invalid_namespace_raises(domain, namespace):
    with pytest.raises(InvalidTopicNameError):
        agnoshm.Node("ok", namespace=namespace)
