"""Plain rclpy over the default RMW: what a Python ROS 2 node pays without agnoshm.

A ``sensor_msgs/msg/Image`` (one row of ``mono8``, ``data`` the payload)
goes from a publisher node to a subscription node in another process, with
the default QoS profile of depth 10 and the RMW that ``RMW_IMPLEMENTATION``
or the distribution selects.  The publisher reuses one ``array.array('B')``
as ``data`` (rclpy accepts it without a per-element check), writes the
first and last byte and the stamp into it in place, then ``publish()``es:
the RMW serializes and copies it.  The subscription's callback runs in a
``SingleThreadedExecutor``, reads the stamp and the last byte from the
received ``data`` and acknowledges.

rclpy comes with ROS 2, not with pip: where it is not importable (ROS 2 not
sourced) the run reports this transport as skipped.  The nodes join a
private ``ROS_DOMAIN_ID`` in 1..101 derived from the run.
"""

from __future__ import annotations

import array
import os
import socket
import time

from agnoshm.bench import STARTUP_TIMEOUT, cpu_seconds
from agnoshm.bench.latency import ACK, MEASURED, WARMUP

MODULE = "rclpy"
NOT_IMPORTABLE = "rclpy not importable (source ROS 2)"
DEPTH = 10


def size_limit(size: int) -> str | None:
    return None


def leftovers(run_id: str, pids: list[int]) -> list[str]:
    return []


def _start(run_id: str, name: str):
    """rclpy, a context in the run's domain and a node in it."""
    import rclpy
    from rclpy.context import Context
    from rclpy.signals import SignalHandlerOptions

    context = Context()
    rclpy.init(args=[], context=context, domain_id=1 + int(run_id) % 101,
               signal_handler_options=SignalHandlerOptions.NO)  # the worker handles SIGTERM
    node = rclpy.create_node(name, context=context)
    return rclpy, context, node


def _topic(run_id: str) -> str:
    return f"/agnoshm_bench/rclpy_latency_{run_id}"


class Sender:
    """Child side: publishes a reused Image, stamped in place just before ``publish()``."""

    def __init__(self, ack: socket.socket, run_id: str, max_size: int):
        from sensor_msgs.msg import Image

        self._ack = ack
        self._ack.settimeout(STARTUP_TIMEOUT)
        self.rclpy, self.context, self.node = _start(run_id, f"agnoshm_bench_pub_{run_id}")
        self.Image = Image
        self.publisher = self.node.create_publisher(Image, _topic(run_id), DEPTH)

    def ready(self) -> int:
        return os.getpid()

    def connect(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.publisher.get_subscription_count() < 1:
            if time.monotonic() > deadline:
                raise TimeoutError("no rclpy subscription matched")
            time.sleep(0.001)

    def latency(self, size: int, samples: int, warmup: int, interval_s: float) -> None:
        data = array.array("B", bytes(size))
        view = memoryview(data)
        msg = self.Image(height=1, width=size, encoding="mono8", step=size)
        msg.header.frame_id = "bench"
        for i in range(warmup + samples):
            view[0], view[-1] = WARMUP if i < warmup else MEASURED, i & 0xFF
            view[8:16] = time.monotonic_ns().to_bytes(8, "little")
            msg.data = data
            self.publisher.publish(msg)
            if self._ack.recv(1) != ACK:
                raise RuntimeError("the subscription closed the acknowledgement socket")
            time.sleep(interval_s)
        view.release()

    def close(self) -> None:
        self.node.destroy_node()
        self.context.try_shutdown()
        self._ack.close()


class Receiver:
    """Child side: a subscription whose callback reads the received Image and acknowledges."""

    def __init__(self, ack: socket.socket, run_id: str, max_size: int):
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import Image

        self._ack = ack
        self.rclpy, self.context, self.node = _start(run_id, f"agnoshm_bench_sub_{run_id}")
        self.node.create_subscription(Image, _topic(run_id), self._on_image, DEPTH)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._latencies: list[int] = []
        self._received = 0

    def ready(self) -> int:
        return os.getpid()

    def _on_image(self, msg) -> None:
        data = memoryview(msg.data)
        stamp = int.from_bytes(data[8:16], "little")
        data[-1]
        latency = time.monotonic_ns() - stamp
        if data[0] == MEASURED:
            self._latencies.append(latency)
        data.release()
        self._received += 1
        self._ack.send(ACK)

    def latency(self, total: int, timeout: float) -> dict:
        self._latencies, self._received = [], 0
        cpu0, wall0 = cpu_seconds(), time.monotonic()
        deadline = wall0 + timeout
        while self._received < total:
            if time.monotonic() > deadline:
                raise TimeoutError(f"received {self._received} of {total} messages in "
                                   f"{timeout:.0f} s")
            self.executor.spin_once(timeout_sec=0.2)
        return {"latency_ns": self._latencies,
                "cpu_per_s": (cpu_seconds() - cpu0) / (time.monotonic() - wall0)}

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()
        self._ack.close()
