"""The running bridge: one Zenoh session, one agnoshm node, one relay per bridged topic.

:class:`ZenohBridge` declares the node's liveliness token (``ros2 node list`` on an
rmw_zenoh machine shows ``/agnoshm_zenoh_bridge``), watches the remote graph, and
each period (:meth:`ZenohBridge.update`) starts the relays whose type it knows and
reports what it cannot do: a type nobody names yet, a type this machine does not
know, remote endpoints whose type hash differs (keys that never meet), no router.
With ``on_demand`` it also relays, while it lasts, every agnoshm topic that has a
peer on the other side of Zenoh (:mod:`agnoshm.zenoh.demand`).
"""

from __future__ import annotations

import logging
import threading

from agnoshm.errors import AgnoshmError
from agnoshm.zenoh import demand, liveliness
from agnoshm.zenoh.config import BridgeOptions, TopicConfig
from agnoshm.zenoh.graph import RemoteGraph, describe, mismatches
from agnoshm.zenoh.keyexpr import dds_type_name
from agnoshm.zenoh.relay import BRIDGE_NODE_NAME, BridgeContext, TopicRelay, TopicSpec
from agnoshm.zenoh.session import is_connected, open_session

_logger = logging.getLogger("agnoshm.zenoh")
DEFAULT_PERIOD_SEC = 1.0


