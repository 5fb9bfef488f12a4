"""asyncio: ``await receive(sub)`` and ``async for msg in messages(sub)``, across processes.

A waiting coroutine is known to wait once its waiter is registered with the
helper thread; tests check that (yielding to the loop meanwhile) before they
make anything happen, so every message arrives while the coroutine sleeps.
"""

from __future__ import annotations

import asyncio

import pytest

import agnoshm
from agnoshm import aio
from agnoshm.errors import InvalidHandleError
from executor_workers import publish, start_publisher, stop_publishers
from workers import TIMEOUT, read_header


def run(coroutine):
    """Run ``coroutine`` with a deadlock watchdog."""
    async def guarded():
        return await asyncio.wait_for(coroutine, TIMEOUT)
    return asyncio.run(guarded())


async def waiting(count: int = 1) -> None:
    """Yield to the loop until ``count`` coroutines wait in the helper thread."""
    while aio._watcher is None or len(aio._watcher._waiters) < count:
        await asyncio.sleep(0)


def test_receive_returns_a_message_published_by_another_process(isolated_domain):
    node = agnoshm.Node("n")
    sut = node.create_polling_subscription(agnoshm.Bytes, "/aio", 10)
    publisher = start_publisher(["/aio"], 5)

    async def main():
        task = asyncio.ensure_future(aio.receive(sut))
        await waiting()
        publisher[1].put(("publish", 1))
        msg = await task
        return read_header(msg.data), len(msg.data)

    assert run(main()) == ((5, 0), 64)
    stop_publishers(publisher)


def test_receive_returns_at_once_when_a_message_is_there(isolated_domain):
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/ready", 10)
    sut = node.create_polling_subscription(agnoshm.Bytes, "/ready", 10)
    publish(pub, 0, 9)
    assert read_header(run(aio.receive(sut, timeout=0)).data) == (0, 9)


def test_receive_returns_none_when_the_timeout_passes(isolated_domain):
    node = agnoshm.Node("n")
    sut = node.create_polling_subscription(agnoshm.Bytes, "/silent", 10)
    assert run(aio.receive(sut, timeout=0.01)) is None
    assert run(aio.receive(sut, timeout=0)) is None
    assert not aio._watcher._waiters


def test_messages_arrive_in_order_across_processes_and_the_loop_stays_free(isolated_domain):
    node = agnoshm.Node("n")
    sut = node.create_polling_subscription(agnoshm.Bytes, "/stream", 256)
    publisher = start_publisher(["/stream"], 1)
    try:
        async def main():
            ticked = asyncio.Event()
            ticks = 0

            async def ticker():
                nonlocal ticks
                while True:
                    ticks += 1
                    if ticks == 10:
                        ticked.set()
                    await asyncio.sleep(0)

            spinner = asyncio.ensure_future(ticker())
            first = asyncio.ensure_future(aio.receive(sut))  # nothing is published yet
            await ticked.wait()  # other tasks run while the receive waits
            assert not first.done()
            publisher[1].put(("publish", 100))
            received = [read_header((await first).data)]
            async for msg in aio.messages(sut):
                received.append(read_header(msg.data))
                if len(received) == 100:
                    break
            spinner.cancel()
            return received

        assert run(main()) == [(1, i) for i in range(100)]
    finally:
        stop_publishers(publisher)


def test_cancelling_a_waiting_receive_unregisters_it_and_loses_nothing(isolated_domain):
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/cancel", 10)
    sut = node.create_polling_subscription(agnoshm.Bytes, "/cancel", 10)

    async def main():
        task = asyncio.ensure_future(aio.receive(sut))
        await waiting()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not aio._watcher._waiters
        publish(pub, 0, 1)
        return await aio.receive(sut)

    assert read_header(run(main()).data) == (0, 1)


def test_messages_ends_when_the_subscription_is_destroyed(isolated_domain):
    node = agnoshm.Node("n")
    pub = node.create_publisher(agnoshm.Bytes, "/ending", 10)
    sut = node.create_polling_subscription(agnoshm.Bytes, "/ending", 10)

    async def main():
        received = []
        publish(pub, 0, 0)
        async for msg in aio.messages(sut):
            received.append(read_header(msg.data)[1])
            asyncio.get_running_loop().call_soon(_destroy_when_waiting, node, sut)
        return received

    assert run(main()) == [0]
    with pytest.raises(InvalidHandleError):
        run(aio.receive(sut))


def _destroy_when_waiting(node, sub):
    if aio._watcher._waiters:
        node.destroy_subscription(sub)
    else:  # the iteration has not reached its wait yet: look again on the next turn
        asyncio.get_running_loop().call_soon(_destroy_when_waiting, node, sub)


def test_shutdown_ends_every_wait(isolated_domain):
    node = agnoshm.Node("n")
    subs = [node.create_polling_subscription(agnoshm.Bytes, f"/down{k}", 10) for k in range(2)]

    async def iterate(sub):
        return [msg async for msg in aio.messages(sub)]

    async def main():
        tasks = [asyncio.ensure_future(iterate(subs[0])), asyncio.ensure_future(aio.receive(subs[1]))]
        await waiting(2)
        agnoshm.shutdown()
        return await asyncio.gather(*tasks, return_exceptions=True)

    streamed, received = run(main())
    assert streamed == []
    assert isinstance(received, InvalidHandleError)
    assert aio._watcher.stopped


def test_two_subscriptions_wait_side_by_side(isolated_domain):
    node = agnoshm.Node("n")
    subs = [node.create_polling_subscription(agnoshm.Bytes, f"/side{k}", 10) for k in range(2)]
    publisher = start_publisher(["/side0", "/side1"], 2)

    async def main():
        tasks = [asyncio.ensure_future(aio.receive(sub)) for sub in subs]
        await waiting(2)
        publisher[1].put(("publish", 1))
        return [read_header(msg.data) for msg in await asyncio.gather(*tasks)]

    assert run(main()) == [(2, 0), (2, 0)]
    stop_publishers(publisher)


def test_a_new_agnoshm_after_shutdown_gets_a_new_helper_thread(isolated_domain):
    node = agnoshm.Node("first")
    sub = node.create_polling_subscription(agnoshm.Bytes, "/again", 10)
    assert run(aio.receive(sub, timeout=0.001)) is None
    first = aio._watcher
    agnoshm.shutdown()
    node = agnoshm.Node("second")
    pub = node.create_publisher(agnoshm.Bytes, "/again", 10)
    sub = node.create_polling_subscription(agnoshm.Bytes, "/again", 10)

    async def main():
        task = asyncio.ensure_future(aio.receive(sub))
        await waiting()
        publish(pub, 0, 3)
        return await task

    assert read_header(run(main()).data) == (0, 3)
    assert aio._watcher is not first and first.stopped
