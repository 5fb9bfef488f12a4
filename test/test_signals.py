"""SIGINT and SIGTERM stop agnoshm as they stop rclpy (agnoshm/signals.py).

Real programs (test/signal_workers.py) block in a spin, get a real signal and
must end as documented, leaving nothing of their domain: no pool, no queue, no
registry. In-process tests cover the handler bookkeeping and :func:`held`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import warnings

import pytest

import agnoshm
from agnoshm import signals
from agnoshm.cli.clean import queue_exists
from sources import child_cwd, child_env
from workers import wait_until

TEST_DIR = os.path.dirname(os.path.abspath(__file__))
TIMEOUT = 120
VARIANTS = ["spin", "spin_once", "spin_until_future_complete", "single", "multi", "isolated",
            "aio"]


def _start(*args: str) -> subprocess.Popen:
    code = "import sys, signal_workers; sys.exit(signal_workers.main(sys.argv[1:]))"
    process = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=child_env(TEST_DIR),
                               cwd=child_cwd())
    line = process.stdout.readline()  # printed once the node is up and about to spin
    assert line == f"ready {process.pid}\n", (line, process.stderr.read())
    wait_until(lambda: _asleep(process.pid), what=f"process {process.pid} to block in its spin")
    return process


def _asleep(pid: int) -> bool:
    """The main thread sleeps: in a futex (the doorbell, a condition, a join) or in epoll
    (asyncio's loop), not starting up."""
    try:
        with open(f"/proc/{pid}/wchan") as f:
            wchan = f.read()
        return "futex" in wchan or "poll" in wchan
    except FileNotFoundError:
        return True  # exited: _finish reports how


def _finish(process: subprocess.Popen, signum: int) -> tuple[int, str, str]:
    process.send_signal(signum)
    out, err = process.communicate(timeout=TIMEOUT)
    return process.returncode, out, err


def _assert_nothing_left(domain: int, pid: int) -> None:
    assert not os.path.exists(f"/dev/shm/agnocast@{pid}")
    assert queue_exists(pid) is False
    assert not os.path.exists(f"/dev/shm/agnoshm-registry-domain{domain}")


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_program_blocked_in_a_spin_ends_cleanly_on_the_signal(isolated_domain, variant, signum):
    process = _start(variant, "--catch")
    code, out, err = _finish(process, signum)
    caught = "KeyboardInterrupt" if signum == signal.SIGINT else "ExternalShutdownException"
    assert (code, out) == (0, f"caught {caught} ok()=False\n"), err
    _assert_nothing_left(isolated_domain, process.pid)


def test_uncaught_sigint_ends_the_program_as_python_does_after_cleaning_up(isolated_domain):
    process = _start("spin")
    code, _out, err = _finish(process, signal.SIGINT)
    assert code == -signal.SIGINT and err.rstrip().endswith("KeyboardInterrupt")
    _assert_nothing_left(isolated_domain, process.pid)


def test_uncaught_sigterm_raises_external_shutdown_exception_and_exits_1(isolated_domain):
    process = _start("spin")
    code, _out, err = _finish(process, signal.SIGTERM)
    assert code == 1
    assert "agnoshm.signals.ExternalShutdownException: agnoshm was stopped by signal 15" in err
    _assert_nothing_left(isolated_domain, process.pid)


def test_a_spin_in_another_thread_raises_when_the_main_thread_gets_the_signal(isolated_domain):
    process = _start("thread")
    code, out, err = _finish(process, signal.SIGTERM)
    assert (code, out) == (0, "ExternalShutdownException in thread\n"), err
    _assert_nothing_left(isolated_domain, process.pid)


def test_the_programs_own_handler_is_called_after_agnoshm_stopped(isolated_domain):
    process = _start("spin", "--catch", "--own-sigterm")
    code, out, err = _finish(process, signal.SIGTERM)
    assert (code, out) == (0, "own handler\ncaught ExternalShutdownException ok()=False\n"), err
    _assert_nothing_left(isolated_domain, process.pid)


def test_an_ignored_sigint_stays_ignored(isolated_domain):
    process = _start("spin", "--catch", "--ignore-sigint")
    process.send_signal(signal.SIGINT)  # ignored: SIGTERM below is what ends it
    code, out, err = _finish(process, signal.SIGTERM)
    assert (code, out) == (0, "caught ExternalShutdownException ok()=False\n"), err
    _assert_nothing_left(isolated_domain, process.pid)


# -- in this process -------------------------------------------------------------------------


def test_init_installs_both_handlers_and_shutdown_puts_the_previous_ones_back(isolated_domain):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    agnoshm.init()
    assert signals.get_current_signal_handlers_options() == agnoshm.SignalHandlerOptions.ALL
    assert signal.getsignal(signal.SIGTERM) is signals._handle
    agnoshm.shutdown()
    assert signals.get_current_signal_handlers_options() == agnoshm.SignalHandlerOptions.NO
    assert {s: signal.getsignal(s) for s in before} == before


@pytest.mark.parametrize("options, warns", [(None, True), ("NO", False)])
def test_a_start_outside_the_main_thread_warns_that_no_handler_is_set(isolated_domain, options,
                                                                      warns):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    caught = []

    def start():
        with warnings.catch_warnings(record=True) as found:
            warnings.simplefilter("always")
            agnoshm.init(signal_handler_options=options and agnoshm.SignalHandlerOptions[options])
        caught.extend(found)

    thread = threading.Thread(target=start, name="starter")
    thread.start()
    thread.join(TIMEOUT)
    texts = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    if warns:
        assert len(texts) == 1 and "'starter', not the main thread" in texts[0]
        assert "signal_handler_options=SignalHandlerOptions.NO" in texts[0]
    else:
        assert texts == []
    assert {s: signal.getsignal(s) for s in before} == before
    agnoshm.shutdown()


def test_signal_handler_options_no_keeps_the_programs_handlers(isolated_domain):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    agnoshm.init(signal_handler_options=agnoshm.SignalHandlerOptions.NO)
    assert {s: signal.getsignal(s) for s in before} == before
    agnoshm.init(signal_handler_options=agnoshm.SignalHandlerOptions.SIGTERM)  # running: no-op
    agnoshm.shutdown()
    agnoshm.init(signal_handler_options=agnoshm.SignalHandlerOptions.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is signals._handle
    assert signal.getsignal(signal.SIGINT) is before[signal.SIGINT]


def test_a_signal_inside_held_is_delivered_after_the_block(isolated_domain):
    delivered = []
    with pytest.raises(KeyboardInterrupt):
        with signals.held():
            os.kill(os.getpid(), signal.SIGINT)
            delivered.append("the block ran to its end")
    assert delivered == ["the block ran to its end"]


def test_shutdown_finishes_before_a_ctrl_c_that_arrives_during_it(isolated_domain):
    node = agnoshm.Node("interrupted")
    node.create_subscription(agnoshm.Bytes, "/t", lambda msg: None, 1)
    runtime = agnoshm.context.get_runtime()
    agnoshm.context.on_shutdown(lambda: os.kill(os.getpid(), signal.SIGINT))  # mid-shutdown
    with pytest.raises(KeyboardInterrupt):
        agnoshm.shutdown()
    assert runtime.closed and not agnoshm.ok()
    assert not os.path.exists(f"/dev/shm/agnocast@{os.getpid()}")
    assert not os.path.exists(f"/dev/shm/agnoshm-registry-domain{isolated_domain}")


def test_a_sigterm_after_a_sigint_inside_held_is_delivered_too(isolated_domain):
    # SIGINT's handler raises KeyboardInterrupt; the SIGTERM held behind it still reaches
    # the program's handler, and then the KeyboardInterrupt is raised
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with pytest.raises(KeyboardInterrupt):
            with signals.held():
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGTERM)
        assert seen == [signal.SIGTERM]
        assert not signals._saved and signals._held is None  # nothing still held
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize("moment", ["taken", "released"])
def test_a_signal_inside_a_registry_update_takes_effect_after_it(isolated_domain, moment):
    # Python runs the handler between two bytecodes of the main thread: right after the
    # mutex call returns (taken), or as the release starts. A KeyboardInterrupt raised there
    # left the registry mutex locked (the bridge then hung at exit; the domain stayed wedged).
    node = agnoshm.Node("updating")
    publisher = node.create_publisher(agnoshm.Bytes, "/t", 1)
    registry = agnoshm.context.get_runtime().registry
    lock = registry.lock
    trylock, unlock = lock._trylock, lock._unlock

    def trylock_then_signal():
        result = trylock()
        lock._trylock = trylock
        signal.raise_signal(signal.SIGINT)  # Python runs the handler before this returns
        return result

    def signal_then_unlock():
        lock._unlock = unlock
        signal.raise_signal(signal.SIGINT)
        return unlock()

    if moment == "taken":
        lock._trylock = trylock_then_signal
    else:
        lock._unlock = signal_then_unlock
    generation = registry.header.generation
    with pytest.raises(KeyboardInterrupt):
        publisher._set_relayed(3)
    assert (lock._trylock, lock._unlock) == (trylock, unlock)  # the signal came
    assert registry.header.generation == generation + 1  # the update ran to its end
    assert lock._trylock() == 0 and lock._unlock() == 0  # nobody holds the mutex
    assert not agnoshm.ok()  # the signal stopped agnoshm, as anywhere else
    from agnoshm.registry import lock as lock_module
    assert lock_module.main_depth == 0 and lock_module.on_leave is None
    node.destroy_node()  # the registry still works for this process
