"""Callback groups: which callbacks an executor may run at the same time (as in rclpy).

Every subscription and timer belongs to one group; ``Node`` puts it in the
node's default group (mutually exclusive) unless ``callback_group=`` names
another.  A group may carry a ``name`` (unique within its node), by which
:class:`~agnoshm.executors.callback_isolated.CallbackIsolatedExecutor` configures
its thread.  An executor asks :meth:`CallbackGroup.can_execute` whether an
entity may start, claims the group with :meth:`~CallbackGroup.beginning_execution`
(which may refuse) and releases it with :meth:`~CallbackGroup.ending_execution`
when the callback, or the coroutine it returned, has finished.
"""

from __future__ import annotations

import re
import threading
import weakref

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class CallbackGroup:
    """Base class of callback groups: decides when the callbacks of its entities may run.

    Subclasses implement :meth:`can_execute`, :meth:`beginning_execution` and
    :meth:`ending_execution`; all three must be thread-safe.
    """

    def __init__(self, *, name: str | None = None):
        """:param name: letters, digits and ``_``, unique within the node (see
            :class:`~agnoshm.executors.callback_isolated.CallbackIsolatedExecutor`)."""
        if name is not None and not (isinstance(name, str) and _NAME.match(name)):
            raise ValueError(f"callback group name {name!r} must be letters, digits and '_', "
                             "not starting with a digit (it names the group's thread in a "
                             "thread configuration: <node>/<name>)")
        self.name = name
        self.entities: set = set()  # weak references: a group never keeps an entity alive

    def add_entity(self, entity) -> None:
        """Make ``entity`` (a subscription or timer) a member of this group."""
        self.entities.add(weakref.ref(entity, self.entities.discard))

    def has_entity(self, entity) -> bool:
        """Return True if ``entity`` is a member of this group."""
        return weakref.ref(entity) in self.entities

    def can_execute(self, entity) -> bool:
        """Return True if ``entity``'s callback could start now (a hint; see beginning_execution)."""
        raise NotImplementedError()

    def beginning_execution(self, entity) -> bool:
        """Claim the group for ``entity``'s callback; return False if it may not start now."""
        raise NotImplementedError()

    def ending_execution(self, entity) -> None:
        """Tell the group that ``entity``'s callback (claimed before) has finished."""
        raise NotImplementedError()


class ReentrantCallbackGroup(CallbackGroup):
    """Callbacks of this group may run concurrently, even the same one on several threads."""

    def can_execute(self, entity) -> bool:
        return True

    def beginning_execution(self, entity) -> bool:
        return True

    def ending_execution(self, entity) -> None:
        pass


class MutuallyExclusiveCallbackGroup(CallbackGroup):
    """At most one callback of this group runs at a time (the default group of a node)."""

    def __init__(self, *, name: str | None = None):
        super().__init__(name=name)
        self._active_entity = None
        self._token = threading.Lock()  # held from beginning to ending, by any thread

    def can_execute(self, entity) -> bool:
        return not self._token.locked()

    def beginning_execution(self, entity) -> bool:
        if self._token.acquire(False):  # positional: a keyword makes the lock parse a dict
            self._active_entity = entity
            return True
        return False

    def ending_execution(self, entity) -> None:
        if self._active_entity is not entity:
            raise RuntimeError(f"ending_execution for {entity!r}, which this group did not "
                               f"start (active: {self._active_entity!r})")
        self._active_entity = None
        self._token.release()
