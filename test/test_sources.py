"""The test helpers' children import the agnoshm this process imported (test/sources.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sources import REPO, child_cwd, child_env

import agnoshm
from agnoshm import _native

PROBE = ("import agnoshm; from agnoshm import _native; "
         "print(agnoshm.__file__); print(_native.MISSING is None)")


def test_a_child_started_with_child_env_and_child_cwd_imports_this_agnoshm():
    result = subprocess.run([sys.executable, "-c", PROBE], env=child_env(), cwd=child_cwd(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [agnoshm.__file__, str(_native.MISSING is None)]


def test_the_child_cwd_is_a_directory_outside_the_tree_with_no_agnoshm_in_it():
    sut = Path(child_cwd())  # (children may have written into it: hypothesis's .hypothesis/)
    assert sut.is_dir() and not (sut / "agnoshm").exists()
    assert REPO not in (sut, *sut.parents)
