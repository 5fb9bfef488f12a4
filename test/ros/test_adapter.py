"""agnoshm endpoints on rclpy nodes (agnoshm.ros).

Three groups:

* without ROS (always run): importing works, calls fail with the fix, QoS and
  callback-arity rules, agnoshm nodes pass through;
* against a stand-in for rclpy (run where rclpy is missing): a small model of
  the rclpy semantics the adapter relies on (ROS2_NOTES.md §1: guard conditions
  latch triggers, InvalidHandle after destroy, callback groups, on_shutdown
  under the context lock, destroy_node destroying guards).  It exercises the
  background thread, re-triggering and teardown here; it is no substitute for
  the real tests below;
* with real rclpy (skipped with the reason where ROS 2 is not sourced).
"""

from __future__ import annotations

import concurrent.futures
import inspect
import os
import subprocess
import sys
import textwrap
import threading
import time
import types
import weakref
from types import SimpleNamespace

import pytest

import agnoshm
import agnoshm.ros
import ros_packages
import workers
from sources import child_cwd, child_env
from agnoshm.errors import InvalidHandleError, InvalidQoSError, InvalidTopicNameError
from agnoshm.qos import DurabilityPolicy, HistoryPolicy, QoSProfile
from agnoshm.ros import dispatch, endpoints
from agnoshm.ros import qos as ros_qos

STRING = "std_msgs/msg/String"
ROS_PACKAGES = ["ament_index_python", "rclpy", "rosidl_parser", "rosidl_runtime_py", "std_msgs"]


def _rclpy_importable() -> bool:
    try:
        import rclpy  # noqa: F401
    except ImportError:
        return False
    return True


def _registry():
    return agnoshm.context.get_runtime().registry


def _counts(topic: str):
    """(publishers, subscriptions) of ``topic`` in the registry, None if it is gone."""
    registry = _registry()
    index = registry.find_topic(topic)
    return None if index < 0 else (registry.topics[index].n_publishers,
                                   registry.topics[index].n_subscriptions)


def _dispatch_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "agnoshm-ros-dispatch"]


# -- without ROS ---------------------------------------------------------------------------------------

_WITHOUT_ROS = """
    import importlib.abc, sys, threading

    class NoRos(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {ros!r}:
                raise ImportError(f"No module named {{name!r}} (this test hides ROS)")

    sys.meta_path.insert(0, NoRos())
    import agnoshm.ros, agnoshm.ros.bridge
    assert threading.active_count() == 1, "importing agnoshm.ros started a thread"
    assert not agnoshm.ok(), "importing agnoshm.ros started agnoshm"
    for call in (lambda: agnoshm.ros.create_publisher(object(), "std_msgs/msg/String", "/x", 10),
                 lambda: agnoshm.ros.create_subscription(object(), "std_msgs/msg/String", "/x",
                                                         print, 10),
                 lambda: agnoshm.ros.create_polling_subscription(object(), "std_msgs/msg/String",
                                                                 "/x", 10)):
        try:
            call()
        except ImportError as err:
            print("ImportError:", err)
        else:
            raise AssertionError("no ImportError")
    print("loaded:", sorted(m for m in sys.modules if m.split(".")[0] in {ros!r}))
"""


def test_import_agnoshm_ros_works_without_ros_and_calls_name_the_fix():
    env = child_env(base={k: v for k, v in os.environ.items()
                          if not k.startswith(("ROS_", "AMENT_", "COLCON_")) and k != "PYTHONPATH"})
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_WITHOUT_ROS.format(ros=ROS_PACKAGES))],
        cwd=child_cwd(), env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "loaded: []"
    assert len([line for line in lines if line.startswith("ImportError:")]) == 3
    assert all("source your ROS 2 setup" in line for line in lines[:3])


def test_create_publisher_without_rclpy_raises_import_error_with_the_fix(monkeypatch):
    for name in ("rclpy", "rclpy.executors", "rclpy.node"):
        monkeypatch.setitem(sys.modules, name, None)  # `import rclpy` raises ImportError
    with pytest.raises(ImportError, match="source your ROS 2 setup") as info:
        agnoshm.ros.create_publisher(object(), STRING, "/chatter", 10)
    assert "agnoshm.Node" in str(info.value)  # and the standalone alternative


def test_agnoshm_nodes_pass_through_without_ros(isolated_domain):
    node = agnoshm.Node("standalone")
    pub = agnoshm.ros.create_publisher(node, STRING, "/pass", 10)
    poll = agnoshm.ros.create_polling_subscription(node, STRING, "/pass", 10)
    sub = agnoshm.ros.create_subscription(node, STRING, "/pass", lambda m: None, 10)
    assert type(pub) is agnoshm.publisher.Publisher and sub in node.subscriptions
    pub.publish({"data": "hi"})
    assert poll.take().data == "hi"


def _duration(ns):
    return SimpleNamespace(nanoseconds=ns)


