"""The talker and listener console programs exchange messages in order and leave nothing behind."""

from __future__ import annotations

import subprocess
import sys

from sources import child_cwd, child_env


def test_talker_and_listener_exchange_twenty_messages_in_order(isolated_domain):
    listener = subprocess.Popen([sys.executable, "-m", "agnoshm.demo.listener", "--count", "20"],
                                env=child_env(), cwd=child_cwd(), stdout=subprocess.PIPE,
                                text=True)
    talker = subprocess.run([sys.executable, "-m", "agnoshm.demo.talker", "--count", "20",
                             "--rate", "200", "--wait-subscribers", "1"], env=child_env(),
                            cwd=child_cwd(), capture_output=True, text=True, timeout=120)
    out, _ = listener.communicate(timeout=120)
    assert talker.returncode == 0, talker.stderr
    assert listener.returncode == 0
    assert out.splitlines() == [f"I heard: 'Hello World: {i}'" for i in range(20)]


def test_a_ctrl_c_after_the_work_is_done_does_not_change_the_exit_status():
    # launch interrupts the others when one process fails; one that had just finished
    # was killed with -SIGINT during interpreter exit (CI, image pipeline test)
    script = ("import os, signal, sys\n"
              "from agnoshm.demo import run\n"
              "status = run('finished', lambda argv: 0)\n"
              "os.kill(os.getpid(), signal.SIGINT)\n"
              "print('still here', flush=True)\n"
              "sys.exit(status)\n")
    result = subprocess.run([sys.executable, "-c", script], env=child_env(), cwd=child_cwd(),
                            capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, "still here\n", "")
