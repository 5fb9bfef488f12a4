"""agnoshm services and clients on rclpy nodes: ``create_service`` and ``create_client``.

They are :class:`agnoshm.service.Service` and :class:`agnoshm.client.Client`, built on
a :class:`_RclpyHost`: the few node methods those use (create and destroy a publisher, a
callback subscription and a polling subscription), answered with this package's
endpoints on the rclpy node.  So a server's callback runs in whatever rclpy executor
spins the node (its request subscription is a :class:`~agnoshm.ros.RosSubscription`),
and a client's replies are dispatched, as on an ``agnoshm.Node``, by the thread of
:mod:`agnoshm.aio`, without spinning.

A client's ``call_async`` future is an ``agnoshm.Future``; when it completes it also
wakes the node's rclpy executor, so ``rclpy.spin_until_future_complete(node, future)``
returns at once and a coroutine callback run by rclpy that awaits it resumes (rclpy
re-runs a pending task only when its executor wakes).

Both are endpoints of the node's :class:`~agnoshm.ros.binding.NodeBinding`: destroyed
with ``node.destroy_node()``, ``rclpy.shutdown()`` and ``agnoshm.shutdown()``, or by
their own ``destroy()``.
"""

from __future__ import annotations

from agnoshm.client import Client
from agnoshm.errors import InvalidHandleError
from agnoshm.msg.srv import get_service
from agnoshm.node import SERVICE_DEPTH, Node
from agnoshm.service import Service
from agnoshm.qos import resolve_qos
from agnoshm.ros import adapter
from agnoshm.ros.binding import binding_for
from agnoshm.ros.qos import check_ros_qos
from agnoshm.topic_name import expand_topic_name, validate_full_topic_name

__all__ = ["RosClient", "create_client", "create_service"]


def create_service(node, srv_type, srv_name: str, callback, *, qos_profile=None,
                   callback_group=None):
    """Create the server of a service on an rclpy node (or an ``agnoshm.Node``).

    ``callback(request, response)`` runs in the rclpy executor that spins ``node`` and
    returns the response (fill ``response`` in place, or return a dict or an rclpy
    response to copy it in); it may be ``async def``.  See :meth:`agnoshm.Node.create_service`.

    :param srv_type: an rclpy service class (``std_srvs.srv.SetBool``), ``"pkg/srv/Name"``
        or ``agnoshm.get_service(...)``.
    :param srv_name: the service name, expanded and remapped as rclpy does for ``node``.
    :param qos_profile: a depth or a QoSProfile (rclpy's or agnoshm's): the replies kept in
        this process's pool until clients take them (default 64, ``SERVICE_DEPTH``).
    :param callback_group: an rclpy callback group; default the node's.
    :raises ServiceExistsError: the service has a server already.
    :raises TypeMismatchError: the service's clients use another service type.
    """
    if isinstance(node, Node):
        return node.create_service(srv_type, srv_name, callback, qos_profile=qos_profile,
                                   callback_group=callback_group)
    if not callable(callback):
        raise TypeError(f"callback must be callable, not {type(callback).__name__}")
    host, srv_type, name, depth = _prepare(node, srv_type, srv_name, qos_profile)
    service = Service(host, srv_type, name, callback, depth, callback_group)
    host.binding.add(service)
    return service


def create_client(node, srv_type, srv_name: str, *, qos_profile=None, callback_group=None):
    """Create a client of a service on an rclpy node (or an ``agnoshm.Node``):
    ``call``, ``call_async``, ``wait_for_service``, ``service_is_ready``.

    ``call()`` needs no spinning (also inside a callback of the spinning node);
    ``call_async()``'s future works with ``rclpy.spin_until_future_complete`` and can be
    awaited in a coroutine callback that rclpy runs.

    :param qos_profile: a depth or QoSProfile: the most calls in flight (default 64).
    :param callback_group: kept as ``client.callback_group`` (replies need no executor).
    :raises TypeMismatchError: the service's server uses another service type.
    """
    if isinstance(node, Node):
        return node.create_client(srv_type, srv_name, qos_profile=qos_profile,
                                  callback_group=callback_group)
    host, srv_type, name, depth = _prepare(node, srv_type, srv_name, qos_profile)
    client = RosClient(host, srv_type, name, depth, callback_group)
    host.binding.add(client)
    return client


class RosClient(Client):
    """A client on an rclpy node: its futures also wake the node's rclpy executor.

    .. warning:: Users should not create one with this constructor, instead they
       should call :func:`agnoshm.ros.create_client`.
    """

    def call_async(self, request):
        future = super().call_async(request)
        future._add_waker(self._node.wake_executor)
        return future


def _prepare(node, srv_type, srv_name, qos_profile):
    """Check everything and bind the node; return (host, service type, name, depth)."""
    rclpy = adapter.check_node(node)
    qos_profile = SERVICE_DEPTH if qos_profile is None else qos_profile
    check_ros_qos(qos_profile)
    depth, _ = resolve_qos(qos_profile)
    srv_type = get_service(srv_type)
    expand_topic_name(srv_name, node.get_name(), node.get_namespace())  # agnoshm's clear errors
    name = validate_full_topic_name(node.resolve_service_name(srv_name))
    return _RclpyHost(binding_for(node, rclpy)), srv_type, name, depth


class _RclpyHost:
    """What a Service or Client asks of its node, answered on an rclpy node.

    It holds the binding (which holds the rclpy node weakly): a strong reference to the
    node from here would keep it alive through the binding's registry.
    """

    def __init__(self, binding):
        self.binding = binding
        self._runtime = binding.runtime

    def _node(self):
        node = self.binding.node
        if node is None or self.binding.destroyed:
            raise InvalidHandleError(f"node {self.binding.name} was destroyed; create a new node")
        return node

    def create_publisher(self, msg_type, topic: str, qos_profile):
        return adapter.create_publisher(self._node(), msg_type, topic, qos_profile)

    def create_subscription(self, msg_type, topic: str, callback, qos_profile, *,
                            callback_group=None):
        return adapter.create_subscription(self._node(), msg_type, topic, callback, qos_profile,
                                           callback_group=callback_group)

    def create_polling_subscription(self, msg_type, topic: str, qos_profile):
        return adapter.create_polling_subscription(self._node(), msg_type, topic, qos_profile)

    def destroy_publisher(self, endpoint) -> bool:
        endpoint.destroy()
        return True

    destroy_subscription = destroy_publisher

    def destroy_service(self, service) -> bool:
        self.binding.forget(service)
        service._release()
        return True

    def destroy_client(self, client) -> bool:
        self.binding.forget(client)
        client._close()
        client._requests.destroy()
        client._replies.destroy()
        return True

    def wake_executor(self, _future=None) -> None:
        """Wake the rclpy executor of the node (a done callback of a client's futures)."""
        node = self.binding.node
        executor = None if node is None else node.executor
        wake = getattr(executor, "wake", None)
        if wake is not None:
            try:
                wake()
            except RuntimeError:  # InvalidHandle: the executor was shut down meanwhile
                pass
