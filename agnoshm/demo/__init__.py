"""Small runnable programs (console scripts), each runnable with and without ROS 2.

=====================  ==================================================================
``talker``/``listener``  "Hello World" strings on /chatter
``image_publisher``      camera: 1920x1080 rgb8 ``sensor_msgs/msg/Image`` frames, zero copy
``image_processor``      processing stage: camera image in, mono8 (or half size) image out
``image_subscriber``     sink: checks order, sizes and pixels, one line per frame
``latency_ping``/``_pong``  latency pair: stamped messages out, p50/p99 JSON results
=====================  ==================================================================

Without ROS 2 each program is an ``agnoshm.Node``. With ``--ros`` (or when
``--ros-args`` are given, as ``ros2 run`` and ``launch_ros`` do, and rclpy is
importable) it is an rclpy node whose agnoshm endpoints come from
``agnoshm.create_publisher(rclpy_node, ...)``; rclpy is imported only then.
Parameters come from flags and ROS 2 parameter files (:mod:`agnoshm.demo.params`).

Exit status: 0 done (also after Ctrl-C or SIGTERM), 1 a check failed or timed
out, 2 bad arguments, parameters or configuration.
"""

from __future__ import annotations

import signal
import sys
import threading
import time

import agnoshm
from agnoshm.config import ConfigError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_POLL_SEC = 0.1


class DemoError(Exception):
    """A check of a demo program failed (wrong order, size or pixels, a timeout)."""


def _sigterm_as_interrupt() -> None:
    """Let SIGTERM (``launch``'s second step, ``kill``) clean up like Ctrl-C does."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, handler)


class DemoNode:
    """The node of one demo program: an ``agnoshm.Node``, or an rclpy node.

    ``ros``: the user asked for ROS 2 (``--ros``), an error without rclpy;
    ``ros_args``: ``--ros-args ...`` were given, which use rclpy where it is importable.

    Publishers and subscriptions are agnoshm's zero-copy ones either way.
    """

    def __init__(self, name: str, *, ros: bool = False, ros_args: list[str] | None = None,
                 prog: str = "agnoshm"):
        self.use_ros = False
        self._rclpy = None
        self._error: Exception | None = None
        if ros or ros_args:
            try:
                import rclpy
                import rclpy.executors
            except ImportError as err:
                if ros:
                    raise ConfigError(f"--ros needs rclpy ({err}): source ROS 2 "
                                      "(e.g. /opt/ros/jazzy/setup.bash) or drop --ros") from None
                print(f"{prog}: ROS arguments given but rclpy is not importable ({err}); "
                      "running as a standalone agnoshm node", file=sys.stderr, flush=True)
            else:
                self._rclpy = rclpy
                self.use_ros = True
                rclpy.init(args=[prog, *(ros_args or [])])
                self.node = rclpy.create_node(name)
                self._executor = rclpy.executors.SingleThreadedExecutor()
                self._executor.add_node(self.node)
                return
        _sigterm_as_interrupt()
        self.node = agnoshm.Node(name)
        self._executor = agnoshm.SingleThreadedExecutor()
        self._executor.add_node(self.node)

    def create_publisher(self, msg_type, topic: str, qos_profile):
        return agnoshm.create_publisher(self.node, msg_type, topic, qos_profile)

    def create_subscription(self, msg_type, topic: str, callback, qos_profile):
        guarded = self._guarded(callback)
        # one parameter: rclpy (Jazzy) passes (msg, info) to callbacks that accept two
        return agnoshm.create_subscription(self.node, msg_type, topic, lambda msg: guarded(msg),
                                           qos_profile)

    def create_timer(self, period_sec: float, callback):
        guarded = self._guarded(callback)
        return self.node.create_timer(period_sec, lambda: guarded())

    def _guarded(self, callback):
        """Record the first exception of a callback; :meth:`spin_until` stops and raises it.

        (agnoshm's executors log a failing callback and go on; a demo program must stop.)
        """
        def guarded(*args):
            if self._error is not None:
                return None
            try:
                return callback(*args)
            except Exception as err:  # noqa: BLE001  re-raised by spin_until
                self._error = err
                return None

        return guarded

    def spin_until(self, done, timeout_sec: float | None = None) -> bool:
        """Run callbacks until ``done()`` or ``timeout_sec`` (None: no limit); return ``done()``.

        ``done()`` is checked at least every 0.1 s: it may watch state that no callback
        changes (``get_subscription_count()``: a new subscription rings no doorbell here).
        The first exception a callback raised is raised here.
        Ctrl-C (and SIGTERM) end the wait: KeyboardInterrupt propagates.
        """
        deadline = None if timeout_sec is None else time.monotonic() + timeout_sec

        def finished() -> bool:
            return self._error is not None or bool(done())

        if not self.use_ros:
            while not finished():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._executor.spin_until(finished,
                                          _POLL_SEC if left is None else min(left, _POLL_SEC))
        else:
            shutdown = getattr(self._rclpy.executors, "ExternalShutdownException",
                               KeyboardInterrupt)
            try:
                while not finished() and self._rclpy.ok():
                    if deadline is not None and time.monotonic() >= deadline:
                        break
                    self._executor.spin_once(timeout_sec=_POLL_SEC)
            except shutdown:
                raise KeyboardInterrupt from None
        if self._error is not None:
            raise self._error
        return bool(done())

    def close(self) -> None:
        """Destroy the node and leave agnoshm (and rclpy); idempotent enough for ``finally``."""
        try:
            self.node.destroy_node()
        finally:
            if self.use_ros:
                try_shutdown = getattr(self._rclpy, "try_shutdown", None)
                if try_shutdown is not None:
                    try_shutdown()
                elif self._rclpy.ok():
                    self._rclpy.shutdown()
            agnoshm.shutdown()


def run(prog: str, body, argv=None) -> int:
    """Run ``body(argv)`` and map what it raises to an exit status and one line on stderr.

    Once ``body`` has returned or failed, SIGINT is ignored: the program is done and
    only exits. Otherwise a Ctrl-C arriving while the interpreter finalizes (which
    restores SIGINT's default action) would kill it with -SIGINT instead of its
    status, which is what ``launch`` shutting the others down after one process
    failed looked like.
    """
    try:
        return _run(prog, body, argv)
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run(prog: str, body, argv) -> int:
    try:
        return body(argv)
    except ConfigError as err:  # also ParamsError
        print(f"{prog}: error: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    except DemoError as err:
        print(f"{prog}: error: {err}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    except agnoshm.AgnoshmError as err:
        print(f"{prog}: error: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK
