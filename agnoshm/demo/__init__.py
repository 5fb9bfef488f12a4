"""Small runnable programs: the console scripts ``talker`` and ``listener``."""

from __future__ import annotations

import agnoshm


def spin_until_count(node, done) -> None:
    """Spin ``node`` until ``done()`` is true or Ctrl-C, then shut agnoshm down."""
    executor = agnoshm.SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin_until(done)
    except KeyboardInterrupt:
        pass
    node.destroy_node()
    agnoshm.shutdown()
