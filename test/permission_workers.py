"""The owner process of test/test_permissions.py (multiprocessing, spawn start method)."""

from __future__ import annotations

import os

from workers import TIMEOUT, wait_until


def owner(topic: str, payload: bytes, ready, out, done) -> None:
    """Publish ``payload`` on ``topic`` to the first subscription; keep the domain open."""
    import agnoshm

    node = agnoshm.Node("owner")
    pub = node.create_publisher(agnoshm.Bytes, topic, 4)
    runtime = agnoshm.context.get_runtime()
    out.put(("owner", os.getpid(), runtime.config.domain_id))
    ready.set()
    wait_until(lambda: pub.get_subscription_count() >= 1 or done.is_set(), what="a subscription")
    if not done.is_set():
        pub.publish(payload)
    done.wait(TIMEOUT)
    node.destroy_node()
    agnoshm.shutdown()
