"""The test extra keeps a pytest that launch_testing's plugin can load (issue 14, defect 7).

Every ROS 2 install has launch_testing, whose pytest plugin (entry point ``pytest11``) is
loaded by every pytest run there. Its hook ``pytest_pycollect_makemodule(path, parent)``
(Humble 1.0, Jazzy 3.4, Rolling 3.7; ros2/launch#979) uses the ``path`` argument that
pytest 9 removed: pytest 9 stops with ``PluginValidationError`` before running any test.
Disabling the plugin (``-p no:launch_testing``) would let pytest 9 start, but then the
launch_testing tests (test/launch/test_*_launch.py) are collected as plain unittest classes
and fail; so the extra pins ``pytest<9``.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]

# the shape of launch_testing's hook (launch_testing/pytest/hooks.py), without launch_testing
_LEGACY_PLUGIN = '''
def pytest_pycollect_makemodule(path, parent):
    return None
'''


def _test_extra_pytest() -> Requirement:
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "extras_require":
            extras = ast.literal_eval(node.value)
            return next(r for r in map(Requirement, extras["test"]) if r.name == "pytest")
    raise AssertionError("setup.py has no extras_require")


def test_the_test_extra_allows_no_pytest_that_refuses_launch_testing():
    specifier = _test_extra_pytest().specifier
    assert not specifier.contains("9.0.0") and not specifier.contains("9.2.0")
    assert specifier.contains("7.4.4") and specifier.contains("8.4.2")  # Jazzy's, the newest 8


def test_the_installed_pytest_loads_a_plugin_shaped_as_launch_testings(tmp_path):
    installed = Version(pytest.__version__)
    assert _test_extra_pytest().specifier.contains(installed), (
        f"pytest {installed} is outside agnoshm's test extra: pip install -e '.[test]'")
    (tmp_path / "legacy_hooks.py").write_text(_LEGACY_PLUGIN)
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "legacy_hooks",
         "-c", str(tmp_path / "pytest.ini"), str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
