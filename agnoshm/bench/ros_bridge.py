"""agnoshm → ROS 2 (DDS) → agnoshm: the ROS 2 bridge's path, measured as the Zenoh row is.

    python -m agnoshm.bench.ros_bridge [--sizes 64,1048576,6000000] [--rounds 200]
    python -m agnoshm.bench.ros_bridge --with-zenoh 2   # Zenoh, ROS, Zenoh, ROS

Needs rclpy and ``std_msgs`` (``AMENT_PREFIX_PATH`` set).  Two agnoshm domains
(two simulated hosts) are joined by two ``agnoshm_bridge`` processes that share
one DDS domain: each bridge's agnoshm side is its own domain (set with
``agnoshm.init(domain_id=...)`` before the bridge's ``main``, since both sides
otherwise take ``ROS_DOMAIN_ID``), its rclpy side the DDS domain.  This process
pings on ``/rb_ping`` in the first domain; a pong in the second answers on
``/rb_pong`` (:mod:`agnoshm.bench.bridged`, the same ping-pong as
:mod:`agnoshm.bench.zenoh_bridge`).  Each way: the first bridge converts the
view to an rclpy message and publishes it (rclpy serializes to CDR), DDS carries
it (Fast DDS by default: shared memory between processes on one host), the second
bridge's rclpy subscription deserializes and the bridge copies it into a loan.
The messages are ``std_msgs/msg/UInt8MultiArray`` (the bridge needs a ROS type;
``agnoshm/msg/Bytes`` has none), payload ``data``.
"""

from __future__ import annotations

import importlib.util
import random
import subprocess
import sys

from agnoshm.bench import bridged

TYPE = "std_msgs/msg/UInt8MultiArray"
#: one ``agnoshm_bridge`` whose agnoshm side is ``{domain}`` (rclpy reads ROS_DOMAIN_ID)
BRIDGE = """
import sys, agnoshm
from agnoshm.signals import SignalHandlerOptions
# the bridge's own agnoshm start comes after rclpy's and leaves rclpy's signal handlers be
agnoshm.init(domain_id={domain}, signal_handler_options=SignalHandlerOptions.NO)
from agnoshm.ros.bridge import main
sys.exit(main(sys.argv[1:]))
"""


def measure(sizes: list[int], rounds: int, timeout: float = 60.0) -> list[dict]:
    """Run the ping-pong for each size; return one summary per size."""
    ping_domain, pong_domain = bridged.domains(920_000)
    dds_domain = str(random.randrange(150, 233))  # far from the 0 people use
    out, back = f"/rb_ping:to_ros:{TYPE}", f"/rb_pong:to_agnoshm:{TYPE}"
    there, home = f"/rb_ping:to_agnoshm:{TYPE}", f"/rb_pong:to_ros:{TYPE}"
    bridges = [
        bridged.start(["-c", BRIDGE.format(domain=ping_domain), "--no-on-demand",
                       "--topic", out, "--topic", back], ping_domain, ROS_DOMAIN_ID=dds_domain),
        bridged.start(["-c", BRIDGE.format(domain=pong_domain), "--no-on-demand",
                       "--node-name", "agnoshm_bridge_b", "--topic", there, "--topic", home],
                      pong_domain, ROS_DOMAIN_ID=dds_domain)]
    return bridged.through(bridges, pong_domain, TYPE, "/rb_ping", "/rb_pong", sizes, rounds,
                           timeout)


def alternate(repeat: int, argv: list[str], json_stem: str | None) -> int:
    """Zenoh, ROS, Zenoh, ROS…: each row in its own process, so that both see the same
    load; ``--json`` goes to ``<stem>.<zenoh|ros>.<run>.json``.  Return the first failing
    status, else 0."""
    status = 0
    for run in range(1, repeat + 1):
        for row in ("zenoh", "ros"):
            module = f"agnoshm.bench.{row}_bridge"
            print(f"== {module} (run {run} of {repeat})", flush=True)
            json_args = ["--json", f"{json_stem}.{row}.{run}.json"] if json_stem else []
            status = status or subprocess.call([sys.executable, "-m", module, *argv, *json_args])
    return status


def main(argv: list[str] | None = None) -> int:
    parser = bridged.parser("python -m agnoshm.bench.ros_bridge", __doc__)
    parser.add_argument("--with-zenoh", type=int, metavar="N", default=0,
                        help="run the Zenoh row and this one alternately, N times each")
    args = parser.parse_args(argv)
    missing = [name for name in ("rclpy", "std_msgs") if importlib.util.find_spec(name) is None]
    if missing:
        print(f"error: {', '.join(missing)} not importable: the ROS 2 bridge row needs ROS 2 "
              "(source its setup, or pip install ros-rclpy ros-std-msgs ros-rmw-fastrtps-cpp "
              "and set AMENT_PREFIX_PATH)", file=sys.stderr)
        return 2
    if args.with_zenoh:
        own = ["--sizes", args.sizes, "--rounds", str(args.rounds)]
        return alternate(args.with_zenoh, own, args.json and args.json.removesuffix(".json"))
    return bridged.run(args, measure)


if __name__ == "__main__":
    sys.exit(main())
