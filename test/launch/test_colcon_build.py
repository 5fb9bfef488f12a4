"""agnoshm is an ament_python package that colcon builds, installs and tests.

Runs ``.ci/colcon_check.sh`` (``colcon build`` + install checks + a short
``colcon test`` of the install, all outside the source tree), and ``colcon build`` on copies of
the repository whose config/*.yaml is broken: the build must fail with one typed
line naming the file and the key, and install neither the package nor its
scripts. Skipped, with the reason, where colcon with colcon-ros is not installed
(``pip install colcon-core colcon-ros colcon-python-setup-py``; ``$COLCON`` may name it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sources import copy_sources

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / ".ci" / "colcon_check.sh"


def _colcon() -> str | None:
    for candidate in (os.environ.get("COLCON"), shutil.which("colcon"),
                      str(Path(sys.executable).parent / "colcon")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def colcon() -> str:
    found = _colcon()
    if found is None:
        pytest.skip("colcon is not installed (pip install colcon-core colcon-ros "
                    "colcon-python-setup-py, or set COLCON)")
    usage = subprocess.run([found, "build", "--help"], capture_output=True, text=True, timeout=120)
    if "--ament-cmake-args" not in usage.stdout:  # an option colcon-ros adds
        pytest.skip("colcon-ros is not installed (pip install colcon-ros): colcon would not "
                    "build agnoshm as an ament_python package")
    return found


def _build(colcon: str, src: Path, out: Path) -> subprocess.CompletedProcess:
    out.mkdir()
    return subprocess.run([colcon, "--log-base", str(out / "log"), "build", "--base-paths", str(src),
                           "--build-base", str(out / "build"), "--install-base", str(out / "install")],
                          capture_output=True, text=True, timeout=600, cwd=out)


def test_colcon_builds_installs_and_tests_the_package(colcon, tmp_path, isolated_domain):
    env = {**os.environ, "COLCON": colcon, "AGNOSHM_COLCON_OUT": str(tmp_path / "out"),
           "AGNOSHM_COLCON_DOMAIN": str(isolated_domain)}
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env,
                            timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "colcon_check: OK" in result.stdout
    for line in ("ok: share/agnoshm/launch/image_pipeline.launch.py",
                 "ok: share/agnoshm/config/agnoshm.yaml",
                 "ok: share/ament_index/resource_index/packages/agnoshm",
                 "ok: lib/agnoshm/image_publisher", "ok: lib/agnoshm/latency_pong",
                 "ok: listener heard 3 messages in order"):
        assert line in result.stdout, output[-6000:]
    assert not any((REPO / name).exists() for name in ("build/agnoshm", "install", "log"))
    if shutil.which(os.environ.get("CC", "cc")):  # colcon builds the C message path too
        assert re.search(r"^ok: lib/python3\.\d+/site-packages/agnoshm/_native/_ring\.", result.stdout,
                         re.M), output[-6000:]
        # and colcon test runs it: the install's agnoshm, not the sources', with AGNOSHM_NATIVE=1
        assert "ok: colcon test ran agnoshm from the install with AGNOSHM_NATIVE=1" \
            in result.stdout, output[-6000:]
    else:
        assert "ok: colcon test ran agnoshm from the install (pure Python" in result.stdout, \
            output[-6000:]


def test_colcon_check_refuses_to_wipe_a_directory_it_did_not_make(colcon, tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "COLCON": colcon, "AGNOSHM_COLCON_OUT": str(precious)})
    assert result.returncode == 1
    assert f"AGNOSHM_COLCON_OUT={precious} is a non-empty directory this check did not make" \
        in result.stderr
    assert (precious / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize("file, change, error", [
    ("agnoshm.yaml", ("pool_size: 4G", "pool_size: 3M"),
     "error: ConfigError: {path}: pool_size must be a multiple of 2 MiB"),
    ("agnoshm.yaml", ("backend: shm", "backend: shm\npool_sise: 4G"),
     "error: ConfigError: {path}: unknown settings ['pool_sise']"),
    ("image_pipeline.yaml", ("rate: 30.0", "rate: fast"),
     "error: ParamsError: parameter file {path}, node camera: rate must be a number, not 'fast'"),
])
def test_colcon_build_refuses_a_broken_config_and_installs_nothing(colcon, tmp_path, file, change,
                                                                   error):
    src = copy_sources(tmp_path / "src")
    path = src / "config" / file
    text = path.read_text()
    assert change[0] in text
    path.write_text(text.replace(change[0], change[1], 1))
    result = _build(colcon, src, tmp_path / "out")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-4000:]
    assert error.format(path=path) in output, output[-4000:]
    prefix = tmp_path / "out" / "install" / "agnoshm"
    assert not (prefix / "lib" / "agnoshm").exists()
    assert not (prefix / "share" / "ament_index").exists()
    assert not list(prefix.glob("lib/python*/site-packages/agnoshm"))
