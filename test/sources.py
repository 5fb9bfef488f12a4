"""The files a package build of agnoshm reads, and a copy of them: tests that build the package
(wheel, colcon) build a copy, so that setuptools' build/ and *.egg-info never land in the tree."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = ["setup.py", "setup.cfg", "package.xml", "README.md", "pyproject.toml", "resource",
           "agnoshm", "heaphook", "launch", "config"]


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