def _profile(**changes):
    values = dict(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=1, durability=2,
                  deadline=_duration(0), lifespan=_duration(0), liveliness=0,
                  liveliness_lease_duration=_duration(0), avoid_ros_namespace_conventions=False)
    values.update(changes)
    return SimpleNamespace(**values)


def test_default_ros_qos_profiles_are_accepted():
    ros_qos.check_ros_qos(10)
    ros_qos.check_ros_qos(_profile())
    ros_qos.check_ros_qos(_profile(reliability=2, liveliness=1))  # sensor data: BEST_EFFORT
    ros_qos.check_ros_qos(_profile(deadline=_duration(9_223_372_036_854_775_807)))  # infinite
    # Jazzy's qos_profile_best_available: BEST_AVAILABLE deadline, lease and liveliness
    ros_qos.check_ros_qos(_profile(deadline=_duration(9_223_372_036_854_775_806), liveliness=5,
                                   liveliness_lease_duration=_duration(9_223_372_036_854_775_806)))
    ros_qos.check_ros_qos(QoSProfile(depth=3))  # agnoshm's own profile has none of these


@pytest.mark.parametrize("changes, message", [
    ({"deadline": _duration(100_000_000)}, "deadline"),
    ({"lifespan": _duration(1_000_000_000)}, "lifespan"),
    ({"liveliness_lease_duration": _duration(5)}, "liveliness_lease_duration"),
    ({"liveliness": 3}, "liveliness"),  # MANUAL_BY_TOPIC
    ({"liveliness": 4}, "liveliness"),  # UNKNOWN
    ({"liveliness": 2}, "liveliness"),  # rmw's old MANUAL_BY_NODE (no rclpy enum has it)
])
def test_qos_settings_agnoshm_cannot_honour_are_refused(changes, message):
    with pytest.raises(InvalidQoSError, match=message):
        ros_qos.check_ros_qos(_profile(**changes))


def test_callback_arity_follows_rclpy():
    def one(msg):
        pass

    def two(msg, info):
        pass

    def defaulted(msg, extra=None):  # one argument binds first, as in rclpy
        pass

    def star(*args):
        pass

    class Handler:
        def __call__(self, msg, info):
            pass

    assert not endpoints.wants_message_info(one)
    assert endpoints.wants_message_info(two)
    assert not endpoints.wants_message_info(defaulted)
    assert not endpoints.wants_message_info(star)
    assert endpoints.wants_message_info(Handler())
    assert not endpoints.wants_message_info(print)
    with pytest.raises(TypeError, match="one argument"):
        endpoints.wants_message_info(lambda: None)
    with pytest.raises(TypeError, match="one argument"):
        endpoints.wants_message_info(lambda a, b, c: None)


def test_a_second_teardown_of_a_node_waits_for_the_first_unless_told_not_to():
    from agnoshm.ros.binding import NodeBinding

    class FakeNode:
        context = None

        def get_fully_qualified_name(self):
            return "/n"

    class SlowEndpoint:
        def __init__(self):
            self.started, self.release, self.destroyed = (threading.Event(), threading.Event(),
                                                          threading.Event())

        def destroy(self):
            self.started.set()
            self.release.wait(10)
            self.destroyed.set()

    node, endpoint = FakeNode(), SlowEndpoint()
    sut = NodeBinding(node, None, None)
    sut.add(endpoint)
    first = threading.Thread(target=sut.destroy_node)
    first.start()
    assert endpoint.started.wait(10)
    sut.destroy_node(wait=False)  # the dispatch thread's way: returns at once
    assert not endpoint.destroyed.is_set()
    second = threading.Thread(target=sut.destroy_node)  # node.destroy_node()'s way: waits
    second.start()
    second.join(0.2)
    assert second.is_alive()
    endpoint.release.set()
    second.join(10)
    first.join(10)
    assert endpoint.destroyed.is_set() and not second.is_alive()


# -- against a stand-in for rclpy ------------------------------------------------------------------------

