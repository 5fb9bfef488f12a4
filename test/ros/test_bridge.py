"""The agnoshm ⇄ ROS 2 bridge (the ``agnoshm.ros.bridge`` package): its decisions (here,
with real agnoshm registries) and, where ROS 2 is installed, real bridging in both directions
without echoes.  Everything is reached through the package, as users and ``setup.py`` do."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from types import SimpleNamespace

import pytest

import agnoshm
import ros_packages
from sources import child_cwd, child_env
from agnoshm.qos import DurabilityPolicy, QoSProfile
from agnoshm.ros import bridge as sut
from agnoshm.ros.bridge import cli, relay
from agnoshm.ros.bridge import (
    BOTH,
    TO_AGNOSHM,
    TO_ROS,
    AgnoshmTopic,
    BridgeConfigError,
    EchoFilter,
    RosTopic,
    TopicConfig,
)

STRING = "std_msgs/msg/String"
ROS_PACKAGES = ["ament_index_python", "rclpy", "rosidl_parser", "rosidl_runtime_py", "std_msgs"]

_HIDE_ROS = """
import importlib.abc, sys
class NoRos(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {ros!r}:
            raise ImportError(f"No module named {{name!r}} (this test hides ROS)")
sys.meta_path.insert(0, NoRos())
"""


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    env = child_env(base={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    return subprocess.run([sys.executable, "-c", code, *args], cwd=child_cwd(), env=env,
                          capture_output=True, text=True, timeout=120)


def _hidden_ros(code: str) -> str:
    return _HIDE_ROS.format(ros=ROS_PACKAGES) + textwrap.dedent(code)


# -- without ROS ---------------------------------------------------------------------------------

def test_main_without_rclpy_says_it_needs_ros_2_and_returns_2(monkeypatch, capsys):
    for name in ("rclpy", "rclpy.executors"):
        monkeypatch.setitem(sys.modules, name, None)  # `import rclpy` raises ImportError
    assert sut.main([]) == 2
    err = capsys.readouterr().err
    assert "needs ROS 2" in err and "source" in err and "Traceback" not in err


def test_python_m_bridge_without_ros_exits_2_without_a_traceback():
    result = _python(_hidden_ros("""
        import runpy, sys
        sys.argv = ["agnoshm_bridge", "--topic", "/chatter"]
        runpy.run_module("agnoshm.ros.bridge", run_name="__main__", alter_sys=True)
    """))
    assert result.returncode == 2, result.stderr
    assert "needs ROS 2" in result.stderr
    assert "Traceback" not in result.stderr


def test_python_m_bridge_exits_2_when_ros_2_is_not_usable_here():
    """Without rclpy, it says that it needs ROS 2; with rclpy, ROS 2 failing to start
    (here a malformed --ros-args, which rcl refuses in rclpy.init) is exit 2 as well."""
    rclpy_missing = "rclpy" in ros_packages.missing()
    env = child_env(base={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    ros_args = [] if rclpy_missing else ["--ros-args", "-r"]
    result = subprocess.run([sys.executable, "-m", "agnoshm.ros.bridge", *ros_args],
                            cwd=child_cwd(), env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert ("needs ROS 2" if rclpy_missing else "ROS 2 did not start") in result.stderr


def test_help_works_without_ros(capsys):
    assert sut.main(["--help"]) == 0
    assert "--topic" in capsys.readouterr().out


def test_bad_arguments_exit_2_before_ros_is_needed(capsys):
    assert sut.main(["--topic", "/x:sideways"]) == 2
    assert "direction of /x must be one of" in capsys.readouterr().err
    assert sut.main(["--no-on-demand"]) == 2
    assert "nothing to bridge" in capsys.readouterr().err
    assert sut.main(["--node-name", "relay"]) == 2


def test_ros_arguments_are_split_off():
    own, ros = sut.split_ros_args(["--topic", "/a", "--ros-args", "-r", "__ns:=/r", "--", "--period",
                                   "2", "--ros-args", "-p", "x:=1"])
    assert own == ["--topic", "/a", "--period", "2"]
    assert ros == ["--ros-args", "-r", "__ns:=/r", "--ros-args", "-p", "x:=1"]


def test_the_package_keeps_every_name_of_the_former_bridge_module():
    for name in sut.__all__:
        assert getattr(sut, name) is not None, name
    assert sut.main is cli.main  # setup.py: agnoshm_bridge = agnoshm.ros.bridge:main


# -- configuration ---------------------------------------------------------------------------------

def test_topic_spec_gives_name_direction_and_type():
    assert sut.parse_topic("/chatter") == TopicConfig("/chatter", BOTH)
    assert sut.parse_topic("/img:to_ros:sensor_msgs/msg/Image") == \
        TopicConfig("/img", TO_ROS, "sensor_msgs/msg/Image")
    assert sut.parse_topic("cmd:to_agnoshm") == TopicConfig("cmd", TO_AGNOSHM)


@pytest.mark.parametrize("spec, message", [
    (":to_ros", "needs a name"),
    ("/x:up", "must be one of"),
    ("/x:both:String", "pkg/msg/Name"),
    ("/bad name", "invalid topic name"),
    ("/x/:to_ros", "must not end with"),
])
def test_bad_topic_spec_names_the_problem(spec, message):
    with pytest.raises(BridgeConfigError, match=message):
        sut.parse_topic(spec)


def test_yaml_file_and_arguments_merge(tmp_path):
    path = tmp_path / "bridge.yaml"
    path.write_text(textwrap.dedent("""
        on_demand: false
        period: 0.5
        topics:
          - /chatter
          - {name: /image, direction: to_ros, type: sensor_msgs/msg/Image, depth: 5}
    """))
    options = sut.load_options(str(path), ["/chatter:to_agnoshm"])
    assert options.on_demand is False and options.period_sec == 0.5
    assert set(options.topics) == {TopicConfig("/chatter", TO_AGNOSHM),
                                   TopicConfig("/image", TO_ROS, "sensor_msgs/msg/Image", 5)}
    assert sut.load_options(str(path), on_demand=True, period_sec=2).period_sec == 2


@pytest.mark.parametrize("text, message", [
    ("topic: [/a]", "unknown key"),
    ("topics: /a", "must be a list"),
    ("topics: [{name: /a, depth: 0}]", "at least 1"),
    ("topics: [{name: /a, qos: 1}]", "unknown topic key"),
    ("period: -1\ntopics: [/a]", "period"),
    ("- /a", "must hold a mapping"),
])
def test_bad_yaml_names_the_problem(tmp_path, text, message):
    path = tmp_path / "bridge.yaml"
    path.write_text(text)
    with pytest.raises(BridgeConfigError, match=message):
        sut.load_options(str(path))


def test_missing_yaml_file_is_a_config_error(tmp_path):
    with pytest.raises(BridgeConfigError, match="cannot read"):
        sut.load_options(str(tmp_path / "none.yaml"))


# -- the agnoshm side, from a real registry -----------------------------------------------------------

def _registry():
    return agnoshm.context.get_runtime().registry


def test_registry_snapshot_leaves_out_bridge_endpoints(isolated_domain):
    talker, bridge, listener = agnoshm.Node("talker"), agnoshm.Node("agnoshm_bridge"), \
        agnoshm.Node("listener", namespace="/robot")
    latched = QoSProfile(depth=4, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    talker.create_publisher(STRING, "/a", latched)
    bridge.create_polling_subscription(STRING, "/a", 30)  # the bridge's own: not counted
    bridge.create_publisher(STRING, "/b", 10)
    listener.create_polling_subscription(STRING, "/b", 7)
    sut_topics = sut.agnoshm_topics(_registry(), "/agnoshm_bridge")
    a, b = sut_topics["/a"], sut_topics["/b"]
    assert (a.publishers, a.subscriptions, a.depth, a.publishers_transient_local) == (1, 0, 4, True)
    assert (b.publishers, b.subscriptions, b.depth, b.publishers_transient_local) == (0, 1, 7, False)
    assert a.type_name == STRING and a.type_hash.startswith("RIHS01_")


def test_another_bridge_counts_as_a_bridge_but_other_nodes_do_not():
    assert sut.is_bridge_node("/agnoshm_bridge")
    assert sut.is_bridge_node("/robot/agnoshm_bridge_2")
    assert sut.is_bridge_node("/relay", own_name="/relay")
    assert not sut.is_bridge_node("/agnoshm_bridge/talker")
    assert not sut.is_bridge_node("/talker", own_name="/agnoshm_bridge")


def test_messages_from_a_bridge_publisher_are_recognised(isolated_domain):
    talker, bridge = agnoshm.Node("talker"), agnoshm.Node("agnoshm_bridge")
    from_talker = talker.create_publisher(STRING, "/t", 10)
    from_bridge = bridge.create_publisher(STRING, "/t", 10)
    sub = bridge.create_polling_subscription(STRING, "/t", 10)
    from_talker.publish({"data": "agnoshm"})
    from_bridge.publish({"data": "came from ROS"})
    from_talker.publish({"data": "agnoshm again"})
    decisions = []
    while (view := sub.take()) is not None:
        decisions.append((view.data, sut.is_bridged_message(view, _registry(), "/agnoshm_bridge")))
    assert decisions == [("agnoshm", False), ("came from ROS", True), ("agnoshm again", False)]


# -- the ROS side, from plain data ------------------------------------------------------------------

def _info(node, ns="/", reliability=1, durability=2, type_hash=None):
    return SimpleNamespace(node_name=node, node_namespace=ns, topic_type_hash=type_hash,
                           qos_profile=SimpleNamespace(reliability=reliability, durability=durability))


def test_ros_snapshot_leaves_out_the_bridge_node():
    own = ("agnoshm_bridge", "/")
    sut_topic = sut.ros_topic("/a", [STRING],
                              [_info("agnoshm_bridge"), _info("cam", reliability=2, durability=1,
                                                              type_hash="RIHS01_ab")],
                              [_info("agnoshm_bridge", ""), _info("echo")], own)
    assert sut_topic == RosTopic("/a", (STRING,), 1, 1, "RIHS01_ab", True, True)
    only_own = sut.ros_topic("/a", [STRING], [_info("agnoshm_bridge")], [], own)
    assert (only_own.publishers, only_own.publishers_transient_local) == (0, False)
    assert sut.ros_topic("/a", [STRING], [_info("agnoshm_bridge", "/x")], [], own).publishers == 1


def _a(name="/t", pubs=0, subs=0, type_name=STRING, type_hash="RIHS01_aa", **kw):
    return {name: AgnoshmTopic(name, type_name, type_hash, pubs, subs, **kw)}


def _r(name="/t", pubs=0, subs=0, types=(STRING,), **kw):
    return {name: RosTopic(name, tuple(types), pubs, subs, **kw)}


@pytest.mark.parametrize("a_pubs, a_subs, r_pubs, r_subs, direction", [
    (1, 0, 0, 1, TO_ROS),
    (0, 1, 1, 0, TO_AGNOSHM),
    (1, 1, 1, 1, BOTH),
    (1, 0, 1, 0, None),  # publishers only: nobody to deliver to
    (0, 1, 0, 1, None),
    (1, 1, 0, 0, None),  # agnoshm talks to itself: no bridge
])
def test_on_demand_bridges_only_towards_a_subscriber(a_pubs, a_subs, r_pubs, r_subs, direction):
    routes, skipped = sut.plan(_a(pubs=a_pubs, subs=a_subs), _r(pubs=r_pubs, subs=r_subs))
    assert skipped == {}
    assert (routes["/t"].direction if routes else None) == direction


def test_topics_on_one_side_only_are_not_bridged():
    routes, _ = sut.plan(_a("/only_agnoshm", pubs=1), _r("/only_ros", subs=1))
    assert routes == {}


def test_on_demand_off_bridges_only_configured_topics():
    routes, _ = sut.plan(_a(pubs=1), _r(subs=1), on_demand=False)
    assert routes == {}
    routes, _ = sut.plan(_a(pubs=1), _r(subs=1), on_demand=False,
                         configured=[TopicConfig("/t", TO_ROS)])
    assert routes["/t"].direction == TO_ROS


def test_configured_topic_is_bridged_without_peers_and_gains_demanded_directions():
    routes, _ = sut.plan({}, {}, configured=[TopicConfig("/cfg", TO_ROS, STRING, 3)])
    assert routes["/cfg"] == sut.Route("/cfg", STRING, TO_ROS, 3)
    routes, _ = sut.plan(_a(subs=1), _r(pubs=1), configured=[TopicConfig("/t", TO_ROS)])
    assert routes["/t"].direction == BOTH


def test_configured_topic_without_a_known_type_waits():
    routes, skipped = sut.plan({}, {}, configured=[TopicConfig("/cfg")])
    assert routes == {} and "type unknown" in skipped["/cfg"]
    routes, _ = sut.plan({}, _r("/cfg", pubs=1), configured=[TopicConfig("/cfg")])
    assert routes["/cfg"].type_name == STRING  # learnt from the ROS graph


def test_type_mismatches_are_skipped_with_the_reason():
    _, skipped = sut.plan(_a(pubs=1), _r(subs=1, types=("std_msgs/msg/Int32",)))
    assert "ROS 2 carries std_msgs/msg/Int32" in skipped["/t"]
    _, skipped = sut.plan(_a(pubs=1, type_name="agnoshm/msg/Bytes"), _r(subs=1))
    assert "agnoshm/msg/Bytes" in skipped["/t"]
    _, skipped = sut.plan(_a(pubs=1, type_hash="RIHS01_aa"), _r(subs=1, type_hash="RIHS01_bb"))
    assert "use the same message definitions" in skipped["/t"]
    routes, _ = sut.plan(_a(pubs=1), _r(subs=1, type_hash=None))  # Humble: no hash to compare
    assert "/t" in routes
    _, skipped = sut.plan(_a(pubs=1), {}, configured=[TopicConfig("/t", TO_ROS, "std_msgs/msg/Int32")])
    assert "agnoshm carries" in skipped["/t"]


def test_routes_carry_depth_and_qos_of_the_sources():
    routes, _ = sut.plan(_a(pubs=1, subs=1, depth=7, publishers_transient_local=True),
                         _r(pubs=1, subs=1, publishers_best_effort=True))
    route = routes["/t"]
    assert (route.depth, route.transient_local_to_ros, route.transient_local_to_agnoshm,
            route.best_effort_from_ros) == (7, True, False, True)
    assert route.key == (STRING, BOTH) and route.to_ros and route.to_agnoshm


def test_the_bridges_own_endpoints_never_create_demand(isolated_domain):
    """After bridging /t to ROS, the bridge holds an agnoshm subscription and a ROS
    publisher on /t; with them left out, no demand for the other direction appears."""
    talker, bridge = agnoshm.Node("talker"), agnoshm.Node("agnoshm_bridge")
    talker.create_publisher(STRING, "/t", 10)
    bridge.create_polling_subscription(STRING, "/t", 10)  # the bridge's to_ros source
    own = ("agnoshm_bridge", "/")
    ros = {"/t": sut.ros_topic("/t", [STRING], [_info("agnoshm_bridge")], [_info("echo")], own)}
    routes, _ = sut.plan(sut.agnoshm_topics(_registry(), "/agnoshm_bridge"), ros)
    assert routes["/t"].direction == TO_ROS
    ros = {"/t": sut.ros_topic("/t", [STRING], [_info("agnoshm_bridge")], [], own)}  # echo left
    routes, _ = sut.plan(sut.agnoshm_topics(_registry(), "/agnoshm_bridge"), ros)
    assert routes == {}


# -- remap rules of the bridge node ---------------------------------------------------------------

class _RemappingNode:
    """What :class:`Bridge` uses of an rclpy node, on a graph with one ROS subscriber per topic.

    ``resolve_topic_name`` does what rcl's ``rcl_node_resolve_name`` does: expand, then
    replace the name by the first rule whose (expanded) match equals it, absolute
    names included.  rclpy creates every endpoint on such a resolved name.
    """

    def __init__(self, rules: dict[str, str], ros_topics=()):
        self.rules = rules
        self.ros_topics = list(ros_topics)

    def get_fully_qualified_name(self):
        return "/agnoshm_bridge"

    def get_name(self):
        return "agnoshm_bridge"

    def get_namespace(self):
        return "/"

    def resolve_topic_name(self, topic):
        expanded = topic if topic.startswith("/") else "/" + topic
        return self.rules.get(expanded, expanded)

    def get_topic_names_and_types(self):
        return [(name, [STRING]) for name in self.ros_topics]

    # rclpy (Humble to Kilted) remaps the name given to get_*_info_by_topic with the node's
    # rules, and not the one given to count_*
    def get_publishers_info_by_topic(self, name):
        return []

    def get_subscriptions_info_by_topic(self, name):
        return [_info("echo")] if self.resolve_topic_name(name) in self.ros_topics else []

    def count_publishers(self, name):
        return 0

    def count_subscribers(self, name):
        return int(name in self.ros_topics)


@pytest.fixture
def started(monkeypatch):
    """The routes the bridge starts (their relays replaced by records: no rclpy needed)."""
    routes = []

    def start(bridge, route):
        routes.append(route.topic)
        return SimpleNamespace(route=route, close=lambda: None, count_relayed=lambda ros: None)

    monkeypatch.setattr(relay, "_TopicBridge", start)
    return routes


def test_a_topic_the_bridge_nodes_remap_rules_rename_is_not_relayed(isolated_domain, started):
    """The relay's endpoints would be renamed too: on-demand /a would run on /b. /a's demand
    is still seen (rclpy's info queries would ask about /b) and the reason reported."""
    talker = agnoshm.Node("talker")
    talker.create_publisher(STRING, "/a", 10)
    talker.create_publisher(STRING, "/c", 10)
    sut_bridge = sut.Bridge(_RemappingNode({"/a": "/b"}, ["/a", "/c"]))
    sut_bridge.update()
    assert started == ["/c"] and set(sut_bridge.routes) == {"/c"}
    assert "rename /a to /b" in sut_bridge._reported["/a"]


def test_configured_names_are_remapped_once(isolated_domain, started):
    node = _RemappingNode({"/a": "/b", "/b": "/c", "/x": "/y"})
    sut_bridge = sut.Bridge(node, topics=[TopicConfig("a", TO_ROS, STRING),
                                          TopicConfig("x", TO_ROS, STRING)], on_demand=False)
    assert [t.name for t in sut_bridge.configured] == ["/b", "/y"]  # as a ROS node's `a`, `x`
    sut_bridge.update()
    assert started == ["/y"]  # /b would land on /c: a second remap
    assert "rename /b to /c" in sut_bridge._reported["/b"]


# -- echo filter --------------------------------------------------------------------------------------

class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_echo_filter_recognises_each_own_publication_once():
    sut_filter = EchoFilter()
    sut_filter.note(b"one")
    sut_filter.note(b"one")
    assert not sut_filter.is_echo(b"two")
    assert sut_filter.is_echo(b"one") and sut_filter.is_echo(b"one")
    assert not sut_filter.is_echo(b"one")
    assert len(sut_filter) == 0


def test_identical_foreign_message_passes_exactly_once():
    sut_filter = EchoFilter()
    sut_filter.note(b"same")  # the bridge republished an agnoshm message to ROS
    passed = [not sut_filter.is_echo(b"same"),  # a ROS talker's identical message arrives first
              not sut_filter.is_echo(b"same")]  # then the bridge's own copy
    assert passed.count(True) == 1


def test_notes_expire_and_are_bounded():
    clock = _Clock()
    sut_filter = EchoFilter(max_age_sec=5, max_entries=3, clock=clock)
    sut_filter.note(b"lost")
    clock.now = 6
    assert not sut_filter.is_echo(b"lost")  # its copy never came back: forgotten
    for i in range(5):
        sut_filter.note(b"%d" % i)
    assert len(sut_filter) == 3 and not sut_filter.is_echo(b"0") and sut_filter.is_echo(b"4")
    sut_filter.note(b"x")
    assert sut_filter.is_echo(b"x")
    clock.now = 20  # expiry of a consumed note leaves a later identical note alone
    sut_filter.note(b"x")
    clock.now = 24
    assert sut_filter.is_echo(b"x")


# -- with ROS 2 ----------------------------------------------------------------------------------------

@pytest.fixture
def ros(isolated_domain, ros_domain_id):
    """rclpy with its own context and a multi-threaded executor spinning in a thread."""
    ros_packages.require("std_msgs.msg")
    import rclpy
    import rclpy.context
    import rclpy.executors

    context = rclpy.context.Context()
    rclpy.init(context=context, domain_id=ros_domain_id)
    executor = rclpy.executors.MultiThreadedExecutor(context=context)
    nodes = []

    def node(name, **kwargs):
        created = rclpy.create_node(name, context=context, **kwargs)
        nodes.append(created)
        executor.add_node(created)
        return created

    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    yield SimpleNamespace(rclpy=rclpy, context=context, node=node, executor=executor)
    executor.shutdown()
    spinner.join(30)
    for created in nodes:
        try:
            created.destroy_node()
        except RuntimeError:  # destroyed by the test already
            pass
    rclpy.try_shutdown(context=context)


def _wait(predicate, what, timeout=20.0, step=None):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        if step is not None:
            step()
        time.sleep(0.02)


@pytest.mark.ros
def test_agnoshm_publisher_reaches_a_ros_subscriber_through_the_bridge(ros):
    from std_msgs.msg import String

    bridge_node = ros.node("agnoshm_bridge")
    sut_bridge = sut.Bridge(bridge_node)
    received = []
    ros_listener = ros.node("ros_listener")
    ros_listener.create_subscription(String, "/chatter", lambda m: received.append(m.data), 10)
    talker = agnoshm.Node("talker")
    pub = talker.create_publisher(String, "/chatter", 10)
    _wait(lambda: "/chatter" in sut_bridge.routes, "the bridge to start", step=sut_bridge.update)
    assert sut_bridge.routes["/chatter"].route.direction == TO_ROS
    ros_pub = sut_bridge.routes["/chatter"]._ros_pub
    _wait(lambda: ros_pub.get_subscription_count() >= 1, "discovery")
    for i in range(5):
        pub.publish(String(data=f"hello {i}"))
        time.sleep(0.05)
    _wait(lambda: len(received) >= 5, "messages on the ROS side")
    assert received == [f"hello {i}" for i in range(5)]
    sut_bridge.close()


@pytest.mark.ros
def test_ros_publisher_reaches_an_agnoshm_subscription_through_the_bridge(ros):
    from std_msgs.msg import String

    bridge_node = ros.node("agnoshm_bridge")
    sut_bridge = sut.Bridge(bridge_node)
    listener = agnoshm.Node("listener")
    sub = listener.create_polling_subscription(String, "/cmd", 10)
    ros_talker = ros.node("ros_talker")
    ros_pub = ros_talker.create_publisher(String, "/cmd", 10)
    _wait(lambda: "/cmd" in sut_bridge.routes, "the bridge to start", step=sut_bridge.update)
    assert sut_bridge.routes["/cmd"].route.direction == TO_AGNOSHM
    _wait(lambda: ros_pub.get_subscription_count() >= 1, "discovery")
    got = []
    for i in range(5):
        ros_pub.publish(String(data=f"cmd {i}"))
        time.sleep(0.05)
    _wait(lambda: got.extend(v.data for v in iter(sub.take, None)) or len(got) >= 5, "messages")
    assert got == [f"cmd {i}" for i in range(5)]
    sut_bridge.close()


@pytest.mark.ros
def test_both_directions_at_once_deliver_each_message_once(ros):
    """agnoshm and ROS talkers and listeners on one topic: every listener gets every
    message exactly once; nothing comes back to the side it came from."""
    from std_msgs.msg import String

    bridge_node = ros.node("agnoshm_bridge")
    sut_bridge = sut.Bridge(bridge_node)
    talker, listener = agnoshm.Node("talker"), agnoshm.Node("listener")
    agnoshm_pub = talker.create_publisher(String, "/both", 10)
    agnoshm_sub = listener.create_polling_subscription(String, "/both", 50)
    ros_got = []
    ros_node = ros.node("ros_peer")
    ros_pub = ros_node.create_publisher(String, "/both", 10)
    ros_node.create_subscription(String, "/both", lambda m: ros_got.append(m.data), 50)
    _wait(lambda: "/both" in sut_bridge.routes, "the bridge to start", step=sut_bridge.update)
    assert sut_bridge.routes["/both"].route.direction == BOTH
    bridge_pub = sut_bridge.routes["/both"]._ros_pub
    _wait(lambda: ros_pub.get_subscription_count() >= 2 and bridge_pub.get_subscription_count() >= 2,
          "discovery")  # each ROS publisher reaches the peer's and the bridge's subscriptions
    for i in range(5):
        agnoshm_pub.publish(String(data=f"agnoshm {i}"))
        ros_pub.publish(String(data=f"ros {i}"))
        time.sleep(0.05)
    expected = sorted([f"agnoshm {i}" for i in range(5)] + [f"ros {i}" for i in range(5)])
    agnoshm_got = []
    _wait(lambda: agnoshm_got.extend(v.data for v in iter(agnoshm_sub.take, None))
          or len(agnoshm_got) >= 10 and len(ros_got) >= 10, "both listeners")
    time.sleep(1.0)  # an echo would arrive now
    agnoshm_got.extend(v.data for v in iter(agnoshm_sub.take, None))
    assert sorted(agnoshm_got) == expected
    assert sorted(ros_got) == expected
    sut_bridge.close()


@pytest.mark.ros
def test_octet_arrays_cross_both_ways(ros):
    """rclpy holds ``byte[]`` as a list of 1-byte bytes, agnoshm as uint8: both directions
    convert, so a ByteMultiArray arrives with the same octets."""
    from std_msgs.msg import ByteMultiArray

    octets = [bytes([v]) for v in (0, 1, 127, 128, 255)]
    bridge_node = ros.node("agnoshm_bridge")
    sut_bridge = sut.Bridge(bridge_node)
    ros_node = ros.node("ros_peer")
    ros_got = []
    ros_node.create_subscription(ByteMultiArray, "/to_ros", lambda m: ros_got.append(m), 10)
    ros_pub = ros_node.create_publisher(ByteMultiArray, "/to_agnoshm", 10)
    peer = agnoshm.Node("peer")
    agnoshm_pub = peer.create_publisher(ByteMultiArray, "/to_ros", 10)
    agnoshm_sub = peer.create_polling_subscription(ByteMultiArray, "/to_agnoshm", 10)
    _wait(lambda: {"/to_ros", "/to_agnoshm"} <= set(sut_bridge.routes), "the bridge to start",
          step=sut_bridge.update)
    bridge_pub = sut_bridge.routes["/to_ros"]._ros_pub
    _wait(lambda: bridge_pub.get_subscription_count() >= 1
          and ros_pub.get_subscription_count() >= 1, "discovery")
    agnoshm_pub.publish(ByteMultiArray(data=octets))
    ros_pub.publish(ByteMultiArray(data=octets))
    _wait(lambda: ros_got, "the octets on the ROS side")
    got = []
    _wait(lambda: got.extend(iter(agnoshm_sub.take, None)) or got, "the octets in agnoshm")
    assert list(ros_got[0].data) == octets
    assert got[0].data.tolist() == [0, 1, 127, 128, 255]
    assert sut_bridge.routes["/to_ros"].dropped == {TO_ROS: 0, TO_AGNOSHM: 0}
    sut_bridge.close()


@pytest.mark.ros
@ros_packages.needs("sensor_msgs.msg")
def test_a_message_that_cannot_cross_is_dropped_and_the_bridge_goes_on(ros, monkeypatch):
    """A ROS 2 image larger than the bridge's pool: that one is dropped with a warning
    (counted in ``dropped``), the next one crosses."""
    from sensor_msgs.msg import Image

    monkeypatch.setenv("AGNOSHM_POOL_SIZE", "4M")  # before the bridge's agnoshm context exists
    bridge_node = ros.node("agnoshm_bridge")
    sut_bridge = sut.Bridge(bridge_node)
    sub = agnoshm.Node("listener").create_polling_subscription(Image, "/camera", 10)
    ros_pub = ros.node("camera").create_publisher(Image, "/camera", 10)
    _wait(lambda: "/camera" in sut_bridge.routes, "the bridge to start", step=sut_bridge.update)
    _wait(lambda: ros_pub.get_subscription_count() >= 1, "discovery")
    relay_ = sut_bridge.routes["/camera"]
    ros_pub.publish(Image(height=1, width=8 << 20, encoding="mono8", step=8 << 20,
                          data=bytes(8 << 20)))
    _wait(lambda: relay_.dropped[TO_AGNOSHM] == 1, "the big image to be dropped")
    ros_pub.publish(Image(height=1, width=4, encoding="mono8", step=4, data=bytes([1, 2, 3, 4])))
    got = []
    _wait(lambda: got.extend(iter(sub.take, None)) or got, "the small image")
    assert got[0].data.tolist() == [1, 2, 3, 4] and relay_.forwarded[TO_AGNOSHM] == 1
    sut_bridge.close()


@pytest.mark.ros
def test_a_type_whose_package_is_missing_is_reported_naming_the_package(ros):
    """No rosidl_runtime_py is needed (pip's ROS 2 has none); a type whose package is not
    installed is skipped with the package named, and the bridge goes on."""
    bridge_node = ros.node("agnoshm_bridge")
    sut_bridge = sut.Bridge(bridge_node, on_demand=False, topics=[
        TopicConfig("/absent", TO_ROS, "no_such_msgs/msg/Thing"),
        TopicConfig("/present", TO_ROS, STRING)])
    sut_bridge.update()
    assert set(sut_bridge.routes) == {"/present"}
    reason = sut_bridge._reported["/absent"]
    assert "no_such_msgs" in reason and "pip install ros-no-such-msgs" in reason
    sut_bridge.close()


@pytest.mark.ros
def test_bridge_stops_when_demand_goes(ros):
    from std_msgs.msg import String

    bridge_node = ros.node("agnoshm_bridge")
    sut_bridge = sut.Bridge(bridge_node)
    ros_listener = ros.node("ros_listener")
    ros_sub = ros_listener.create_subscription(String, "/gone", lambda m: None, 10)
    agnoshm.Node("talker").create_publisher(String, "/gone", 10)
    _wait(lambda: "/gone" in sut_bridge.routes, "the bridge to start", step=sut_bridge.update)
    ros_listener.destroy_subscription(ros_sub)
    _wait(lambda: "/gone" not in sut_bridge.routes, "the bridge to stop", step=sut_bridge.update)
    registry = _registry()
    assert registry.topics[registry.find_topic("/gone")].n_subscriptions == 0  # bridge's left
    sut_bridge.close()


@pytest.mark.ros
def test_configured_topic_is_published_into_ros_without_a_subscriber(ros):
    bridge_node = ros.node("agnoshm_bridge")
    sut_bridge = sut.Bridge(bridge_node, topics=[TopicConfig("latest", TO_ROS, STRING)],
                            on_demand=False)
    sut_bridge.update()
    assert set(sut_bridge.routes) == {"/latest"}
    _wait(lambda: bridge_node.count_publishers("/latest") == 1, "the ROS publisher")
    sut_bridge.close()
    assert sut_bridge.routes == {}


@pytest.mark.ros
def test_real_remap_rules_never_apply_twice(ros):
    from std_msgs.msg import String

    bridge_node = ros.node("agnoshm_bridge", cli_args=[
        "--ros-args", "-r", "/a:=/b", "-r", "/b:=/c", "-r", "/x:=/y", "-r", "/d:=/e"])
    sut_bridge = sut.Bridge(bridge_node, topics=[TopicConfig("a", TO_ROS, STRING),
                                                 TopicConfig("x", TO_ROS, STRING)])
    assert [t.name for t in sut_bridge.configured] == ["/b", "/y"]
    ros.node("ros_listener").create_subscription(String, "/d", lambda m: None, 10)
    agnoshm.Node("talker").create_publisher(String, "/d", 10)
    _wait(lambda: "/d" in sut_bridge._reported, "the on-demand topic /d", step=sut_bridge.update)
    assert "rename /d to /e" in sut_bridge._reported["/d"]
    assert "rename /b to /c" in sut_bridge._reported["/b"]
    assert set(sut_bridge.routes) == {"/y"}
    _wait(lambda: bridge_node.count_publishers("/y") == 1, "the ROS publisher on /y")
    assert bridge_node.count_publishers("/c") == bridge_node.count_publishers("/e") == 0
    sut_bridge.close()


class _Matched:
    """A matched callback keeping each MatchedInfo and the thread it ran in."""

    def __init__(self):
        self.infos: list = []
        self.threads: set[int] = set()

    def __call__(self, info) -> None:
        self.infos.append(info)
        self.threads.add(threading.get_ident())


@pytest.mark.ros
def test_ros_bridge_counts_plain_ros_endpoints_and_rclpy_event_classes_work(ros):
    """rclpy's own PublisherEventCallbacks on an agnoshm publisher of an rclpy node; the
    matched callback runs in rclpy's executor and counts the plain ROS 2 subscriptions the
    bridge relays to, not the bridge."""
    from rclpy.event_handler import PublisherEventCallbacks as RclpyPublisherEventCallbacks
    from std_msgs.msg import String

    bridge = sut.Bridge(ros.node("agnoshm_bridge"))
    app = ros.node("app")
    on_pub = _Matched()
    pub = agnoshm.create_publisher(app, String, "/chatter", 10, event_callbacks=(
        RclpyPublisherEventCallbacks(matched=on_pub)))
    listeners = [ros.node(f"ros_listener{i}") for i in range(2)]
    subscriptions = [n.create_subscription(String, "/chatter", lambda msg: None, 10)
                     for n in listeners]

    def counted(n: int) -> bool:
        bridge.update()  # what its timer does each period
        return pub.get_subscription_count() == n

    _wait(lambda: counted(2), what="the two ROS subscriptions")
    assert pub.wait_for_subscription(timeout_sec=0) is True
    _wait(lambda: on_pub.infos and on_pub.infos[-1].current_count == 2, "the matched callback")
    assert threading.get_ident() not in on_pub.threads  # rclpy's executor thread, not ours
    listeners[0].destroy_subscription(subscriptions[0])
    _wait(lambda: counted(1), "one ROS subscription gone")
    _wait(lambda: on_pub.infos[-1].current_count == 1, "the matched callback")
    assert on_pub.infos[-1].total_count == 2
    bridge.close()
    assert pub.get_subscription_count() == 0
    pub.destroy()
