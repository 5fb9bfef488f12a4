"""The source tree, and the agnoshm this process imported.

* ``copy_sources``: the files a package build of agnoshm reads, and a copy of them: tests that
  build the package (wheel, colcon) build a copy, so that setuptools' build/ and *.egg-info never
  land in the tree.
* ``child_env`` and ``child_cwd``: a Python child started with both imports the agnoshm this
  process imported, which is not always the tree's. CI runs pytest on an installed wheel (with
  its C extension) outside the tree, and a development checkout runs it on the tree; a child
  given ``PYTHONPATH=<tree>``, or started in the tree (``python -c`` and ``-m`` put the cwd first
  on sys.path), would import the tree's agnoshm beside a parent on the wheel's.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import agnoshm

REPO = Path(__file__).resolve().parents[1]
SOURCES = ["setup.py", "setup.cfg", "package.xml", "README.md", "pyproject.toml", "resource",
           "agnoshm", "heaphook", "launch", "config"]
#: the directory that holds the agnoshm package this process imported: site-packages for an
#: installed wheel, the tree for an editable install or a run from the tree
IMPORTED_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(agnoshm.__file__)))


def copy_sources(target: Path) -> Path:
    """Copy what a build needs (no tests, no caches) into the new directory ``target``."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "*.so")  # a build builds its own
    target.mkdir()
    for name in SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        else:
            shutil.copy2(source, target / name)
    return target


def child_env(*paths: str | os.PathLike, base: Mapping[str, str] | None = None,
              **variables: str) -> dict[str, str]:
    """Return the environment of a child that imports this process's agnoshm.

    :param paths: folders the child imports other modules from (a test folder's workers); they
        follow ``IMPORTED_ROOT`` on PYTHONPATH, so none of them can shadow agnoshm.
    :param base: the environment to start from (default ``os.environ``); its PYTHONPATH comes
        last. Pass one without PYTHONPATH to hide what it holds (ROS 2's rclpy).
    :param variables: set on top.
    :returns: ``base`` and ``variables``, with PYTHONPATH starting with ``IMPORTED_ROOT``.
    """
    env = dict(os.environ if base is None else base, **variables)
    env["PYTHONPATH"] = os.pathsep.join(
        [IMPORTED_ROOT, *map(os.fspath, paths), *filter(None, [env.get("PYTHONPATH")])])
    return env


@functools.cache
def child_cwd() -> str:
    """Return a directory of this test process's own (empty at first, removed at exit) for
    a child's cwd.

    ``python -c`` and ``python -m`` put the cwd first on sys.path, before PYTHONPATH: started in
    the tree, a child imports the tree's agnoshm whatever ``child_env`` says. Anything the child
    writes by a relative path lands here too, not in the tree or in site-packages.
    """
    path = tempfile.mkdtemp(prefix="agnoshm-test-child-")
    owner = os.getpid()  # a forked child that exits through atexit leaves it to its parent
    atexit.register(lambda: os.getpid() == owner and shutil.rmtree(path, ignore_errors=True))
    return path