class _Model:
    """Builds module objects that behave like the parts of rclpy the adapter uses."""

    def __init__(self):
        self.cv = threading.Condition()  # plays the rmw wait set
        model = self

        class InvalidHandle(RuntimeError):
            pass

        class Handle:
            def __init__(self):
                self.valid = True

            def __enter__(self):
                if not self.valid:
                    raise InvalidHandle("cannot use Destroyable because destruction was requested")
                return self

            def __exit__(self, *exc):
                pass

            def destroy_when_not_in_use(self):
                self.valid = False

        class ContextHandle(Handle):  # plays _rclpy.Context: ok() takes no Python lock
            def __init__(self):
                super().__init__()
                self.initialized = True

            def ok(self):
                return self.initialized

        class Context:
            def __init__(self):
                self._lock = threading.Lock()  # non-reentrant, as rclpy's
                self._callbacks = []
                self._handle = ContextHandle()

            handle = property(lambda self: self._handle)

            def ok(self):
                with self._lock, self._handle:
                    return self._handle.ok()

            def on_shutdown(self, callback):
                with self._lock:
                    if not self._handle.ok():
                        callback()
                    elif inspect.ismethod(callback):
                        self._callbacks.append(weakref.WeakMethod(callback))
                    else:
                        self._callbacks.append(callback)

            def shutdown(self):
                with self._lock:  # callbacks run holding the lock, as in rclpy
                    self._handle.initialized = False
                    for weak in self._callbacks:
                        callback = weak()  # a plain callable runs here (rclpy's quirk)
                        if callback is not None:
                            callback()
                    self._callbacks = []

            def shut_down_by_signal(self):
                """rclpy's SIGINT handler: rcl_shutdown from C++, no on_shutdown callbacks."""
                self._handle.initialized = False

        class KiltedContext(Context):
            """rclpy 8 and later (Kilted): shutdown() first destroys every node of the
            context (``track_node``), under the context's lock, now reentrant."""

            def __init__(self):
                super().__init__()
                self._lock = threading.RLock()
                self.nodes = []

            def shutdown(self):
                with self._lock:
                    for node in self.nodes:
                        node.destroy_node()
                    super().shutdown()

        class MutuallyExclusiveCallbackGroup:
            def __init__(self):
                self._busy = False
                self._lock = threading.Lock()

            def add_entity(self, entity):
                pass

            def can_execute(self, entity):
                return not self._busy

            def beginning_execution(self, entity):
                with self._lock:
                    if self._busy:
                        return False
                    self._busy = True
                    return True

            def ending_execution(self, entity):
                self._busy = False

        class ReentrantCallbackGroup(MutuallyExclusiveCallbackGroup):
            def can_execute(self, entity):
                return True

            def beginning_execution(self, entity):
                return True

        class GuardCondition:
            def __init__(self, callback, callback_group):
                self._gc = Handle()
                self.callback = callback
                self.callback_group = callback_group
                self.latched = self._executor_event = False

            def trigger(self):
                with self._gc, model.cv:
                    self.latched = True
                    model.cv.notify_all()

            @property
            def handle(self):
                return self._gc

            def destroy(self):
                self._gc.destroy_when_not_in_use()

        class Node:
            def __init__(self, name, namespace="/", context=None, remaps=None):
                self._name, self._ns, self._remaps = name, namespace, remaps or {}
                self._context = context
                if isinstance(context, KiltedContext):
                    context.nodes.append(self)
                self._node = Handle()
                self._guards = []
                self.default_callback_group = MutuallyExclusiveCallbackGroup()
                self._executor = None

            handle = property(lambda self: self._node)
            context = property(lambda self: self._context)
            guards = property(lambda self: iter(list(self._guards)))
            executor = property(lambda self: self._executor and self._executor())

            def get_name(self):
                with self.handle:
                    return self._name

            def get_namespace(self):
                with self.handle:
                    return self._ns

            def get_fully_qualified_name(self):
                with self.handle:
                    return self._ns.rstrip("/") + "/" + self._name

            def resolve_topic_name(self, topic, *, only_expand=False):
                with self.handle:
                    if not topic.startswith("/"):
                        topic = self._ns.rstrip("/") + "/" + topic
                    return self._remaps.get(topic, topic)

            def create_guard_condition(self, callback, callback_group=None):
                guard = GuardCondition(callback, callback_group or self.default_callback_group)
                self._guards.append(guard)
                return guard

            def destroy_guard_condition(self, guard):
                if guard in self._guards:
                    self._guards.remove(guard)
                    guard.destroy()
                    return True
                return False

            def destroy_node(self):
                while self._guards:
                    self.destroy_guard_condition(self._guards[0])
                self._node.destroy_when_not_in_use()

        class Executor:
            def __init__(self, num_threads=1):
                self._nodes = []
                self._pool = concurrent.futures.ThreadPoolExecutor(num_threads)
                self._running = []

            def add_node(self, node):
                self._nodes.append(node)
                node._executor = weakref.ref(self)

            def _ready(self):
                for node in self._nodes:
                    for guard in node.guards:
                        if guard.handle.valid and guard.latched and not guard._executor_event \
                                and guard.callback_group.can_execute(guard):
                            guard.latched, guard._executor_event = False, True
                            return guard
                return None

            def _execute(self, guard):
                if not guard.callback_group.beginning_execution(guard):
                    guard._executor_event, guard.latched = False, True
                    return
                guard._executor_event = False
                try:
                    result = guard.callback()
                    if inspect.iscoroutine(result):
                        try:
                            result.send(None)
                        except StopIteration:
                            pass
                finally:
                    guard.callback_group.ending_execution(guard)
                    with model.cv:
                        model.cv.notify_all()

            def spin_once(self, timeout_sec=None):
                with model.cv:
                    guard = self._ready()
                    if guard is None:
                        model.cv.wait(timeout_sec)
                        guard = self._ready()
                if guard is not None:
                    self._running.append(self._pool.submit(self._execute, guard))
                for future in [f for f in self._running if f.done()]:
                    self._running.remove(future)
                    future.result()

            def shutdown(self):
                self._pool.shutdown(wait=True)

        rclpy = types.ModuleType("rclpy")
        parts = {"exceptions": {"InvalidHandle": InvalidHandle},
                 "node": {"Node": Node},
                 "executors": {"Executor": Executor},
                 "callback_groups": {"ReentrantCallbackGroup": ReentrantCallbackGroup,
                                     "MutuallyExclusiveCallbackGroup":
                                         MutuallyExclusiveCallbackGroup}}
        self.modules = {"rclpy": rclpy}
        for name, attrs in parts.items():
            module = types.ModuleType(f"rclpy.{name}")
            module.__dict__.update(attrs)
            setattr(rclpy, name, module)
            self.modules[f"rclpy.{name}"] = module
        self.rclpy, self.Context, self.Node, self.Executor = rclpy, Context, Node, Executor
        self.KiltedContext = KiltedContext


