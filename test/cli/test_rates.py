"""``topic hz``'s missed count: gaps in each publisher's sequence numbers, on real views."""

from __future__ import annotations

import agnoshm
from agnoshm.cli.rates import _Window


def _take_all(sub, window: _Window) -> list[int]:
    seqs = []
    while (msg := sub.take()) is not None:
        window.add(msg)
        seqs.append(msg.seq)
    return seqs


def test_two_publishers_on_a_topic_miss_nothing(isolated_domain):
    node = agnoshm.Node("rates_two")
    a = node.create_publisher("std_msgs/msg/String", "/two", 10)
    b = node.create_publisher("std_msgs/msg/String", "/two", 10)
    sub = node.create_polling_subscription("std_msgs/msg/String", "/two", 10)
    window = _Window(10, None)
    for pub, n in ((a, 3), (b, 1), (a, 1)):  # a: 1 2 3, b: 1, a: 4
        for _ in range(n):
            pub.publish({"data": "x"})
    assert _take_all(sub, window) == [1, 2, 3, 1, 4]  # a topic-wide count would see a gap
    assert (window.received, window.missed) == (5, 0)


def test_a_publisher_that_outruns_the_depth_shows_missed_messages(isolated_domain):
    node = agnoshm.Node("rates_gap")
    pub = node.create_publisher("std_msgs/msg/String", "/gap", 10)
    sub = node.create_polling_subscription("std_msgs/msg/String", "/gap", 2)
    window = _Window(10, None)
    pub.publish({"data": "x"})
    assert _take_all(sub, window) == [1]
    for _ in range(4):
        pub.publish({"data": "x"})
    assert _take_all(sub, window) == [4, 5]  # depth 2 keeps the newest two
    assert (window.received, window.missed) == (3, 2)
