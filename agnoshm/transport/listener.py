"""The per-process background thread.

It waits (``poll``) on this process's ``/new_publisher@<pid>`` queue, on the
memfd pool socket (memfd backend) and on a stop pipe, and at least every
``PERIOD`` seconds it reaps dead processes, reclaims messages that
subscribers released while publishers were idle, and unmaps pools of gone
processes.  So a dead process is reaped within about one second even in a
domain where nothing else happens.
"""

from __future__ import annotations

import os
import select
import threading
import time

PERIOD = 0.5


class Listener:
    def __init__(self, runtime):
        self.runtime = runtime
        self._stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._thread = threading.Thread(target=self._run, name="agnoshm-listener", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        runtime = self.runtime
        poller = select.poll()
        poller.register(self._stop_r, select.POLLIN)
        poller.register(runtime.queue.fileno(), select.POLLIN)
        server = runtime.pool_server
        if server is not None:
            poller.register(server.fileno(), select.POLLIN)
        next_housekeeping = time.monotonic() + PERIOD
        while True:
            timeout_ms = max(0, int((next_housekeeping - time.monotonic()) * 1000))
            for fd, _event in poller.poll(timeout_ms):
                if fd == self._stop_r:
                    return
                if fd == runtime.queue.fileno():
                    for pid, slot, incarnation in runtime.queue.receive_all():
                        runtime.peers.map_announced(slot, incarnation)
                elif server is not None and fd == server.fileno():
                    server.serve_pending()
            if time.monotonic() >= next_housekeeping:
                try:
                    runtime.housekeeping()
                except Exception:  # keep the thread alive; the next pass retries
                    if runtime.closed:
                        return
                next_housekeeping = time.monotonic() + PERIOD

    def stop(self) -> None:
        if self._thread.is_alive():
            os.write(self._stop_w, b"x")
            if threading.current_thread() is not self._thread:
                self._thread.join()
        os.close(self._stop_r)
        os.close(self._stop_w)
