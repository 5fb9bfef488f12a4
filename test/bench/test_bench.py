"""``agnoshm bench --quick`` end to end: the JSON's shape, never the speed."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WATCHDOG = 600  # seconds; a hang guard, not a speed limit
SIZES = [64, 4096, 65536, 1 << 20, 4 << 20, 16 << 20]


def _agnoshm_objects() -> set[str]:
    """agnoshm's objects in /dev/shm (other test runs may own some: compare before/after)."""
    return set(glob.glob("/dev/shm/agnocast@*") + glob.glob("/dev/shm/agnoshm-registry-*"))


def _run(*args: str, timeout: float = WATCHDOG) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "agnoshm", "bench", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    out = folder / "quick.json"
    before = _agnoshm_objects()
    proc = _run("--quick", "--json", str(out), "--plot", str(folder / "latency.png"))
    after = _agnoshm_objects()
    return proc, out, before, after


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and value > 0


def test_quick_run_succeeds_and_prints_the_table(quick):
    proc, out, _, _ = quick
    assert proc.returncode == 0, proc.stderr
    assert "agnoshm p50" in proc.stdout and "speed-up" in proc.stdout
    assert out.is_file()


def test_quick_run_writes_a_png_plot_when_matplotlib_is_installed(quick):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (pip install matplotlib)")
    proc, out, _, _ = quick
    plot = out.parent / "latency.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", proc.stdout
    assert "plot written to" in proc.stdout


def test_json_has_the_typed_message_measurements(quick):
    _, out, _, _ = quick
    messages = json.loads(out.read_text())["messages"]
    for case in ("bytes_64B", "pointcloud2_1M", "marker_points_100k"):
        assert _positive(messages["latency"][case]["p50_us"])
    assert _positive(messages["cdr"]["ratio_p50"])
    assert set(messages["receive_side"]) == {"1KiB", "16MiB"}


def test_json_has_every_size_for_agnoshm_and_the_socket_baseline(quick):
    _, out, _, _ = quick
    results = json.loads(out.read_text())
    assert results["schema"] == "agnoshm-bench/1"
    assert "bench" in results["command"] and "--quick" in results["command"]
    assert results["timestamp"]
    for key in ("nproc", "cpu_model", "kernel", "python"):
        assert results["machine"][key]
    assert results["settings"]["sizes"] == SIZES
    for transport in ("agnoshm", "socket", "shm-copy"):
        rows = {r["size"]: r for r in results["latency"] if r["transport"] == transport}
        assert sorted(rows) == SIZES, transport
        for row in rows.values():
            assert _positive(row["p50_us"]) and _positive(row["p99_us"]), row
            assert row["p99_us"] >= row["p50_us"]
            assert row["count"] == results["settings"]["samples"]


def test_json_has_throughput_fanout_busy_poll_and_targets(quick):
    _, out, _, _ = quick
    results = json.loads(out.read_text())
    assert _positive(results["throughput"]["received_per_s"])
    fanout = results["fanout"]
    assert fanout["subscriptions"] == 64 and fanout["processes"] == 8
    assert _positive(fanout["p50_us"]) and _positive(fanout["p99_us"])
    modes = {(r["busy_poll_us"], r["size"]) for r in results["busy_poll"]}
    assert modes >= {(0, 64), (0, 1 << 20), (100, 64), (100, 1 << 20)}
    for row in results["busy_poll"]:
        assert _positive(row["p50_us"]) and row["receiver_cpu_per_s"] >= 0
    assert {t["name"].split(" ")[0] for t in results["targets"]} >= {"p50", "worst", "throughput",
                                                                      "fan-out"}


def test_nothing_is_left_in_dev_shm(quick):
    """No registry of the run's private domain, no pool of a dead process appeared."""
    _, out, before, after = quick
    domain = json.loads(out.read_text())["settings"]["ros_domain_id"]
    leaked = [p for p in sorted(after - before)
              if p.endswith(f"-domain{domain}")
              or ("agnocast@" in p and not os.path.exists(f"/proc/{p.rsplit('@', 1)[1]}"))]
    assert not leaked, f"left behind: {leaked}"


@pytest.mark.parametrize("args, message", [
    (["--sizes", "64,huge"], "not a size"),
    (["--sizes", "0"], "between 16 B"),
    (["--samples", "-3"], "not a positive integer"),
    (["--backend", "tmpfs"], "invalid choice"),
    (["--plot", "latency.svg"], "name it *.png"),
    (["--json", "/proc/no/such/dir/out.json"], "cannot create"),
])
def test_user_errors_exit_2_without_a_traceback(args, message):
    proc = _run(*args, timeout=60)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_main_returns_the_status_instead_of_exiting(capsys):
    from agnoshm.cli.main import main

    assert main(["bench", "--sizes", "nope"]) == 2
    assert main(["--version"]) == 0
    assert "agnoshm" in capsys.readouterr().out
