"""Typed ROS 2 messages: what the rosidl C layout costs, and what serialization would cost.

* **publish side**: borrow + set the header + ``alloc("data", ...)`` + publish
  of a 1920x1080 rgb8 ``sensor_msgs/msg/Image``, against the same for
  ``agnoshm.Bytes`` (pixels are not filled: that is the camera driver's work);
* **receive side**: the cost of ``msg.data`` on a 1 KiB and a 16 MiB image;
* **end to end** between two processes, one message in flight: a 64 B
  ``agnoshm.Bytes``, a ``PointCloud2`` of 1,000,000 points (16 MB) and a
  ``visualization_msgs/msg/Marker`` whose ``points`` (``geometry_msgs/msg/Point[]``)
  hold 100,000 points, read as a structured numpy array.  The publisher stamps
  the header (or the payload) just before ``publish()``;
* **CDR**: rosbags' ``serialize_cdr`` + ``deserialize_cdr`` of the same
  1920x1080 image, the copy a serializing middleware pays at least once per
  hop, against agnoshm's borrow-to-access path in one process.
"""

from __future__ import annotations

import os
import socket
import time

import numpy as np

from agnoshm.bench import STARTUP_TIMEOUT, Worker, close_all, gather, summarize

WIDTH, HEIGHT = 1920, 1080
IMAGE_BYTES = WIDTH * HEIGHT * 3
CLOUD_POINTS = 1_000_000
MARKER_POINTS = 100_000
ACK = b"a"
CASES = {
    "bytes_64B": ("agnoshm/msg/Bytes", "/agnoshm_bench/typed_bytes"),
    "pointcloud2_1M": ("sensor_msgs/msg/PointCloud2", "/agnoshm_bench/cloud"),
    "marker_points_100k": ("visualization_msgs/msg/Marker", "/agnoshm_bench/marker"),
}


def _type(name: str):
    import agnoshm

    return agnoshm.get_message(name)


def _stamp(msg, case: str) -> None:
    now = time.monotonic_ns()
    if case == "bytes_64B":
        msg.data[8:16].view("<i8")[0] = now
    else:
        stamp = msg.header.stamp
        stamp.sec, stamp.nanosec = divmod(now, 1_000_000_000)


def _read_stamp(msg, case: str) -> int:
    if case == "bytes_64B":
        data = msg.data
        data[-1]
        return int(data[8:16].view("<i8")[0])
    if case == "pointcloud2_1M":
        data = msg.data
        data[0], data[-1]
    else:
        points = msg.points
        points[0]["x"], points[-1]["z"]
    stamp = msg.header.stamp
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def _fill(msg, case: str) -> None:
    """Give the message its payload (outside the timed part)."""
    if case == "bytes_64B":
        msg.alloc("data", 64)[:] = 1
    elif case == "pointcloud2_1M":
        msg.header.frame_id = "lidar"
        msg.height, msg.width = 1, CLOUD_POINTS
        msg.point_step, msg.row_step = 16, 16 * CLOUD_POINTS
        msg.fields = [{"name": n, "offset": 4 * i, "datatype": 7, "count": 1}
                      for i, n in enumerate("xyz")]
        msg.is_dense = True
        data = msg.alloc("data", 16 * CLOUD_POINTS)
        data[0], data[-1] = 1, 2
    else:
        msg.header.frame_id = "map"
        msg.type = 8  # POINTS
        points = msg.alloc("points", MARKER_POINTS)
        points[0]["x"], points[-1]["z"] = 1.0, 2.0


class TypedSender:
    """Child side: publishes each case, one message in flight, waiting for an acknowledgement."""

    def __init__(self, ack: socket.socket):
        import agnoshm

        self._agnoshm = agnoshm
        self._ack = ack
        self._ack.settimeout(STARTUP_TIMEOUT)
        self.node = agnoshm.Node("bench_typed_publisher")
        self._publishers = {case: self.node.create_publisher(_type(name), topic, 4)
                            for case, (name, topic) in CASES.items()}

    def ready(self) -> int:
        return os.getpid()

    def run(self, case: str, samples: int, warmup: int, interval_s: float) -> None:
        pub = self._publishers[case]
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while pub.get_subscription_count() < 1:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no subscription on {case}")
            time.sleep(0.001)
        for _ in range(warmup + samples):
            msg = pub.borrow_loaned_message()
            _fill(msg, case)
            _stamp(msg, case)
            pub.publish(msg)
            del msg
            if self._ack.recv(1) != ACK:
                raise RuntimeError("the subscriber closed the acknowledgement socket")
            time.sleep(interval_s)

    def close(self) -> None:
        self.node.destroy_node()
        self._agnoshm.shutdown()
        self._ack.close()


