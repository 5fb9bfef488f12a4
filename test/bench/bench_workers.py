"""Factories for ``agnoshm.bench.Worker`` in tests (importable by spawned children)."""

from __future__ import annotations


class JoinsThenFails:
    """Joins the domain (a node with a subscription: pool, queue, registry record), then fails."""

    def __init__(self):
        import agnoshm

        self.node = agnoshm.Node("joins_then_fails")
        self.node.create_subscription(agnoshm.Bytes, "/bench_setup", lambda msg: None, 1)
        raise ValueError("setup failed after joining the domain")