class ZenohBridge:
    """Bridges the configured topics between this agnoshm domain and Zenoh.

    :param options: from :func:`agnoshm.zenoh.config.load_options`.
    :param session: an open ``zenoh.Session`` (else one is opened from ``options``,
        retrying while the router cannot be reached; ``stop`` ends the wait).
    :raises ZenohBridgeError: if the session cannot be opened (see ``open_session``).
    """

    def __init__(self, options: BridgeOptions, *, session=None, stop: threading.Event | None = None,
                 node_name: str = BRIDGE_NODE_NAME, attempts: int | None = None):
        import agnoshm

        self.options = options
        self.stop = stop or threading.Event()
        self.relays: dict[str, TopicRelay] = {}
        self.on_demand: set[str] = set()  # the relays started on demand
        self.mismatched: dict[str, liveliness.Entity] = {}  # token key -> entity, reported once
        self._reported: dict[str, str] = {}
        self._connected: bool | None = None
        self._owns_session = session is None
        self.session = session or open_session(options, stop=self.stop, attempts=attempts)
        self.node = self._node_token = self.graph = self.announcer = None
        if self.session is None:  # stopped while waiting for the router
            return
        try:
            zid = str(self.session.zid())
            self.node = agnoshm.Node(node_name)
            entity = liveliness.Entity(options.domain, zid, 0, 0, liveliness.NODE, node_name)
            self._node_token = self.session.liveliness().declare_token(entity.key)
            self.context = BridgeContext(self.session, self.node, options.domain,
                                         node_token=entity)
            self.graph = RemoteGraph(self.session, options.domain, zid)
            if options.on_demand:
                self.announcer = demand.Announcer(self.context)
        except BaseException:
            self.close()
            raise

    # -- decisions ----------------------------------------------------------------------------------
    def type_of(self, topic: TopicConfig) -> tuple[str | None, str]:
        """The type to relay ``topic`` with, or None and the reason it is not known (yet).

        Order: the configured type; the type of the agnoshm topic; a type remote endpoints
        announce that this machine knows.
        """
        from agnoshm.msg import get_message

        if topic.type_name:
            return topic.type_name, ""
        local = _local_type(topic.name)
        if local:
            return local, ""
        remote = sorted({(e.ros_type_name or e.type_name, e.type_hash)
                         for e in self.graph.endpoints(topic.name)})
        for type_name, _ in remote:
            try:
                get_message(type_name)
            except (AgnoshmError, ValueError, TypeError):  # get_message: TypeMismatchError
                continue
            return type_name, ""
        if remote:
            seen = ", ".join(f"{t} ({h})" for t, h in remote)
            return None, (f"unknown type on the wire: remote endpoints use {seen}, which this "
                          "machine does not know; register its .msg (agnoshm.register_msg) or "
                          f"give --topic {topic.name}:pkg/msg/Name")
        return None, ("its type is not known yet (no agnoshm endpoint and no remote endpoint "
                      f"on it); waiting, or give --topic {topic.name}:pkg/msg/Name")

    def update(self) -> None:
        """Start the relays whose type is known; report what stands in the way."""
        problems: dict[str, str] = {}
        for topic in self.options.topics:
            relay = self.relays.get(topic.name)
            if relay is not None:
                self._check_hashes(relay)
                continue
            type_name, reason = self.type_of(topic)
            if type_name is None:
                problems[topic.name] = reason
                continue
            spec = TopicSpec(topic.name, type_name, self.options.depth_of(topic),
                             topic.transient_local)
            problem = self._start(spec)
            if problem:
                problems[topic.name] = problem
        if self.options.on_demand:
            problems.update(self._update_on_demand())
        for name, relay in self.relays.items():
            publishers, subscriptions = demand.remote_peers(self.graph.endpoints(name))
            relay.count_relayed(len(publishers), len(subscriptions))
        for name, reason in problems.items():
            if self._reported.get(name) != reason:
                _logger.warning("not bridging %s yet: %s", name, reason)
        self._reported = problems
        self._check_connection()

    def _start(self, spec: TopicSpec, why: str = "") -> str:
        """Start the relay of ``spec``; return why it could not start ("" if it did)."""
        try:
            relay = self.relays[spec.name] = TopicRelay(self.context, spec)
        except (AgnoshmError, ValueError, TypeError) as err:  # unknown type, bad definition
            return f"{type(err).__name__}: {err}"
        print(f"bridging {spec.name} [{spec.type_name}] "
              f"{'transient_local' if spec.transient_local else 'volatile'} depth {spec.depth} "
              f"on Zenoh key {relay.key}{why}", flush=True)
        self._check_hashes(relay)
        return ""

    def _update_on_demand(self) -> dict[str, str]:
        """Announce the local endpoints; start and stop the on-demand relays."""
        from agnoshm import context

        configured = {t.name for t in self.options.topics}
        local = demand.local_topics(context.get_runtime().registry)
        self.announcer.update(local)
        problems = {}
        for name in sorted(self.on_demand - set(local)):
            self._stop(name)
        for name, topic in local.items():
            if name in configured:
                continue
            endpoints = self.graph.endpoints(name)
            want = demand.wanted(topic, endpoints)
            if want and name not in self.relays:
                spec = TopicSpec(name, topic.type_name, self.options.depth,
                                 topic.transient_local or demand.remote_transient_local(endpoints))
                problem = self._start(spec, " (on demand)")
                if problem:
                    problems[name] = problem
                else:
                    self.on_demand.add(name)
            elif not want and name in self.on_demand:
                self._stop(name)
            elif name in self.relays:
                self._check_hashes(self.relays[name])
        return problems

    def _stop(self, name: str) -> None:
        """Stop an on-demand relay: no publisher on one side with a subscription on the other."""
        self.relays.pop(name).close()
        self.on_demand.discard(name)
        print(f"stopped bridging {name}: no publisher on one side of Zenoh with a subscription "
              "on the other", flush=True)

    def _check_hashes(self, relay: TopicRelay) -> None:
        dds_type = dds_type_name(relay.spec.type_name)
        found = list(mismatches(self.graph.endpoints(relay.spec.name), dds_type, relay.type_hash))
        keys = {entity.key for entity in found}
        for key, entity in list(self.mismatched.items()):  # gone from the graph: forget them
            if entity.topic == relay.spec.name and key not in keys:
                del self.mismatched[key]
        for entity in found:
            if entity.key in self.mismatched:
                continue
            self.mismatched[entity.key] = entity
            _logger.warning(
                "type mismatch on %s: remote %s uses %s %s, this bridge %s %s; their Zenoh keys "
                "differ, so no message flows between them. Use the same message definition on "
                "both sides (the same ROS 2 distro, or the same .msg)", relay.spec.name,
                describe(entity), entity.type_name, entity.type_hash, dds_type, relay.type_hash)

    def _check_connection(self) -> None:
        if not self.options.connect:
            return
        connected = is_connected(self.session)
        if connected != self._connected:
            where = ", ".join(self.options.connect)
            if connected:
                print(f"connected to Zenoh at {where}", flush=True)
            else:
                _logger.warning("no Zenoh router or peer answers at %s yet; still trying (start "
                                "the router: ros2 run rmw_zenoh_cpp rmw_zenohd, or fix --connect)",
                                where)
            self._connected = connected

    def safe_update(self) -> None:
        """:meth:`update`, logging instead of raising (the bridge stays up)."""
        try:
            self.update()
        except Exception:
            _logger.exception("bridge update failed; retrying at the next period")

    # -- running --------------------------------------------------------------------------------------
    def spin(self, period_sec: float = DEFAULT_PERIOD_SEC) -> None:
        """Relay until :attr:`stop` is set or a signal stops agnoshm."""
        import agnoshm

        if self.node is None:
            return
        self.update()
        timer = self.node.create_timer(period_sec, self.safe_update)
        try:
            while not self.stop.is_set() and agnoshm.ok():
                agnoshm.spin_once(self.node, timeout_sec=0.5)
        finally:
            self.node.destroy_timer(timer)

    def stats(self) -> dict[str, dict]:
        """Counters per relayed topic (see :class:`~agnoshm.zenoh.relay.RelayStats`)."""
        import dataclasses

        return {name: dataclasses.asdict(relay.stats) for name, relay in self.relays.items()}

    def close(self) -> None:
        """Undeclare everything, destroy the node and close the session (if it opened it).

        The session is closed even if a step before fails (which then raises): its callback
        threads (eclipse-zenoh runs Python callbacks on non-daemon threads) end only with
        their subscribers, and a process exit waits for them forever.
        """
        try:
            relays = list(self.relays.values())
            self.relays.clear()
            for relay in relays:
                relay.close()
            if self.announcer is not None:
                self.announcer.close()
            if self.graph is not None:
                self.graph.close()
            for declared in (self._node_token,):
                if declared is not None:
                    try:
                        declared.undeclare()
                    except Exception as err:
                        _logger.debug("undeclare of the node token: %s", err)
            self._node_token = None
            if self.node is not None:
                node, self.node = self.node, None
                node.destroy_node()
        finally:
            session, self.session = self.session, None
            if self._owns_session and session is not None:
                session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _local_type(topic: str) -> str | None:
    """The type of the agnoshm topic ``topic`` in this domain, if it has one (the registry
    keeps a topic's type while it has endpoints)."""
    from agnoshm import context

    found = context.get_runtime().registry.read_topic(topic)
    return (found.type_name or None) if found is not None else None