class TypedReceiver:
    """Child side: receives each case and measures stamp-to-access latency."""

    def __init__(self, ack: socket.socket):
        import agnoshm

        self._agnoshm = agnoshm
        self._ack = ack
        self.node = agnoshm.Node("bench_typed_subscriber")
        self._latencies: list[int] = []
        for case, (name, topic) in CASES.items():
            self.node.create_subscription(_type(name), topic,
                                          lambda msg, case=case: self._on_message(case, msg), 4)
        self.executor = agnoshm.SingleThreadedExecutor()
        self.executor.add_node(self.node)

    def ready(self) -> int:
        return os.getpid()

    def _on_message(self, case: str, msg) -> None:
        latency = time.monotonic_ns() - _read_stamp(msg, case)
        del msg
        self._latencies.append(latency)
        self._ack.send(ACK)

    def run(self, total: int, warmup: int, timeout: float) -> list[int]:
        self._latencies = []
        if not self.executor.spin_until(lambda: len(self._latencies) >= total, timeout):
            raise TimeoutError(f"received {len(self._latencies)} of {total} messages")
        return self._latencies[warmup:]

    def close(self) -> None:
        self.node.destroy_node()
        self._agnoshm.shutdown()
        self._ack.close()


class LocalCosts:
    """Child side: one process measuring publish-side, receive-side and CDR costs."""

    def __init__(self):
        import agnoshm

        self._agnoshm = agnoshm
        self.node = agnoshm.Node("bench_typed_local")

    def ready(self) -> int:
        return os.getpid()

    def publish_side(self, samples: int) -> dict:
        """borrow + header + alloc + publish: Image 1920x1080 rgb8 against agnoshm.Bytes."""
        image_pub = self.node.create_publisher("sensor_msgs/msg/Image", "/agnoshm_bench/image", 2)
        bytes_pub = self.node.create_publisher(self._agnoshm.Bytes, "/agnoshm_bench/raw", 2)
        image, raw = [], []
        for _ in range(samples):
            start = time.perf_counter_ns()
            msg = image_pub.borrow_loaned_message()
            msg.header.stamp.sec = 1
            msg.header.frame_id = "camera"
            msg.height, msg.width, msg.encoding, msg.step = HEIGHT, WIDTH, "rgb8", WIDTH * 3
            msg.alloc("data", IMAGE_BYTES)
            image_pub.publish(msg)
            image.append(time.perf_counter_ns() - start)
            start = time.perf_counter_ns()
            msg = bytes_pub.borrow_loaned_message()
            msg.alloc("data", IMAGE_BYTES)
            bytes_pub.publish(msg)
            raw.append(time.perf_counter_ns() - start)
        self.node.destroy_publisher(image_pub)
        self.node.destroy_publisher(bytes_pub)
        return {"image": summarize(image), "bytes": summarize(raw)}

    def receive_side(self, samples: int) -> dict:
        """The cost of ``msg.data`` on a received 1 KiB and 16 MiB image."""
        pub = self.node.create_publisher("sensor_msgs/msg/Image", "/agnoshm_bench/access", 2)
        sub = self.node.create_polling_subscription("sensor_msgs/msg/Image", "/agnoshm_bench/access", 2)
        result = {}
        for label, nbytes in (("1KiB", 1 << 10), ("16MiB", 16 << 20)):
            msg = pub.borrow_loaned_message()
            msg.alloc("data", nbytes)
            pub.publish(msg)
            view = sub.take()
            costs = []
            for _ in range(samples):
                start = time.perf_counter_ns()
                data = view.data
                data[-1]
                costs.append(time.perf_counter_ns() - start)
                del data
            del view
            result[label] = summarize(costs)
        self.node.destroy_subscription(sub)
        self.node.destroy_publisher(pub)
        return result

    def cdr_against_zero_copy(self, samples: int) -> dict:
        """rosbags CDR serialize + deserialize of a 1920x1080 image against agnoshm's
        borrow → publish → take → ``msg.data`` in one process."""
        from agnoshm.msg.types import default_registry

        typestore = default_registry().rosbags.typestore
        Image = typestore.types["sensor_msgs/msg/Image"]
        Header = typestore.types["std_msgs/msg/Header"]
        Time = typestore.types["builtin_interfaces/msg/Time"]
        pixels = np.random.default_rng(0).integers(0, 255, IMAGE_BYTES, dtype=np.uint8)
        ros_image = Image(header=Header(stamp=Time(sec=1, nanosec=2), frame_id="camera"),
                          height=HEIGHT, width=WIDTH, encoding="rgb8", is_bigendian=0,
                          step=WIDTH * 3, data=pixels)
        cdr = []
        for _ in range(samples):
            start = time.perf_counter_ns()
            raw = typestore.serialize_cdr(ros_image, "sensor_msgs/msg/Image")
            back = typestore.deserialize_cdr(raw, "sensor_msgs/msg/Image")
            back.data[-1]
            cdr.append(time.perf_counter_ns() - start)
            del raw, back
        pub = self.node.create_publisher("sensor_msgs/msg/Image", "/agnoshm_bench/cdr", 2)
        sub = self.node.create_polling_subscription("sensor_msgs/msg/Image", "/agnoshm_bench/cdr", 2)
        zero_copy = []
        for _ in range(samples):
            start = time.perf_counter_ns()
            msg = pub.borrow_loaned_message()
            msg.header.frame_id = "camera"
            msg.height, msg.width, msg.encoding, msg.step = HEIGHT, WIDTH, "rgb8", WIDTH * 3
            msg.alloc("data", IMAGE_BYTES)
            pub.publish(msg)
            view = sub.take()
            view.data[-1]
            zero_copy.append(time.perf_counter_ns() - start)
            del view, msg
        self.node.destroy_subscription(sub)
        self.node.destroy_publisher(pub)
        cdr_s, zero_s = summarize(cdr), summarize(zero_copy)
        return {"image_bytes": IMAGE_BYTES, "cdr": cdr_s, "agnoshm": zero_s,
                "ratio_p50": cdr_s["p50_us"] / zero_s["p50_us"]}

    def close(self) -> None:
        self.node.destroy_node()
        self._agnoshm.shutdown()


