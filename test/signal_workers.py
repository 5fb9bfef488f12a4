"""Standalone programs for test_signals.py: block in a spin, print ``ready``, await a signal.

    main([VARIANT, "--catch", "--own-sigterm", "--ignore-sigint"])  # flags optional

``VARIANT`` is the call that blocks: spin, spin_once, spin_until_future_complete,
single (SingleThreadedExecutor.spin), multi (MultiThreadedExecutor.spin), isolated
(CallbackIsolatedExecutor.spin), aio
(``await agnoshm.aio.receive`` in ``asyncio.run``), or thread (spin in a second
thread while the main thread waits for it).  With
``--catch`` the program ends as ROS 2 programs do, ``except (KeyboardInterrupt,
ExternalShutdownException)``, and prints what it caught.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import agnoshm


def _spin(variant: str, node) -> None:
    if variant == "spin":
        agnoshm.spin(node)
    elif variant == "spin_once":
        agnoshm.spin_once(node)  # no timeout: blocks until a callback or the signal
    elif variant == "spin_until_future_complete":
        agnoshm.spin_until_future_complete(node, agnoshm.Future())
    elif variant == "aio":
        import asyncio

        sub = node.create_polling_subscription(agnoshm.Bytes, "/nobody_publishes", 1)
        asyncio.run(agnoshm.aio.receive(sub))
    elif variant in ("single", "multi", "isolated"):
        executor = {"single": agnoshm.SingleThreadedExecutor,
                    "multi": lambda: agnoshm.MultiThreadedExecutor(num_threads=2),
                    "isolated": agnoshm.CallbackIsolatedExecutor}[variant]()
        executor.add_node(node)
        executor.spin()
    else:
        raise SystemExit(f"unknown variant {variant}")


def main(argv: list[str]) -> int:
    variant, flags = argv[0], set(argv[1:])
    if "--own-sigterm" in flags:
        signal.signal(signal.SIGTERM, lambda signum, frame: print("own handler", flush=True))
    if "--ignore-sigint" in flags:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    node = agnoshm.Node("signalled")
    node.create_subscription(agnoshm.Bytes, "/nobody_publishes", lambda msg: None, 1)
    if variant == "thread":
        caught = []

        def spin_in_thread():
            try:
                agnoshm.spin(node)
            except agnoshm.ExternalShutdownException:
                caught.append("ExternalShutdownException in thread")

        thread = threading.Thread(target=spin_in_thread)
        thread.start()
        print("ready", os.getpid(), flush=True)
        thread.join()
        print(*caught, flush=True)
        return 0
    if "--catch" not in flags:
        print("ready", os.getpid(), flush=True)
        _spin(variant, node)
        return 0
    try:
        print("ready", os.getpid(), flush=True)
        _spin(variant, node)
    except (KeyboardInterrupt, agnoshm.ExternalShutdownException) as caught:
        print("caught", type(caught).__name__, f"ok()={agnoshm.ok()}", flush=True)
    node.destroy_node()
    agnoshm.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
