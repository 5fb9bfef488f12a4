"""Service clients, shaped like ``rclpy.client.Client``: ``call``, ``call_async``,
``wait_for_service``, ``service_is_ready``; zero copies both ways.

A call is one message on the service's request topic: the ``pkg/srv/Name_Call`` envelope
(loaned in this process's pool) holding this client's id, the call's sequence number and
the request.  The server answers on the reply topic with a ``pkg/srv/Name_Reply`` loaned
in *its* pool; every client of the service sees every reply and keeps those with its id,
matching them to calls by sequence number (as rmw's DDS clients do).  The future's result
is the received ``response`` view, read in place in the server's pool.

Replies are dispatched by the thread that serves :mod:`agnoshm.aio` (it sleeps on the
process's doorbell while calls are pending), not by an executor: ``call()`` works in a
plain script, inside a callback of a spinning node, and from several threads at once.
A second thread (``agnoshm-services``, alive while calls are pending) checks every
:data:`SERVER_CHECK_SEC` that each pending call's server still exists, and fails the call
with :class:`~agnoshm.errors.ServiceUnavailableError` when it is gone (killed, or destroyed).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import weakref

from agnoshm import aio, context
from agnoshm.errors import (
    InvalidHandleError, MessageInvalidatedError, ServiceCallbackError, ServiceTimeoutError,
    ServiceUnavailableError, TypeMismatchError,
)
from agnoshm.executors.gate import _gate
from agnoshm.msg.message import LoanedView
from agnoshm.msg.srv import STATUS_CALLBACK_RAISED, STATUS_OK, reply_topic, request_topic
from agnoshm.service_graph import mismatch_error, servers
from agnoshm.task import Future

_logger = logging.getLogger("agnoshm.client")

#: Depth of a client's reply subscription: every reply of the service passes by it.
REPLY_WINDOW = 256
#: How often a pending call's server is checked for being alive (seconds).
SERVER_CHECK_SEC = 0.25
#: How often ``wait_for_service`` looks for a server (seconds).
WAIT_POLL_SEC = 0.02


class _Pending:
    __slots__ = ("future", "servers", "seq")

    def __init__(self, future: Future, servers: frozenset, seq: int):
        self.future, self.servers, self.seq = future, servers, seq


class Client:
    """A client of one service.

    .. warning:: Users should not create a client with this constructor, instead they
       should call :meth:`agnoshm.Node.create_client`.
    """

    def __init__(self, node, srv_type, srv_name: str, depth: int, callback_group):
        self._node = node
        self._runtime = node._runtime
        self.srv_type = srv_type
        self.srv_name = srv_name
        self.callback_group = callback_group
        self._id = int.from_bytes(os.urandom(8), "little") | 1  # never 0: a zeroed envelope
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._borrowed: dict = {}  # loan -> its envelope, for borrow_loaned_request()
        self._destroyed = False
        runtime = self._runtime
        rr, rq = reply_topic(srv_name), request_topic(srv_name)
        try:  # the replies first: nothing a server sends after our first call passes by unseen
            self._replies = node.create_polling_subscription(srv_type.reply, rr, REPLY_WINDOW)
        except TypeMismatchError as err:
            raise mismatch_error(runtime, srv_type, srv_name, rr, err) from None
        try:
            self._requests = node.create_publisher(srv_type.call, rq, depth)
        except TypeMismatchError as err:
            node.destroy_subscription(self._replies)
            raise mismatch_error(runtime, srv_type, srv_name, rq, err) from None
        except BaseException:
            node.destroy_subscription(self._replies)
            raise
        self._waiter = _ReplyWaiter(self)

    # state ---------------------------------------------------------------------------------
    def service_is_ready(self) -> bool:
        """Return True if a server of this service exists (in any process of the domain)."""
        self._check()
        return bool(servers(self._runtime, self.srv_name))

    def wait_for_service(self, timeout_sec: float | None = None) -> bool:
        """Wait until a server exists; return False if ``timeout_sec`` passed first.

        :param timeout_sec: seconds; None waits forever.
        """
        deadline = None if timeout_sec is None else time.monotonic() + timeout_sec
        while not self.service_is_ready():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            context.raise_if_stopped_by_signal()
            time.sleep(WAIT_POLL_SEC if deadline is None
                       else max(0.0, min(WAIT_POLL_SEC, deadline - time.monotonic())))
        return True

    # requests ------------------------------------------------------------------------------
    def borrow_loaned_request(self):
        """A writable request in this process's pool; send it with :meth:`call` or
        :meth:`call_async` (it is invalid afterwards)."""
        self._check()
        envelope = self._requests.borrow_loaned_message()
        self._borrowed[envelope._owner] = envelope
        return envelope.request

    def call_async(self, request) -> Future:
        """Send ``request``; return a :class:`~agnoshm.Future` of the response.

        ``request`` is a loan from :meth:`borrow_loaned_request` (sent in place), or any
        value the request type accepts (a dict, an rclpy request, a view; None for
        defaults), copied into a loan.  The future's result is a read-only view of the
        response in the server's pool; it fails with :class:`ServiceCallbackError` if the
        server's callback raised, and with :class:`ServiceUnavailableError` if there is no
        server, or the server goes away before it answers.
        """
        self._check()
        envelope = self._envelope_for(request)
        future = Future()
        live = frozenset(s.index for s in servers(self._runtime, self.srv_name))
        if not live:
            envelope._owner.discard()
            future.set_exception(ServiceUnavailableError(
                f"service {self.srv_name} has no server: start one, or wait for it first "
                f"(client.wait_for_service(timeout_sec))"))
            return future
        seq = next(self._seq)
        envelope.client_id = self._id
        envelope.sequence_number = seq
        with self._lock:
            self._pending[seq] = _Pending(future, live, seq)
        self._waiter.arm()
        try:
            self._requests.publish(envelope)
        except BaseException:
            with self._lock:
                self._pending.pop(seq, None)
            raise
        _supervisor_for(self._runtime).watch(self)
        return future

    def call(self, request, timeout_sec: float | None = None):
        """Send ``request`` and wait for the response; return it (a read-only view).

        Works without spinning the node (replies do not need an executor), also inside
        a callback of a spinning node.  Waits for a server first if none exists yet.

        :raises ServiceTimeoutError: no server appeared, or none answered, in ``timeout_sec``.
        :raises ServiceCallbackError: the server's callback raised (the message names it).
        :raises ServiceUnavailableError: the server went away before it answered.
        """
        deadline = None if timeout_sec is None else time.monotonic() + timeout_sec
        if not self.wait_for_service(timeout_sec):
            raise ServiceTimeoutError(
                f"no server of service {self.srv_name} ({self.srv_type.type_name}) appeared "
                f"within {timeout_sec} s: start the server, check the service name and "
                f"ROS_DOMAIN_ID, or give a longer timeout_sec")
        future = self.call_async(request)
        done = threading.Event()
        future._add_waker(lambda _f: done.set())
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not done.wait(remaining):
            self.remove_pending_request(future)
            raise ServiceTimeoutError(
                f"service {self.srv_name} did not answer within {timeout_sec} s (its server "
                f"runs but is busy or stuck): give a longer timeout_sec, or check the server")
        return future.result()

    def remove_pending_request(self, future: Future) -> None:
        """Forget a pending call (its reply, if it comes, is dropped); cancels ``future``."""
        with self._lock:
            for seq, pending in list(self._pending.items()):
                if pending.future is future:
                    del self._pending[seq]
        future.cancel()

    def _envelope_for(self, request):
        if isinstance(request, LoanedView):
            envelope = self._borrowed.pop(request._owner, None)
            if envelope is not None and request._address == envelope.request._address:
                return envelope
            if envelope is not None:
                self._borrowed[request._owner] = envelope
            raise MessageInvalidatedError(
                f"this {request._type_name} was not borrowed from this client of "
                f"{self.srv_name} (borrow_loaned_request()), or it was sent already: borrow a "
                f"new one, or pass a dict of its fields to copy them")
        envelope = self._requests.borrow_loaned_message()
        try:
            envelope.request = {} if request is None else request
        except BaseException:
            envelope._owner.discard()
            raise
        return envelope

    # replies -------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        """Take every waiting reply; complete the calls of ours (run by the reply thread)."""
        take = self._replies.take
        while True:
            try:
                msg = take()
            except InvalidHandleError:
                return
            if msg is None:
                return
            if msg.client_id != self._id:
                continue
            with self._lock:
                pending = self._pending.pop(msg.sequence_number, None)
            if pending is None:
                continue  # timed out or removed meanwhile
            status = msg.status
            if status == STATUS_OK:
                pending.future.set_result(msg.response)
            else:
                what = "raised" if status == STATUS_CALLBACK_RAISED else "gave no valid response"
                pending.future.set_exception(ServiceCallbackError(
                    f"the server of service {self.srv_name} failed to answer call "
                    f"#{pending.seq}: its callback {what}: {msg.error}"))

    def _has_pending(self) -> bool:
        return bool(self._pending)

    def _check_servers(self) -> bool:
        """Fail the pending calls whose server is gone; False once none is pending."""
        if not self._pending:
            return False
        try:
            live = {s.index for s in servers(self._runtime, self.srv_name)}
        except Exception:  # noqa: BLE001  (the runtime is closing: destroy() fails them)
            return False
        with self._lock:
            orphans = [p for p in self._pending.values() if not p.servers & live]
        if orphans:
            self._dispatch()  # a reply sent just before the server went is not lost
            with self._lock:
                orphans = [self._pending.pop(p.seq) for p in orphans if p.seq in self._pending]
            for pending in orphans:
                pending.future.set_exception(ServiceUnavailableError(
                    f"the server of service {self.srv_name} went away (its process ended or it "
                    f"was destroyed) before it answered call #{pending.seq}: call again once a "
                    f"server runs (client.wait_for_service())"))
        return bool(self._pending)

    # lifetime ------------------------------------------------------------------------------
    def _check(self) -> None:
        if self._destroyed:
            raise InvalidHandleError(f"client of {self.srv_name} was destroyed "
                                     f"(destroy_client or destroy_node); create a new one")

    def _close(self) -> None:
        """Fail pending calls and forget loans (the node destroys the endpoints)."""
        self._destroyed = True
        self._waiter.disarm()
        with self._lock:
            pending, self._pending = list(self._pending.values()), {}
        for loan in list(self._borrowed):
            loan.discard()
        self._borrowed.clear()
        for p in pending:
            p.future.set_exception(InvalidHandleError(
                f"client of {self.srv_name} was destroyed before call #{p.seq} was answered"))

    def destroy(self) -> None:
        self._node.destroy_client(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()

    def __repr__(self) -> str:
        return f"<agnoshm.Client {self.srv_name} [{self.srv_type.type_name}]>"


class _ReplyWaiter:
    """Registered with :mod:`agnoshm.aio`'s doorbell thread while calls are pending."""

    __slots__ = ("client", "_watcher")

    def __init__(self, client: Client):
        self.client = client
        self._watcher = None

    def arm(self) -> None:
        self._watcher = aio._watcher_for(self.client._runtime)
        self._watcher.add(self)

    def disarm(self) -> None:
        if self._watcher is not None:
            self._watcher.discard(self)

    def ready(self) -> bool:
        sub = self.client._replies
        return sub._port is None or sub.has_data()

    def wake(self) -> None:  # in the doorbell thread; it forgot us: come back if still needed
        client = self.client
        try:
            client._dispatch()
        except Exception:  # noqa: BLE001  (never kill the doorbell thread)
            _logger.exception("dispatching the replies of %s failed", client.srv_name)
        if client._has_pending() and not client._destroyed:
            try:
                self._watcher.add(self)
            except Exception:  # noqa: BLE001  (shut down: destroy() fails the calls)
                pass