def measure_messages(samples: int, warmup: int, interval_s: float, progress=None) -> dict:
    """Run every typed-message measurement; return one dict for the JSON report."""
    local = Worker("typed-local", LocalCosts)
    workers = [local]
    ours, theirs = socket.socketpair()
    try:
        local.started()
        local_samples = max(20, samples // 10)
        result = {"publish_side": local.call("publish_side", local_samples, timeout=600),
                  "receive_side": local.call("receive_side", local_samples * 10, timeout=600),
                  "cdr": local.call("cdr_against_zero_copy", max(10, local_samples // 2),
                                    timeout=600)}
        if progress:
            progress("typed messages: publish side, receive side and CDR measured")
        sender = Worker("typed-publisher", TypedSender, ours)
        receiver = Worker("typed-subscriber", TypedReceiver, theirs)
        workers += [sender, receiver]
        sender.started()
        receiver.started()
        latency = {}
        for case in CASES:
            timeout = 120.0 + (samples + warmup) * (interval_s + 0.1)
            receiver.send("run", samples + warmup, warmup, timeout)
            sender.send("run", case, samples, warmup, interval_s)
            _, samples_ns = gather([sender, receiver], timeout)
            latency[case] = summarize(samples_ns)
            if progress:
                progress(f"typed messages: {case} p50 {latency[case]['p50_us']:,.1f} us")
        result["latency"] = latency
        return result
    finally:
        ours.close()
        theirs.close()
        close_all(workers)