@pytest.fixture
def model(isolated_domain, monkeypatch):
    if _rclpy_importable():
        pytest.skip("real rclpy is importable: the tests against it below cover this")
    sut_model = _Model()
    for name, module in sut_model.modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    sut_model.context = sut_model.Context()
    yield sut_model
    agnoshm.shutdown()
    assert not _dispatch_threads()


def _spin_until(executor, predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out spinning"
        executor.spin_once(0.05)


def test_model_callbacks_run_in_publish_order_on_a_remapped_topic(model):
    node = model.Node("listener", context=model.context, remaps={"/chatter": "/remapped"})
    got = []
    sut = agnoshm.ros.create_subscription(node, STRING, "chatter",
                                          lambda msg, info: got.append((msg.data, info)), 20)
    assert sut.topic_name == "/remapped" and sut.callback_group is node.default_callback_group
    pub = agnoshm.Node("talker").create_publisher(STRING, "/remapped", 20)
    for i in range(20):
        pub.publish({"data": str(i)})
    executor = model.Executor()
    executor.add_node(node)
    _spin_until(executor, lambda: len(got) == 20)
    assert [data for data, _ in got] == [str(i) for i in range(20)]
    assert [info["publication_sequence_number"] for _, info in got] == list(range(1, 21))
    assert got[0][1]["source_timestamp"] <= got[0][1]["received_timestamp"]
    assert _dispatch_threads() == ["agnoshm-ros-dispatch"]
    executor.shutdown()


def test_model_mutually_exclusive_group_is_never_concurrent(model):
    node = model.Node("listener", context=model.context)
    running, most, got = [0], [0], []

    def slow(msg):
        running[0] += 1
        most[0] = max(most[0], running[0])
        time.sleep(0.002)
        got.append(msg.data)
        running[0] -= 1

    for topic in ("/a", "/b"):  # two subscriptions, one (the default) group
        agnoshm.ros.create_subscription(node, "std_msgs/msg/Int64", topic, slow, 50)
    talker = agnoshm.Node("talker")
    pubs = [talker.create_publisher("std_msgs/msg/Int64", topic, 50) for topic in ("/a", "/b")]
    for i in range(20):
        for pub in pubs:
            pub.publish({"data": i})
    executor = model.Executor(num_threads=4)
    executor.add_node(node)
    _spin_until(executor, lambda: len(got) == 40)
    assert most[0] == 1
    executor.shutdown()


def test_model_reentrant_group_and_async_callbacks_deliver_everything(model):
    node = model.Node("listener", context=model.context)
    group = model.rclpy.callback_groups.ReentrantCallbackGroup()
    got = []

    async def callback(msg):
        got.append(msg.data)

    sut = agnoshm.ros.create_subscription(node, "std_msgs/msg/Int64", "/n", callback, 100,
                                          callback_group=group)
    assert sut.callback_group is group
    pub = agnoshm.Node("talker").create_publisher("std_msgs/msg/Int64", "/n", 100)
    for i in range(50):
        pub.publish({"data": i})
    executor = model.Executor(num_threads=4)
    executor.add_node(node)
    _spin_until(executor, lambda: len(got) == 50)
    assert sorted(got) == list(range(50))
    executor.shutdown()


def test_model_transient_local_subscription_gets_retained_messages_at_once(model):
    latched = QoSProfile(depth=3, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    pub = agnoshm.Node("talker").create_publisher(STRING, "/latched", latched)
    for i in range(5):
        pub.publish({"data": str(i)})
    node = model.Node("late", context=model.context)
    got = []
    agnoshm.ros.create_subscription(node, STRING, "/latched", lambda m: got.append(m.data), latched)
    executor = model.Executor()
    executor.add_node(node)
    _spin_until(executor, lambda: len(got) == 3)
    assert got == ["2", "3", "4"]
    executor.shutdown()


def test_model_destroy_node_tears_down_endpoints_and_the_thread(model):
    node = model.Node("listener", context=model.context)
    sut = agnoshm.ros.create_subscription(node, STRING, "/d", lambda m: None, 10)
    pub = agnoshm.ros.create_publisher(node, STRING, "/d2", 10)
    poll = agnoshm.ros.create_polling_subscription(node, STRING, "/d2", 10)
    assert _counts("/d") == (0, 1) and _counts("/d2") == (1, 1)
    assert _registry().publishers[pub._port.index].node_name == b"/listener"
    node.destroy_node()
    assert _counts("/d") is None and _counts("/d2") is None
    assert list(node.guards) == [] and not _dispatch_threads()
    sut.destroy()  # after destroy_node: already gone, no error
    with pytest.raises(InvalidHandleError):
        poll.take()


def test_model_kilted_shutdown_destroys_the_node_and_new_endpoints_are_refused(model):
    """Since Kilted, rclpy.shutdown() destroys the context's nodes: endpoints go, and a new
    one raises agnoshm's InvalidHandleError naming the cause (never rclpy's InvalidHandle
    from asking the destroyed node its name)."""
    context = model.KiltedContext()
    node = model.Node("listener", context=context)
    agnoshm.ros.create_subscription(node, STRING, "/k", lambda m: None, 10)
    agnoshm.ros.create_publisher(node, STRING, "/k", 10)
    context.shutdown()
    assert _counts("/k") is None and not _dispatch_threads() and not node.handle.valid
    with pytest.raises(InvalidHandleError, match="shut down"):
        agnoshm.ros.create_publisher(node, STRING, "/k", 10)


def test_model_endpoints_on_a_destroyed_node_are_refused(model):
    node = model.Node("listener", context=model.context)
    node.destroy_node()
    with pytest.raises(InvalidHandleError, match="destroyed"):
        agnoshm.ros.create_subscription(node, STRING, "/k", print, 10)
    assert _counts("/k") is None


def _raising_callback_delivers_the_rest(node, executor):
    """The first message's callback raises: ``spin_once`` raises it (rclpy's handler Task
    stores it), and the guard, re-triggered before the raise, still delivers the rest."""
    got = []

    def callback(msg):
        got.append(msg.data)
        if msg.data == "0":
            raise ValueError("boom")

    agnoshm.ros.create_subscription(node, STRING, "/raise", callback, 10)
    pub = agnoshm.Node("talker").create_publisher(STRING, "/raise", 10)
    for i in range(3):
        pub.publish({"data": str(i)})
    executor.add_node(node)
    with pytest.raises(ValueError, match="boom"):
        _spin_until(executor, lambda: len(got) == 3)
    _spin_until(executor, lambda: len(got) == 3)
    assert got == ["0", "1", "2"]


def test_model_a_raising_callback_propagates_and_the_rest_is_still_delivered(model):
    executor = model.Executor()
    _raising_callback_delivers_the_rest(model.Node("listener", context=model.context), executor)
    executor.shutdown()


def test_model_subscription_destroyed_in_its_own_callback(model):
    node = model.Node("listener", context=model.context)
    got, holder = [], {}

    def once(msg):
        got.append(msg.data)
        holder["sub"].destroy()

    holder["sub"] = agnoshm.ros.create_subscription(node, STRING, "/once", once, 10)
    pub = agnoshm.Node("talker").create_publisher(STRING, "/once", 10)
    pub.publish({"data": "a"})
    pub.publish({"data": "b"})
    executor = model.Executor()
    executor.add_node(node)
    _spin_until(executor, lambda: got)
    for _ in range(5):
        executor.spin_once(0.02)
    assert got == ["a"] and list(node.guards) == [] and _counts("/once") == (1, 0)
    executor.shutdown()


def test_model_node_destroyed_behind_the_adapters_back_is_swept(model):
    node = model.Node("listener", context=model.context)
    agnoshm.ros.create_subscription(node, STRING, "/swept", lambda m: None, 10)
    model.Node.destroy_node(node)  # bypasses the hook: only the guard's InvalidHandle tells
    workers.wait_until(lambda: _counts("/swept") is None, timeout=10 * dispatch.SWEEP_PERIOD,
                       what="the sweep")
    workers.wait_until(lambda: not _dispatch_threads(), what="the thread to stop")


def test_model_context_shutdown_tears_down_under_the_context_lock(model):
    node = model.Node("listener", context=model.context)
    agnoshm.ros.create_subscription(node, STRING, "/s", lambda m: None, 10)
    agnoshm.ros.create_publisher(node, STRING, "/s", 10)
    model.context.shutdown()  # rclpy.shutdown(): callbacks run with the lock held
    assert _counts("/s") is None and not _dispatch_threads() and list(node.guards) == []
    with pytest.raises(InvalidHandleError, match="shut down"):
        agnoshm.ros.create_publisher(node, STRING, "/s", 10)


def test_model_context_shut_down_by_a_signal_is_swept(model):
    node = model.Node("listener", context=model.context)
    agnoshm.ros.create_subscription(node, STRING, "/sig", lambda m: None, 10)
    poll = agnoshm.ros.create_polling_subscription(node, STRING, "/sig", 10)
    model.context.shut_down_by_signal()  # Ctrl-C: on_shutdown callbacks never run
    workers.wait_until(lambda: _counts("/sig") is None, timeout=10 * dispatch.SWEEP_PERIOD,
                       what="the sweep")
    workers.wait_until(lambda: not _dispatch_threads(), what="the thread to stop")
    assert list(node.guards) == []
    with pytest.raises(InvalidHandleError):
        poll.take()
    with pytest.raises(InvalidHandleError, match="shut down"):
        agnoshm.ros.create_publisher(node, STRING, "/sig", 10)
    node.destroy_node()  # what the program does next: nothing left to tear down


def test_model_events_executor_gets_tasks_instead_of_a_guard(model):
    class EventsExecutor:  # not an rclpy.executors.Executor, has create_task
        def __init__(self):
            self.tasks = []

        def create_task(self, callback, *args):
            self.tasks.append(callback)

    node = model.Node("listener", context=model.context)
    executor = EventsExecutor()
    node._executor = weakref.ref(executor)
    got = []
    sut = agnoshm.ros.create_subscription(node, STRING, "/ev", lambda m: got.append(m.data), 10)
    assert sut._guard is None and list(node.guards) == []
    pub = agnoshm.Node("talker").create_publisher(STRING, "/ev", 10)
    for i in range(3):
        pub.publish({"data": str(i)})
    deadline = time.monotonic() + 20
    while len(got) < 3 and time.monotonic() < deadline:
        if executor.tasks:
            executor.tasks.pop(0)()
        else:
            time.sleep(0.005)
    assert got == ["0", "1", "2"]
    sut.destroy()


def test_model_agnoshm_shutdown_stops_the_thread_before_closing(model):
    node = model.Node("listener", context=model.context)
    sut = agnoshm.ros.create_subscription(node, STRING, "/x", lambda m: None, 10)
    assert _dispatch_threads()
    agnoshm.shutdown()
    assert not _dispatch_threads() and sut._port is None and list(node.guards) == []


def test_model_non_node_and_bad_names_are_refused(model):
    with pytest.raises(TypeError, match="rclpy.node.Node"):
        agnoshm.ros.create_publisher(object(), STRING, "/x", 10)
    node = model.Node("n", context=model.context)
    with pytest.raises(InvalidTopicNameError):
        agnoshm.ros.create_publisher(node, STRING, "bad name", 10)
    with pytest.raises(InvalidQoSError, match="KEEP_ALL"):
        agnoshm.ros.create_subscription(node, STRING, "/x", print, QoSProfile(
            history=HistoryPolicy.KEEP_ALL))
    with pytest.raises(InvalidQoSError):
        agnoshm.ros.create_publisher(node, STRING, "/x", 0)
    assert _counts("/x") is None


# -- with ROS 2 ---------------------------------------------------------------------------------------

@pytest.fixture
def ros(isolated_domain, ros_domain_id):
    """rclpy (with std_msgs) on its own context; nodes made by ``ros.node`` are destroyed after."""
    ros_packages.require("std_msgs.msg")
    import rclpy
    import rclpy.context
    import rclpy.executors

    context = rclpy.context.Context()
    rclpy.init(context=context, domain_id=ros_domain_id)
    nodes = []

    def node(name, **kwargs):
        created = rclpy.create_node(name, context=context, **kwargs)
        nodes.append(created)
        return created

    def executor(kind="SingleThreadedExecutor", *args):
        return getattr(rclpy.executors, kind)(*args, context=context)

    yield SimpleNamespace(rclpy=rclpy, context=context, node=node, executor=executor)
    for created in nodes:
        try:
            created.destroy_node()
        except RuntimeError:  # destroyed by the test already
            pass
    rclpy.try_shutdown(context=context)
    workers.wait_until(lambda: not _dispatch_threads(), what="the dispatch thread to stop")


@pytest.mark.ros
def test_callbacks_run_in_a_single_threaded_executor_in_publish_order(ros):
    from std_msgs.msg import String

    node = ros.node("listener")
    got = []
    sut = agnoshm.ros.create_subscription(node, String, "/chatter", got.append, 10)
    assert isinstance(sut, agnoshm.ros.RosSubscription) and sut._guard in list(node.guards)
    pub = agnoshm.Node("talker").create_publisher(String, "/chatter", 10)
    for i in range(10):
        pub.publish(String(data=str(i)))
    executor = ros.executor()
    executor.add_node(node)
    _spin_until(executor, lambda: len(got) == 10)
    assert [m.data for m in got] == [str(i) for i in range(10)]
    assert got[0].to_ros() == String(data="0")  # views copy out to rclpy messages


@pytest.mark.ros
def test_multi_threaded_executor_keeps_a_mutually_exclusive_group_exclusive(ros):
    import rclpy.callback_groups

    node = ros.node("listener")
    group = rclpy.callback_groups.MutuallyExclusiveCallbackGroup()
    running, most, got = [0], [0], []

    def slow(msg):
        running[0] += 1
        most[0] = max(most[0], running[0])
        time.sleep(0.002)
        got.append(msg.data)
        running[0] -= 1

    for topic in ("/a", "/b"):
        agnoshm.ros.create_subscription(node, "std_msgs/msg/Int64", topic, slow, 50,
                                        callback_group=group)
    talker = agnoshm.Node("talker")
    pubs = [talker.create_publisher("std_msgs/msg/Int64", t, 50) for t in ("/a", "/b")]
    for i in range(20):
        for pub in pubs:
            pub.publish({"data": i})
    executor = ros.executor("MultiThreadedExecutor", 4)
    executor.add_node(node)
    _spin_until(executor, lambda: len(got) == 40)
    assert most[0] == 1
    executor.shutdown()


@pytest.mark.ros
def test_reentrant_group_in_a_multi_threaded_executor_delivers_everything(ros):
    import rclpy.callback_groups

    node = ros.node("listener")
    group = rclpy.callback_groups.ReentrantCallbackGroup()
    got = []
    lock = threading.Lock()

    def callback(msg):
        with lock:
            got.append(msg.data)

    sut = agnoshm.ros.create_subscription(node, "std_msgs/msg/Int64", "/r", callback, 100,
                                          callback_group=group)
    assert sut.callback_group is group
    pub = agnoshm.Node("talker").create_publisher("std_msgs/msg/Int64", "/r", 100)
    for i in range(100):
        pub.publish({"data": i})
    executor = ros.executor("MultiThreadedExecutor", 4)
    executor.add_node(node)
    _spin_until(executor, lambda: len(got) == 100)
    assert sorted(got) == list(range(100))
    executor.shutdown()


@pytest.mark.ros
def test_two_argument_callbacks_get_message_info_and_async_ones_are_awaited(ros):
    node = ros.node("listener")
    infos, awaited = [], []

    async def coroutine(msg):
        awaited.append(msg.data)

    agnoshm.ros.create_subscription(node, STRING, "/i", lambda m, info: infos.append(info), 10)
    agnoshm.ros.create_subscription(node, STRING, "/i", coroutine, 10)
    agnoshm.Node("talker").create_publisher(STRING, "/i", 10).publish({"data": "x"})
    executor = ros.executor()
    executor.add_node(node)
    _spin_until(executor, lambda: infos and awaited)
    assert set(infos[0]) == {"source_timestamp", "received_timestamp",
                             "publication_sequence_number", "reception_sequence_number"}
    assert awaited == ["x"]


@pytest.mark.ros
def test_a_raising_callback_propagates_out_of_spin_once_and_the_rest_is_delivered(ros):
    _raising_callback_delivers_the_rest(ros.node("listener"), ros.executor())


@pytest.mark.ros
def test_destroy_node_tears_down_agnoshm_endpoints(ros):
    node = ros.node("listener")
    sut = agnoshm.ros.create_subscription(node, STRING, "/d", lambda m: None, 10)
    poll = agnoshm.ros.create_polling_subscription(node, STRING, "/d2", 10)
    agnoshm.ros.create_publisher(node, STRING, "/d2", 10)
    assert _counts("/d") == (0, 1) and _counts("/d2") == (1, 1)
    node.destroy_node()
    assert _counts("/d") is None and _counts("/d2") is None and not _dispatch_threads()
    sut.destroy()  # InvalidHandle inside: already gone
    with pytest.raises(InvalidHandleError):
        poll.take()


@pytest.mark.ros
def test_subscription_destroy_removes_its_guard_and_registry_entry(ros):
    node = ros.node("listener")
    keep = agnoshm.ros.create_subscription(node, STRING, "/k", lambda m: None, 10)
    with agnoshm.ros.create_subscription(node, STRING, "/k", lambda m: None, 10) as sut:
        assert _counts("/k") == (0, 2)
    assert sut._guard is None and len(list(node.guards)) == 1 and _counts("/k") == (0, 1)
    keep.destroy()
    assert list(node.guards) == [] and _counts("/k") is None and not _dispatch_threads()


@pytest.mark.ros
def test_rclpy_shutdown_tears_down_and_refuses_new_endpoints(ros):
    node = ros.node("listener")
    agnoshm.ros.create_subscription(node, STRING, "/s", lambda m: None, 10)
    agnoshm.ros.create_publisher(node, STRING, "/s", 10)
    ros.rclpy.shutdown(context=ros.context)
    assert _counts("/s") is None and not _dispatch_threads()
    with pytest.raises(InvalidHandleError, match="shut down"):
        agnoshm.ros.create_publisher(node, STRING, "/s", 10)


@pytest.mark.ros
def test_endpoints_on_a_destroyed_node_are_refused(ros):
    node = ros.node("listener")
    node.destroy_node()
    with pytest.raises(InvalidHandleError, match="destroyed"):
        agnoshm.ros.create_publisher(node, STRING, "/gone", 10)
    assert _counts("/gone") is None


@pytest.mark.ros
def test_remapping_and_namespaces_apply(ros):
    remapped = ros.node("listener", cli_args=["--ros-args", "-r", "chatter:=remapped"])
    assert agnoshm.ros.create_subscription(remapped, STRING, "chatter", print, 10).topic_name == \
        "/remapped"
    robot = ros.node("talker", namespace="robot")
    pub = agnoshm.ros.create_publisher(robot, STRING, "chatter", 10)
    assert pub.topic_name == "/robot/chatter"
    assert agnoshm.ros.create_publisher(robot, STRING, "~/status", 10).topic_name == \
        "/robot/talker/status"
    assert _registry().publishers[pub._port.index].node_name == b"/robot/talker"


@pytest.mark.ros
def test_qos_errors_and_bad_input_are_clear(ros):
    from rclpy.duration import Duration
    from rclpy.qos import HistoryPolicy as RosHistory
    from rclpy.qos import LivelinessPolicy, QoSProfile as RosQoS
    from rclpy.qos import qos_profile_sensor_data

    node = ros.node("n")
    for qos in (RosQoS(history=RosHistory.KEEP_ALL), RosQoS(depth=5, deadline=Duration(seconds=1)),
                RosQoS(depth=5, lifespan=Duration(seconds=1)),
                RosQoS(depth=5, liveliness=LivelinessPolicy.MANUAL_BY_TOPIC), -1):
        with pytest.raises(InvalidQoSError):
            agnoshm.ros.create_publisher(node, STRING, "/q", qos)
    agnoshm.ros.create_subscription(node, STRING, "/q", print, qos_profile_sensor_data).destroy()
    import rclpy.qos
    best_available = getattr(rclpy.qos, "qos_profile_best_available", None)  # Jazzy and later
    if best_available is not None:
        agnoshm.ros.create_subscription(node, STRING, "/q", print, best_available).destroy()
    with pytest.raises(TypeError, match="rclpy.node.Node"):
        agnoshm.ros.create_publisher(object(), STRING, "/q", 10)
    with pytest.raises(InvalidTopicNameError):
        agnoshm.ros.create_publisher(node, STRING, "/bad name", 10)
    with pytest.raises(TypeError, match="one argument"):
        agnoshm.ros.create_subscription(node, STRING, "/q", lambda: None, 10)
    assert _counts("/q") is None


@pytest.mark.ros
def test_publisher_on_an_rclpy_node_reaches_agnoshm_subscribers(ros):
    node = ros.node("talker")
    sut = agnoshm.ros.create_publisher(node, STRING, "/p", 10)
    poll = agnoshm.Node("listener").create_polling_subscription(STRING, "/p", 10)
    assert sut.get_subscription_count() == 1
    msg = sut.borrow_loaned_message()
    msg.data = "zero copy"
    sut.publish(msg)
    assert poll.take().data == "zero copy"


@pytest.mark.ros
def test_messages_from_another_process_wake_the_executor(ros):
    ctx = workers.context()
    ready, start, out, finish = ctx.Event(), ctx.Event(), ctx.Queue(), ctx.Event()
    node = ros.node("listener")
    got = []
    agnoshm.ros.create_subscription(node, agnoshm.Bytes, "/xproc",
                                    lambda m: got.append(workers.read_header(m.data)), 10)
    child = ctx.Process(target=workers.publisher,
                        args=("/xproc", 3, 5, 4096, 10, 1, ready, start, out),
                        kwargs={"exit_event": finish})  # stays until we have everything
    child.start()
    assert ready.wait(workers.TIMEOUT)
    start.set()
    executor = ros.executor()
    executor.add_node(node)
    _spin_until(executor, lambda: len(got) == 5, timeout=workers.TIMEOUT)
    assert got == [(3, i) for i in range(5)]
    finish.set()
    child.join(workers.TIMEOUT)
    assert child.exitcode == 0


@pytest.mark.ros
def test_events_executor_dispatches_with_tasks(ros):
    experimental = pytest.importorskip("rclpy.experimental",
                                       reason="this rclpy has no EventsExecutor")
    node = ros.node("listener")
    executor = experimental.EventsExecutor(context=ros.context)
    executor.add_node(node)
    got = []
    sut = agnoshm.ros.create_subscription(node, STRING, "/ev", lambda m: got.append(m.data), 10)
    assert sut._guard is None
    pub = agnoshm.Node("talker").create_publisher(STRING, "/ev", 10)
    for i in range(3):
        pub.publish({"data": str(i)})
    deadline = time.monotonic() + 20
    while len(got) < 3 and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.1)
    assert got == ["0", "1", "2"]
    executor.shutdown()
