"""agnoshm works installed the way users install it: from a wheel, in a fresh venv, run from a
directory outside the source tree (where the tree cannot shadow a module the wheel lacks).

The wheel is built from this checkout (or taken from ``$AGNOSHM_WHEEL``, which CI sets to the
wheel it built once), installed with its dependencies into a venv of the Python that runs the
tests, and then: every module of the installed packages imports (found by walking them, not
listed by hand), the installed ``talker`` and ``listener`` console scripts exchange messages,
and ``agnoshm bench`` completes its smallest run. pip needs PyPI (or a local mirror) for the
dependencies; without it the test fails with pip's own message.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from sources import REPO, copy_sources

TIMEOUT = 600

WALK = r"""
import importlib, pkgutil, sys
import agnoshm, heaphook
names = []
for package in (agnoshm, heaphook):
    names.append(package.__name__)
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if not info.name.endswith(".__main__"):  # running it is the CLI, not an import
            names.append(info.name)
extensions = 0
for name in names:
    module = importlib.import_module(name)
    assert module.__file__.startswith(sys.prefix), (name, module.__file__)
    extensions += not module.__file__.endswith(".py")  # agnoshm._native._ring, where built
print(len(names) - extensions, "modules from", agnoshm.__file__, "and", extensions, "C extension")
"""


def _run(argv, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, **kwargs)
    assert result.returncode == 0, f"{argv} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    given = os.environ.get("AGNOSHM_WHEEL")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("wheel")
    src = copy_sources(out / "src")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)])
    (built,) = out.glob("agnoshm-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv of this Python with the wheel and its dependencies; returns its bin/."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    bin_dir = env_dir / "bin"
    _run([str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheel)])
    return bin_dir


@pytest.fixture
def outside(tmp_path) -> dict:
    """Where the installed programs run: a directory outside the source tree, and an
    environment that does not point Python at the tree."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return {"cwd": tmp_path, "env": env}


def test_the_wheel_installs_every_module(installed, outside):
    result = _run([str(installed / "python"), "-c", WALK], **outside)
    count = int(result.stdout.split()[0])
    source_modules = sum(1 for path in (REPO / "agnoshm").rglob("*.py")) + \
        sum(1 for path in (REPO / "heaphook").rglob("*.py"))
    # one name per module file (a package's __init__.py counts as the package), __main__ excepted
    mains = sum(1 for path in REPO.glob("agnoshm/**/__main__.py"))
    assert count == source_modules - mains, result.stdout
    from agnoshm import _native

    if _native.MISSING is None and not os.environ.get("AGNOSHM_WHEEL"):
        # this machine builds the extension, so the wheel built here carries it
        assert result.stdout.rstrip().endswith("and 1 C extension"), result.stdout


def test_the_installed_talker_and_listener_exchange_messages(installed, outside, isolated_domain):
    listener = subprocess.Popen([str(installed / "listener"), "--count", "5", "--timeout", "120"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                **outside)
    try:
        _run([str(installed / "talker"), "--count", "5", "--rate", "100",
              "--wait-subscribers", "1"], **outside)
        out, err = listener.communicate(timeout=TIMEOUT)
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()
    assert listener.returncode == 0, err
    assert out.splitlines() == [f"I heard: 'Hello World: {i}'" for i in range(5)]


def test_the_installed_bench_completes_its_smallest_run(installed, outside, isolated_domain):
    json_path = outside["cwd"] / "bench.json"
    result = _run([str(installed / "agnoshm"), "bench", "--quick", "--latency-only",
                   "--sizes", "64", "--samples", "20", "--json", str(json_path)], **outside)
    assert json_path.is_file(), result.stdout
    assert "agnoshm" in result.stdout
