"""``agnoshm.Node``: the standalone node, shaped like ``rclpy.node.Node``."""

from __future__ import annotations

from agnoshm import context
from agnoshm.callback_groups import CallbackGroup, MutuallyExclusiveCallbackGroup
from agnoshm.errors import InvalidHandleError
from agnoshm.events import matched_callback
from agnoshm.matched import get_watcher
from agnoshm.msg import get_message
from agnoshm.msg.srv import get_service
from agnoshm.publisher import Publisher
from agnoshm.qos import resolve_qos
from agnoshm.subscription import PollingSubscription, Subscription
from agnoshm.timer import Timer
from agnoshm.topic_name import expand_topic_name, validate_namespace, validate_node_name

#: Default depth of services' requests and replies.  Higher than rclpy's 10: a reply waits
#: in its server's pool (no reader-side buffer as in DDS) until every client took it, and
#: the replies to all of a service's clients count against one depth.
SERVICE_DEPTH = 64


class Node:
    """A named set of publishers, subscriptions and timers; no ROS 2 needed.

    :param node_name: a ROS 2 node name (letters, digits, ``_``).
    :param namespace: the namespace relative topic names expand into.
    """

    def __init__(self, node_name: str, *, namespace: str | None = None):
        self._name = validate_node_name(node_name)
        self._namespace = validate_namespace(namespace or "/")
        self._runtime = context.get_runtime()
        self.publishers: list[Publisher] = []
        self.subscriptions: list[PollingSubscription] = []
        self.timers: list[Timer] = []
        self.services: list = []  # agnoshm.service.Service
        self.clients: list = []  # agnoshm.client.Client
        self._destroyed = False
        self._executor = None
        self._default_callback_group = MutuallyExclusiveCallbackGroup()
        context.register_node(self)

    @property
    def default_callback_group(self) -> CallbackGroup:
        """The group of entities created without ``callback_group=`` (mutually exclusive)."""
        return self._default_callback_group

    @property
    def executor(self):
        """The executor this node was last added to, or None."""
        return self._executor

    def get_name(self) -> str:
        return self._name

    def get_namespace(self) -> str:
        return self._namespace

    def get_fully_qualified_name(self) -> str:
        return f"{self._namespace.rstrip('/')}/{self._name}"

    def resolve_topic_name(self, topic: str) -> str:
        """Expand ``topic`` against this node's name and namespace and validate it."""
        return expand_topic_name(topic, self._name, self._namespace)

    def _check(self) -> None:
        if self._destroyed:
            raise InvalidHandleError(f"node {self._name!r} was destroyed; create a new node")
        if self._runtime.closed:
            raise InvalidHandleError(f"node {self._name!r} belongs to an agnoshm that was shut down")

    def _wake_executor(self) -> None:
        if self._executor is not None:
            self._executor.wake()

    def create_publisher(self, msg_type, topic: str, qos_profile, *,
                         event_callbacks=None) -> Publisher:
        """Create a zero-copy publisher.

        :param msg_type: a ROS 2 message type: ``"pkg/msg/Name"``, an rclpy or rosbags
            class, ``agnoshm.get_message(...)``, or ``agnoshm.Bytes``.
        :param topic: topic name, relative names expand against the node.
        :param qos_profile: an int depth or a ``QoSProfile`` (agnoshm's or rclpy's).
        :param event_callbacks: ``PublisherEventCallbacks(matched=cb)`` (agnoshm's or rclpy's):
            ``cb(MatchedInfo)`` runs in this node's executor when subscriptions come or go.
        :raises InvalidTopicNameError: for a bad name.
        :raises TypeMismatchError: if the topic carries another type.
        :raises UnsupportedEventTypeError: for an event agnoshm does not have.
        """
        self._check()
        msg_type = get_message(msg_type)
        topic_name = self.resolve_topic_name(topic)
        matched = matched_callback(event_callbacks, topic_name)
        depth, durability = resolve_qos(qos_profile)
        port = self._runtime.create_publisher_port(topic_name, msg_type.type_name, msg_type.type_hash,
                                                   depth, durability, self.get_fully_qualified_name())
        publisher = Publisher(self, port, msg_type, topic_name, qos_profile)
        self.publishers.append(publisher)
        if matched is not None:
            get_watcher(self._runtime).watch(publisher, matched)
        return publisher

    def _create_subscriber_port(self, msg_type, topic: str, qos_profile, event_callbacks=None,
                                ignore_local_publications: bool = False):
        self._check()
        msg_type = get_message(msg_type)
        topic_name = self.resolve_topic_name(topic)
        matched = matched_callback(event_callbacks, topic_name)
        depth, durability = resolve_qos(qos_profile)
        options = {"ignore_local": True} if ignore_local_publications else {}
        port = self._runtime.create_subscriber_port(topic_name, msg_type.type_name, msg_type.type_hash,
                                                    depth, durability, self.get_fully_qualified_name(),
                                                    **options)
        return port, msg_type, topic_name, matched

    def create_subscription(self, msg_type, topic: str, callback, qos_profile, *,
                            callback_group=None, event_callbacks=None,
                            ignore_local_publications: bool = False) -> Subscription:
        """Create a subscription whose ``callback(msg)`` runs when this node is spun.

        ``msg`` is a read-only view over the publisher's pool; keeping it (or any
        array from it) keeps the message's bytes unchanged.  ``callback`` may be
        ``async def``; the executor then drives the coroutine.

        :param callback_group: default: the node's mutually exclusive default group.
        :param event_callbacks: ``SubscriptionEventCallbacks(matched=cb)`` (agnoshm's or
            rclpy's): ``cb(MatchedInfo)`` runs in this node's executor when publishers come or go.
        :param ignore_local_publications: skip messages published by this process (rclcpp's
            ``SubscriptionOptions.ignore_local_publications``).
        """
        if not callable(callback):
            raise TypeError(f"callback must be callable, not {type(callback).__name__}")
        port, msg_type, topic_name, matched = self._create_subscriber_port(
            msg_type, topic, qos_profile, event_callbacks, ignore_local_publications)
        if callback_group is None:
            callback_group = self._default_callback_group
        sub = Subscription(self, port, msg_type, topic_name, callback, qos_profile, callback_group)
        callback_group.add_entity(sub)
        self.subscriptions.append(sub)
        if matched is not None:
            get_watcher(self._runtime).watch(sub, matched)
        self._wake_executor()
        return sub

    def create_polling_subscription(self, msg_type, topic: str, qos_profile, *,
                                    ignore_local_publications: bool = False
                                    ) -> PollingSubscription:
        """Create a subscription read with ``take()``; it never runs callbacks.

        :param ignore_local_publications: skip messages published by this process.
        """
        port, msg_type, topic_name, _ = self._create_subscriber_port(
            msg_type, topic, qos_profile, None, ignore_local_publications)
        sub = PollingSubscription(self, port, msg_type, topic_name, qos_profile)
        self.subscriptions.append(sub)
        return sub

    def create_timer(self, timer_period_sec: float, callback, callback_group=None) -> Timer:
        """Create a timer calling ``callback()`` every ``timer_period_sec`` seconds while spun."""
        self._check()
        if callback_group is None:
            callback_group = self._default_callback_group
        timer = Timer(callback, timer_period_sec, callback_group)
        callback_group.add_entity(timer)
        self.timers.append(timer)
        self._wake_executor()
        return timer

    def create_service(self, srv_type, srv_name: str, callback, *, qos_profile=None,
                       callback_group=None):
        """Create the server of a service; ``callback(request, response)`` returns the response.

        ``request`` is a read-only view in the client's pool, ``response`` a writable loan in
        this process's pool: fill it and return it (or return a dict or an rclpy response to
        copy it in).  ``callback`` may be ``async def``.  See :mod:`agnoshm.service`.

        :param srv_type: ``"pkg/srv/Name"``, an rclpy service class or ``agnoshm.get_service(...)``.
        :param qos_profile: depth (or QoSProfile): how many of its latest replies the server
            keeps in its pool until clients take them (default ``SERVICE_DEPTH``, 64; a
            server of large responses keeps depth × their size).
        :raises ServiceExistsError: the service has a server already.
        :raises TypeMismatchError: the service's clients use another service type.
        """
        from agnoshm.service import Service  # services load on first use, like agnoshm.aio

        self._check()
        if not callable(callback):
            raise TypeError(f"callback must be callable, not {type(callback).__name__}")
        srv_type = get_service(srv_type)
        name = self.resolve_topic_name(srv_name)
        depth, _ = resolve_qos(SERVICE_DEPTH if qos_profile is None else qos_profile)
        service = Service(self, srv_type, name, callback, depth,
                          callback_group or self._default_callback_group)
        self.services.append(service)
        return service

    def create_client(self, srv_type, srv_name: str, *, qos_profile=None, callback_group=None):
        """Create a client of a service: ``call``, ``call_async``, ``wait_for_service``.

        :param qos_profile: depth (or QoSProfile) of the requests kept until the server takes
            them: the most calls of this client in flight at once (default ``SERVICE_DEPTH``).
        :raises TypeMismatchError: the service's server uses another service type.
        """
        from agnoshm.client import Client  # imports asyncio (agnoshm.aio): on first use only

        self._check()
        srv_type = get_service(srv_type)
        name = self.resolve_topic_name(srv_name)
        depth, _ = resolve_qos(SERVICE_DEPTH if qos_profile is None else qos_profile)
        client = Client(self, srv_type, name, depth, callback_group or self._default_callback_group)
        self.clients.append(client)
        return client

    def destroy_service(self, service) -> bool:
        if service in self.services:
            self.services.remove(service)
            service._release()
            return True
        return False

    def destroy_client(self, client) -> bool:
        if client in self.clients:
            self.clients.remove(client)
            client._close()
            self.destroy_publisher(client._requests)
            self.destroy_subscription(client._replies)
            return True
        return False

    def count_subscribers(self, topic: str) -> int:
        return self._runtime.registry.endpoint_counts(self.resolve_topic_name(topic))[1]

    def count_publishers(self, topic: str) -> int:
        return self._runtime.registry.endpoint_counts(self.resolve_topic_name(topic))[0]

    def destroy_publisher(self, publisher: Publisher) -> bool:
        if publisher in self.publishers:
            self.publishers.remove(publisher)
            publisher.destroy()
            return True
        return False

    def destroy_subscription(self, subscription: PollingSubscription) -> bool:
        if subscription in self.subscriptions:
            self.subscriptions.remove(subscription)
            subscription.destroy()
            return True
        return False

    def _destroy_endpoint(self, endpoint) -> bool:
        if isinstance(endpoint, Publisher):
            return self.destroy_publisher(endpoint)
        return self.destroy_subscription(endpoint)

    def destroy_timer(self, timer: Timer) -> bool:
        if timer in self.timers:
            self.timers.remove(timer)
            timer.destroy()
            return True
        return False

    def destroy_node(self) -> None:
        """Destroy every entity of this node; using them afterwards raises."""
        if self._destroyed:
            return
        self._destroyed = True
        for entity in self.services + self.clients:
            entity._close()  # their endpoints are in the lists below
        self.services, self.clients = [], []
        if not self._runtime.closed:
            for entity in self.publishers + self.subscriptions:
                entity.destroy()
        else:
            for entity in self.publishers + self.subscriptions:
                entity._port = None
        for timer in self.timers:
            timer.destroy()
        self.publishers, self.subscriptions, self.timers = [], [], []
        if self._executor is not None:
            self._executor.remove_node(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy_node()

    def __repr__(self) -> str:
        return f"<agnoshm.Node {self.get_fully_qualified_name()}>"
