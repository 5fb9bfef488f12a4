"""Service servers, shaped like ``rclpy.service.Service``: ``callback(request, response)``
returns the response; zero copies both ways.

A server is a subscription on the service's request topic (the callback runs in whatever
executor spins the node) and a publisher on its reply topic (see :mod:`agnoshm.client`).
For each call it loans a ``pkg/srv/Name_Reply`` in this process's pool and hands the
callback its ``response`` to fill in place (``response.alloc("data", n)`` for a large
array: a 6 MB response costs what a small one does).  Returning another value (a dict, an
rclpy response) copies it in.  A callback that raises is logged, the client gets a
:class:`~agnoshm.errors.ServiceCallbackError` naming the exception, and the server keeps
serving.

**One server per service name.** The name is claimed with an abstract Unix socket
(``@agnoshm-service@<domain>@<name>``, atomic, gone with its process, nothing on disk), so
two servers starting at the same moment on one machine cannot both win.  The registry is
checked too, before and after the server's subscription exists, for a server in another
network namespace of the same domain; two such servers created at the same instant may
both see each other there and both refuse (each raises :class:`ServiceExistsError`; create
one again).
"""

from __future__ import annotations

import errno
import hashlib
import inspect
import logging
import socket

from agnoshm.errors import AgnoshmError, ServiceExistsError, TypeMismatchError
from agnoshm.msg.message import LoanedView
from agnoshm.msg.srv import STATUS_BAD_RESPONSE, STATUS_CALLBACK_RAISED, reply_topic, request_topic
from agnoshm.service_graph import mismatch_error, servers

_logger = logging.getLogger("agnoshm.service")

#: Depth of a server's request subscription: calls of every client wait in it.
REQUEST_WINDOW = 256
_ABSTRACT_MAX = 107  # sun_path minus the leading NUL


class Service:
    """The server of one service.

    .. warning:: Users should not create a service with this constructor, instead they
       should call :meth:`agnoshm.Node.create_service`.
    """

    def __init__(self, node, srv_type, srv_name: str, callback, depth: int, callback_group):
        self._node = node
        self.srv_type = srv_type
        self.srv_name = srv_name
        self.callback = callback
        self.callback_group = callback_group
        self._requests = self._replies = None
        runtime = node._runtime
        self._claim = _claim(runtime.config.domain_id, srv_name, runtime)
        try:
            self._refuse_if_served(runtime, 0)
            rr, rq = reply_topic(srv_name), request_topic(srv_name)
            try:
                self._replies = node.create_publisher(srv_type.reply, rr, depth)
            except TypeMismatchError as err:
                raise mismatch_error(runtime, srv_type, srv_name, rr, err) from None
            on_call = self._on_call_async if inspect.iscoroutinefunction(callback) \
                else self._on_call
            try:
                self._requests = node.create_subscription(
                    srv_type.call, rq, on_call, REQUEST_WINDOW, callback_group=callback_group)
            except TypeMismatchError as err:
                raise mismatch_error(runtime, srv_type, srv_name, rq, err) from None
            self._refuse_if_served(runtime, 1)  # a server elsewhere, created meanwhile
        except BaseException:
            self._release()
            raise

    def _refuse_if_served(self, runtime, own: int) -> None:
        found = servers(runtime, self.srv_name)
        if len(found) > own:
            mine = self._requests._port.index if self._requests is not None else -1
            others = sorted({s.node_name for s in found if s.index != mine})
            raise ServiceExistsError(
                f"service {self.srv_name} already has a server (node {', '.join(others)}): one "
                f"server per service name; destroy that one first, or use another name")

    # calls ---------------------------------------------------------------------------------
    def _begin(self, call):
        reply = self._replies.borrow_loaned_message()
        reply.client_id = call.client_id
        reply.sequence_number = call.sequence_number
        return reply

    def _on_call(self, call) -> None:
        reply = self._begin(call)
        try:
            result = self.callback(call.request, reply.response)
        except Exception as exc:  # the client hears of it; we keep serving
            self._failed(reply, exc)
        else:
            self._finish(reply, result)
        self._replies.publish(reply)

    async def _on_call_async(self, call) -> None:
        reply = self._begin(call)
        try:
            result = await self.callback(call.request, reply.response)
        except Exception as exc:
            self._failed(reply, exc)
        else:
            self._finish(reply, result)
        self._replies.publish(reply)

    def _failed(self, reply, exc: Exception) -> None:
        _logger.error("the callback of service %s raised %s: %s (the client gets an error "
                      "response)", self.srv_name, type(exc).__name__, exc, exc_info=exc)
        reply.status = STATUS_CALLBACK_RAISED
        reply.error = f"{type(exc).__name__}: {exc}"

    def _finish(self, reply, result) -> None:
        response = reply.response
        if isinstance(result, LoanedView) and result._owner is reply._owner \
                and result._address == response._address:
            return  # filled in place
        if result is None:
            problem = "returned None: return the response (the one passed in, filled)"
        else:
            try:
                reply.response = result  # the copy path: a dict, an rclpy response, a view
                return
            except (TypeError, ValueError, AttributeError, AgnoshmError) as exc:
                problem = f"returned what is not a {self.srv_type.type_name} response: {exc}"
        _logger.error("the callback of service %s %s", self.srv_name, problem)
        reply.status = STATUS_BAD_RESPONSE
        reply.error = problem

    # lifetime ------------------------------------------------------------------------------
    def _release(self) -> None:
        node = self._node
        if self._requests is not None:
            node.destroy_subscription(self._requests)
        if self._replies is not None:
            node.destroy_publisher(self._replies)
        self._requests = self._replies = None
        self._close()

    def _close(self) -> None:
        """Give the name back (the node destroys the endpoints)."""
        claim, self._claim = getattr(self, "_claim", None), None
        if claim is not None:
            claim.close()

    def destroy(self) -> None:
        self._node.destroy_service(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()

    def __repr__(self) -> str:
        return f"<agnoshm.Service {self.srv_name} [{self.srv_type.type_name}]>"


def _claim(domain_id: int, srv_name: str, runtime) -> socket.socket:
    """Bind this process's claim on ``srv_name`` (an abstract Unix socket).

    :raises ServiceExistsError: another live server (in this network namespace) holds it.
    """
    name = f"agnoshm-service@{domain_id}@{srv_name}"
    if len(name.encode()) > _ABSTRACT_MAX:
        name = f"agnoshm-service@{domain_id}@" + hashlib.sha256(srv_name.encode()).hexdigest()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        sock.bind("\0" + name)
    except OSError as err:
        sock.close()
        if err.errno != errno.EADDRINUSE:
            raise
        owners = sorted({s.node_name for s in servers(runtime, srv_name)}) or ["starting"]
        raise ServiceExistsError(
            f"service {srv_name} already has a server (node {', '.join(owners)}): one server "
            f"per service name; destroy that one first, or use another name") from None
    return sock
