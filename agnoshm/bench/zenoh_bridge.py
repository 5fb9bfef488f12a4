"""agnoshm → Zenoh → agnoshm: what leaving the machine through the Zenoh bridge costs.

    python -m agnoshm.bench.zenoh_bridge [--sizes 64,1048576,6000000] [--rounds 200]

Two agnoshm domains joined on loopback by two Zenoh bridges (``agnoshm.zenoh``,
one listening on 127.0.0.1, the other connecting; multicast scouting off).  This
process pings on ``/zb_ping`` in the first domain; a pong process in the second
domain answers each ping on ``/zb_pong`` with a copy (:mod:`agnoshm.bench.bridged`
holds the ping-pong and its statistics, shared with :mod:`agnoshm.bench.ros_bridge`).
Each message crosses two bridges each way: CDR serialization, a Zenoh put over
TCP, deserialization into a loan.  Prints one line per size and, with
``--json FILE``, saves the numbers.
"""

from __future__ import annotations

import socket
import sys

from agnoshm.bench import bridged

TYPE = "agnoshm/msg/Bytes"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(sizes: list[int], rounds: int, timeout: float = 60.0) -> list[dict]:
    """Run the ping-pong for each size; return one summary per size."""
    ping_domain, pong_domain = bridged.domains(910_000)
    port = _free_port()
    topics = ["--topic", f"/zb_ping:{TYPE}", "--topic", f"/zb_pong:{TYPE}", "--domain",
              str(ping_domain)]  # both bridges' keys in one Zenoh domain
    bridges = [
        bridged.start(["-m", "agnoshm.zenoh", *topics, "--listen", f"tcp/127.0.0.1:{port}"],
                      ping_domain),
        bridged.start(["-m", "agnoshm.zenoh", *topics, "--connect", f"tcp/127.0.0.1:{port}"],
                      pong_domain)]
    return bridged.through(bridges, pong_domain, TYPE, "/zb_ping", "/zb_pong", sizes, rounds,
                           timeout)


def main(argv: list[str] | None = None) -> int:
    args = bridged.parser("python -m agnoshm.bench.zenoh_bridge", __doc__).parse_args(argv)
    return bridged.run(args, measure)


if __name__ == "__main__":
    sys.exit(main())
