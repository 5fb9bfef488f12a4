"""The CLI process as a zero-copy subscriber: the session behind ``topic echo``, ``hz`` and ``bw``.

A :class:`Session` joins the domain with one hidden node
(``/_agnoshm_<verb>_<pid>``), handles SIGTERM like Ctrl-C, and leaves the
domain when it closes.  :func:`listen` resolves the topic and its type,
chooses a subscription QoS that matches the publishers, and hands each
message (a typed view, or an untyped lease for ``--raw``) to a callback.
"""

from __future__ import annotations

import os
import signal
import threading

from agnoshm.cli import CommandError
from agnoshm.cli import snapshot as S
from agnoshm.transport.waiting import wait_for_work

IDLE_S = 0.2  # the longest a listener sleeps without calling on_message(None)


def _stop(signum, frame):
    raise KeyboardInterrupt


class Session:
    """This CLI process as a member of the domain: one node, a wait loop on the doorbell,
    SIGTERM handled like Ctrl-C, and agnoshm shut down at the end if this session started it.
    """

    def __init__(self, purpose: str):
        import agnoshm

        self._started = not agnoshm.ok()
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, _stop)
        try:
            self.node = agnoshm.Node(f"_agnoshm_{purpose}_{os.getpid()}")
            self.runtime = self.node._runtime
        except BaseException:
            self.close()
            raise

    def subscribe(self, msg_type, topic: str, depth: int, durability: str):
        """A polling subscription (``take()``) on ``topic``."""
        import agnoshm

        qos = agnoshm.QoSProfile(depth=depth, durability=durability_policy(durability))
        return self.node.create_polling_subscription(msg_type, topic, qos)

    def subscribe_raw(self, topic: S.Topic, depth: int, durability: str) -> "RawSubscription":
        """A subscription that delivers leases (address, size, pool) instead of typed views."""
        port = self.runtime.create_subscriber_port(
            topic.name, topic.type_name, topic.type_hash, depth,
            int(durability_policy(durability)), self.node.get_fully_qualified_name())
        return RawSubscription(port)

    def wait_for(self, look, stop):
        """What ``look()`` finds, or None once ``stop()`` holds: the wake-up loop
        (:func:`~agnoshm.transport.waiting.wait_for_work`) on this process's doorbell."""
        return wait_for_work(self.runtime.doorbell, look, stop=stop)

    def close(self) -> None:
        import agnoshm

        node = getattr(self, "node", None)
        if node is not None:
            node.destroy_node()
        if self._started:
            agnoshm.shutdown()
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RawSubscription:
    """``take()`` returns a lease: the message's address, size and mapped pool; untyped."""

    def __init__(self, port):
        self.port = port

    def take(self):
        leases = self.port.take(1) if self.port.has_data() else []
        return leases[0] if leases else None

    def take_pending(self):
        """None: this subscription takes one lease at a time and holds none back."""
        return None

    def destroy(self) -> None:
        self.port.destroy()


def durability_policy(name: str):
    """``"volatile"`` / ``"transient_local"`` -> :class:`agnoshm.DurabilityPolicy`."""
    from agnoshm.qos import DurabilityPolicy

    return DurabilityPolicy[name.upper()]


def subscription_qos(topic: S.Topic | None, depth: int | None, durability: str | None):
    """``(depth, durability)``: what was asked, else what matches the topic's publishers."""
    pubs = topic.publishers if topic else []
    if durability is None:
        durability = "transient_local" if pubs and all(
            p.durability == "TRANSIENT_LOCAL" for p in pubs) else "volatile"
    if depth is None:
        depth = max([10] + [p.depth for p in pubs])
    return depth, durability


def resolve_topic(args):
    """``(topic name, snapshot topic or None, MessageType or None, raw)`` for a subscriber verb.

    :raises NotFoundError: for an unknown topic when no type was given.
    :raises CommandError: when the type cannot be resolved (pointing to ``--raw``).
    """
    from agnoshm.msg import get_message
    from agnoshm.errors import TypeMismatchError

    name = S.normalize_topic(args.topic)
    topic = None
    try:
        topic = S.read().topic(name)
    except (S.NoRegistryError, S.NotFoundError) as err:
        if args.type is None:
            raise type(err)(f"{err}; give its TYPE to wait for it "
                            f"(agnoshm topic {args.verb} {name} pkg/msg/Name)") from None
    type_name = args.type or topic.type_name
    if getattr(args, "raw", False):
        if topic is None:
            raise S.NotFoundError(f"--raw needs the topic {name} to exist (it takes the type "
                                  "hash from the registry)")
        return name, topic, None
    try:
        msg_type = get_message(type_name)
    except TypeMismatchError as err:
        hint = f" or print raw bytes: agnoshm topic echo {name} --raw" \
            if args.verb == "echo" else ""
        raise CommandError(f"cannot resolve {type_name}, the type of {name}: {err}"
                           f"{hint}") from None
    if topic is not None and msg_type.type_name != topic.type_name:
        raise CommandError(f"{name} carries {topic.type_name}, not {msg_type.type_name}")
    return name, topic, msg_type


def listen(args, purpose: str, on_message, on_subscribed=None) -> int:
    """Subscribe to ``args.topic`` and call ``on_message(msg)`` for each message, and
    ``on_message(None)`` at least every :data:`IDLE_S` while none comes, until it returns True or
    Ctrl-C / SIGTERM arrives; ``on_subscribed()`` runs once the subscription exists."""
    name, topic, msg_type = resolve_topic(args)
    depth, durability = subscription_qos(topic, args.qos_depth, args.qos_durability)
    with Session(purpose) as session:
        if msg_type is None:
            sub = session.subscribe_raw(topic, depth, durability)
        else:
            sub = session.subscribe(msg_type, name, depth, durability)
        if on_subscribed is not None:
            on_subscribed()

        def look():
            return sub.take(), IDLE_S

        def stop():  # runs whenever nothing was found, before sleeping at most IDLE_S
            return on_message(None)

        try:
            try:
                while (msg := session.wait_for(look, stop)) is not None:
                    while msg is not None:
                        if on_message(msg):
                            return 0  # done: what the take holds beyond is not asked for
                        msg = sub.take()
            except KeyboardInterrupt:
                pass
            _hand_out_pending(sub, on_message)
            return 0
        finally:
            sub.destroy()


def _hand_out_pending(sub, on_message) -> None:
    """Hand ``on_message`` the messages ``sub`` already took (a take holds a batch back) until it
    returns True: stopped by Ctrl-C, SIGTERM or ``on_message(None)``, a listener still sees what
    it took, as ``bag record`` writes it. A second Ctrl-C drops them."""
    try:
        while (msg := sub.take_pending()) is not None:
            if on_message(msg):
                return
    except KeyboardInterrupt:
        pass