class _Supervisor:
    """One thread per runtime: while calls are pending, checks that their servers live."""

    def __init__(self, runtime):
        self.runtime = runtime
        self._cond = threading.Condition(threading.Lock())
        self._clients: "weakref.WeakSet[Client]" = weakref.WeakSet()
        self.stopped = False
        self._thread = threading.Thread(target=self._run, name="agnoshm-services", daemon=True)
        self._thread.start()

    def watch(self, client: Client) -> None:
        with self._cond:
            if client not in self._clients:
                self._clients.add(client)
                self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self.stopped = True
            self._cond.notify()

    def _run(self) -> None:
        ticket = _gate.new_pass()
        while True:
            with self._cond:
                while not self._clients and not self.stopped:
                    self._cond.wait()
                if self.stopped:
                    return
                self._cond.wait(SERVER_CHECK_SEC)
                clients = list(self._clients)
            if not _gate.enter(ticket, self.runtime):
                return
            try:
                idle = [c for c in clients if not c._check_servers()]
            finally:
                _gate.leave(ticket)
            with self._cond:
                for client in idle:
                    if not client._has_pending():
                        self._clients.discard(client)


_supervisor: _Supervisor | None = None
_supervisor_lock = threading.Lock()


def _supervisor_for(runtime) -> _Supervisor:
    global _supervisor
    with _supervisor_lock:
        if _supervisor is None or _supervisor.runtime is not runtime or _supervisor.stopped:
            _supervisor = _Supervisor(runtime)
            context.on_shutdown(_supervisor.stop)
        return _supervisor
