"""``agnoshm bench --quick`` end to end: the JSON's shape, never the speed."""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading

import pytest
from sources import child_cwd, child_env

WATCHDOG = 600  # seconds; a hang guard, not a speed limit
SIZES = [64, 4096, 65536, 1 << 20, 4 << 20, 16 << 20]
BASELINES = ("agnoshm", "ring-floor", "socket", "shm-copy", "cdr-socket")
PEERS = {"iceoryx2": "iceoryx2", "zenoh": "zenoh", "cyclonedds": "cyclonedds"}  # name: import
NOT_INSTALLED = "not installed (pip install 'agnoshm[peers]')"
BAR = re.compile(r"\[[#.]{20}\] \d+/\d+")


def _agnoshm_objects() -> set[str]:
    """agnoshm's and the peers' objects in /dev/shm (other test runs may own some: compare
    before/after)."""
    return set(glob.glob("/dev/shm/agnocast@*") + glob.glob("/dev/shm/agnoshm-registry-*")
               + glob.glob("/dev/shm/agnoshm_bench_*") + glob.glob("/dev/shm/*.zenoh"))


def _run(*args: str, timeout: float = WATCHDOG) -> subprocess.CompletedProcess:
    """The bench's result, with its ``pid`` too (the run id its iceoryx2 objects are named by)."""
    command = [sys.executable, "-m", "agnoshm", "bench", *args]
    with subprocess.Popen(command, cwd=child_cwd(), env=child_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as child:
        try:
            stdout, stderr = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            raise
    done = subprocess.CompletedProcess(command, child.returncode, stdout, stderr)
    done.pid = child.pid
    return done


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    out = folder / "quick.json"
    before = _agnoshm_objects()
    proc = _run("--quick", "--json", str(out))  # the PNG goes next to the JSON by default
    after = _agnoshm_objects()
    return proc, out, before, after


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and value > 0


def test_quick_run_succeeds_and_prints_the_table(quick):
    proc, out, _, _ = quick
    assert proc.returncode == 0, proc.stderr
    assert "agnoshm p50" in proc.stdout and "agnoshm is" in proc.stdout
    assert out.is_file()
    assert f"results: {out.resolve()}\n" in proc.stdout


def test_the_load_average_comes_first(quick):
    proc, _, _, _ = quick
    first = proc.stdout.splitlines()[0]
    assert re.fullmatch(r"agnoshm bench on \d+ CPUs .*: load average \d+\.\d\d, \d+\.\d\d, "
                        r"\d+\.\d\d \(1, 5, 15 min\)", first), first


def test_quick_run_writes_a_png_plot_next_to_the_json_by_default(quick):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (pip install 'agnoshm[plot]')")
    import matplotlib.image

    proc, out, _, _ = quick
    plot = out.with_suffix(".png")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", proc.stdout
    assert f"plot:    {plot.resolve()}\n" in proc.stdout
    height, width, _channels = matplotlib.image.imread(plot).shape  # decodes: a valid PNG
    assert height > 100 and width > 100


def test_targets_are_in_the_json_not_in_the_terminal(quick):
    proc, out, _, _ = quick
    assert "MISSED" not in proc.stdout + proc.stderr and "target" not in proc.stdout
    assert json.loads(out.read_text())["targets"]


def _verdict(stdout: str) -> dict[str, str]:
    """The verdict's sentences by size label; the verdict must end the output."""
    head = "verdict, median (p50) latency from publish() to the subscriber's first access:"
    assert head in stdout, stdout
    lines = stdout.split(head, 1)[1].strip("\n").splitlines()
    found = {}
    for line in lines:
        match = re.fullmatch(r"  at (\d+ (?:B|KiB|MiB)): +(.+)", line)
        if match:
            found[match[1]] = match[2]
        else:
            assert line.startswith(("  (CDR + socket copy: ", "  throughput at ",
                                    "  busy-poll at ", "  agnoshm-native against ",
                                    "  the C floor (")), line
    return found


def test_the_verdict_ends_the_output_and_names_the_fastest_at_each_size(quick):
    proc, out, _, _ = quick
    from agnoshm.bench.report import SPOKEN, size_label

    results = json.loads(out.read_text())
    sentences = _verdict(proc.stdout)
    assert list(sentences) == [size_label(size) for size in SIZES]
    for size in SIZES:
        p50 = {r["transport"]: r["p50_us"] for r in results["latency"]  # floors: not rivals
               if r["size"] == size and r["transport"] not in ("ring-floor", "c-floor",
                                                                "agnoshm-native")}
        fastest = min(p50, key=p50.get)
        sentence = sentences[size_label(size)]
        if fastest == "agnoshm":
            assert sentence.startswith("agnoshm"), sentence
        else:
            spoken = SPOKEN.get(fastest, fastest)
            assert (sentence.startswith(f"{spoken} is fastest, ")
                    or sentence.startswith(f"agnoshm and {spoken} are fastest")), sentence
        assert "a socket copy" in sentence, sentence
        assert sentence.endswith("its floor (a bare ring)"), sentence
        for factor, _word in re.findall(r"(\d+(?:\.\d)?)\u00d7 (faster|slower)", sentence):
            assert float(factor) >= 1.0, sentence  # "5× slower", never "0.2x"
    assert not re.search(r"\d(\.\d+)?x\b", proc.stdout + proc.stderr)  # factors read "N× slower"


def test_the_verdict_counts_the_factor_the_right_way_round():
    from agnoshm.bench import report

    rows = [("agnoshm", 64, 200.0), ("socket", 64, 50.0), ("cdr-socket", 64, 190.0),
            ("iceoryx2", 64, 80.0),
            ("agnoshm", 1 << 24, 100.0), ("socket", 1 << 24, 5200.0), ("cdr-socket", 1 << 24, 9000.0),
            ("iceoryx2", 1 << 24, 240.0), ("rclpy", 1 << 24, 12000.0)]
    results = {"settings": {"sizes": [64, 1 << 24]},
               "latency": [{"transport": t, "size": s, "p50_us": v} for t, s, v in rows]}
    assert report.verdict(results) == [
        "  at 64 B:   a socket copy is fastest, 4.0\u00d7 faster than agnoshm; agnoshm is "
        "about as fast as CDR + socket copy",
        "  at 16 MiB: agnoshm is fastest, 2.4\u00d7 faster than iceoryx2; agnoshm is "
        "52\u00d7 faster than a socket copy and 120\u00d7 faster than rclpy"]
    assert report.compared(100.0, 20.0) == "5.0\u00d7 slower"
    assert report.compared(100.0, 104.0, "zenoh") == "about as fast as zenoh"
    assert "CDR + socket copy: " in report.verdict_text(results)


def test_help_says_where_the_plot_goes():
    proc = subprocess.run([sys.executable, "-m", "agnoshm", "bench", "--help"], cwd=child_cwd(),
                          env=child_env(COLUMNS="200"), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0
    assert "--json path with .png" in proc.stdout and "pip install 'agnoshm[plot]'" in proc.stdout
    assert "--no-plot" in proc.stdout


def test_without_matplotlib_the_run_says_so_in_one_line_and_writes_the_json(tmp_path):
    """A ``matplotlib`` package that fails to import stands in for a missing one."""
    shadow = tmp_path / "shadow" / "matplotlib"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('matplotlib is absent in this test')\n")
    env = child_env()
    env["PYTHONPATH"] = os.pathsep.join([str(shadow.parent), env["PYTHONPATH"]])  # no agnoshm
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "agnoshm", "bench", "--quick", "--latency-only",
                           "--sizes", "64", "--samples", "5", "--json", str(out)],
                          cwd=child_cwd(), env=env, capture_output=True, text=True, timeout=WATCHDOG)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["latency"]
    assert not out.with_suffix(".png").exists()
    notes = [line for line in proc.stdout.splitlines()
             if "plot" in line and not line.startswith("results: ")]
    assert notes == ["no plot: matplotlib is not installed (pip install 'agnoshm[plot]')"]


def test_plot_has_one_line_per_transport(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (pip install matplotlib)")
    import matplotlib.pyplot as plt

    from agnoshm.bench import report

    rows = [{"transport": t, "size": size, "p50_us": 10.0 + i, "p99_us": 20.0 + i}
            for i, t in enumerate(("agnoshm", "socket", "cdr-socket", "iceoryx2"))
            for size in (64, 1 << 20)]
    results = {"latency": rows, "machine": {"cpu_model": "test"}}
    saved = []
    monkeypatch.setattr(plt, "close", lambda fig: saved.append(fig))
    assert report.write_plot(results, tmp_path / "sut.png").is_file()
    ax = saved[0].axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == [f"{t} {p}" for t in ("agnoshm", "socket", "cdr-socket", "iceoryx2")
                      for p in ("p50", "p99")]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["64 B", "1 MiB"]
    renderer = saved[0].canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    assert legend.x0 >= ax.get_window_extent(renderer).x1  # right of the data, never over it
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "agnoshm", "socket", "cdr-socket", "iceoryx2"]
    plt.close(saved[0])


def test_json_has_the_typed_message_measurements(quick):
    _, out, _, _ = quick
    messages = json.loads(out.read_text())["messages"]
    for case in ("bytes_64B", "pointcloud2_1M", "marker_points_100k"):
        assert _positive(messages["latency"][case]["p50_us"])
    assert set(messages["publish_side"]) == {"image", "bytes"}
    for row in (*messages["publish_side"].values(), *messages["receive_side"].values(),
                messages["cdr"]["cdr"], messages["cdr"]["agnoshm"]):
        _check_percentiles(row)
    cdr = messages["cdr"]
    assert cdr["image_bytes"] == 1920 * 1080 * 3
    assert cdr["ratio_p50"] == pytest.approx(cdr["cdr"]["p50_us"] / cdr["agnoshm"]["p50_us"])
    assert set(messages["receive_side"]) == {"1KiB", "16MiB"}


def _check_percentiles(row: dict) -> None:
    for key in ("p50_us", "p90_us", "p99_us", "max_us"):
        assert _positive(row[key]), (key, row)
    assert row["p50_us"] <= row["p90_us"] <= row["p99_us"] <= row["max_us"], row


def test_json_has_every_size_for_agnoshm_and_the_baselines(quick):
    _, out, _, _ = quick
    results = json.loads(out.read_text())
    assert results["schema"] == "agnoshm-bench/1"
    assert "bench" in results["command"] and "--quick" in results["command"]
    assert results["timestamp"]
    for key in ("nproc", "cpu_model", "kernel", "python"):
        assert results["machine"][key]
    assert results["settings"]["sizes"] == SIZES
    for transport in BASELINES:
        rows = {r["size"]: r for r in results["latency"] if r["transport"] == transport}
        assert sorted(rows) == SIZES, transport
        count = "comparison_samples" if transport == "cdr-socket" else "samples"
        for row in rows.values():
            _check_percentiles(row)
            assert row["count"] == results["settings"][count]
    statuses = {t["transport"]: t["status"] for t in results["transports"]}
    assert all(statuses[t] == "measured" for t in BASELINES)


@pytest.mark.parametrize("peer", sorted(PEERS))
def test_json_has_each_peer_or_says_it_is_not_installed(quick, peer):
    proc, out, _, _ = quick
    results = json.loads(out.read_text())
    status = next(t for t in results["transports"] if t["transport"] == peer)
    rows = {r["size"]: r for r in results["latency"] if r["transport"] == peer}
    if not _installed(PEERS[peer]):
        assert status == {"transport": peer, "status": "not installed", "reason": NOT_INSTALLED}
        assert not rows
        assert f"{peer}: {NOT_INSTALLED}" in proc.stdout
        return
    assert status["status"] == "measured", status
    skipped = {s["size"]: s["reason"] for s in results["skipped"] if s["transport"] == peer}
    assert sorted(rows) == sorted(status["sizes"]) and sorted([*rows, *skipped]) == SIZES
    assert all(reason for reason in skipped.values())
    for row in rows.values():
        _check_percentiles(row)
        assert row["count"] == results["settings"]["comparison_samples"]


def test_rclpy_is_measured_or_skipped_with_the_reason(quick):
    proc, out, _, _ = quick
    results = json.loads(out.read_text())
    status = next(t for t in results["transports"] if t["transport"] == "rclpy")
    if _installed("rclpy"):
        assert status["status"] in ("measured", "skipped"), status
    else:
        assert status == {"transport": "rclpy", "status": "skipped",
                          "reason": "rclpy not importable (source ROS 2)"}
        assert "rclpy: skipped: rclpy not importable (source ROS 2)" in proc.stdout


def test_the_table_shows_p50_p90_p99_and_max_for_every_transport(quick):
    proc, out, _, _ = quick
    results = json.loads(out.read_text())
    assert re.search(r"\| +p50 us \| +p90 us \| +p99 us \| +max us \|", proc.stdout)
    for transport in {r["transport"] for r in results["latency"]}:
        assert re.search(rf"\|\s+{re.escape(transport)} \|", proc.stdout), transport


def test_progress_without_a_terminal_is_plain_lines(quick):
    proc, _, _, _ = quick
    assert "\r" not in proc.stderr and "\033" not in proc.stderr
    assert not BAR.search(proc.stderr)
    assert "[6/6] 16 MiB: agnoshm p50" in proc.stderr


def _run_on_a_terminal(*args: str) -> tuple[int, str]:
    """Run the bench with stderr on a pseudo-terminal; return its status and what the terminal
    received."""
    master, slave = os.openpty()
    chunks: list[bytes] = []

    def read_terminal() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                return
            if not chunk:
                return
            chunks.append(chunk)

    try:
        proc = subprocess.Popen([sys.executable, "-m", "agnoshm", "bench", *args],
                                cwd=child_cwd(), env=child_env(), stdout=subprocess.DEVNULL, stderr=slave)
    finally:
        os.close(slave)
    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    try:
        status = proc.wait(WATCHDOG)
        reader.join(WATCHDOG)
    finally:
        os.close(master)
    return status, b"".join(chunks).decode(errors="replace")


def test_progress_on_a_terminal_is_a_bar_redrawn_in_place(tmp_path):
    status, terminal = _run_on_a_terminal("--quick", "--latency-only", "--sizes", "64",
                                          "--samples", "5", "--json", str(tmp_path / "r.json"))
    assert status == 0, terminal
    bars = re.findall(r"\r\x1b\[K(\[[#.]{20}\] \d+/\d+ [^\r\n]*)", terminal)
    assert len(bars) >= 2, terminal
    assert any(bar.startswith("[....................] 0/") for bar in bars), bars
    assert re.search(r"\[#+\.*\] [1-9]\d*/\d+ ", terminal), terminal
    results = json.loads((tmp_path / "r.json").read_text())
    assert {r["transport"] for r in results["latency"]} >= set(BASELINES)
    assert results["throughput"] is None and results["messages"] is None


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
                                                                      "fan-out", "executor"}


def test_throughput_alternates_agnoshm_with_iceoryx2_round_by_round(quick):
    proc, out, _, _ = quick
    t = json.loads(out.read_text())["throughput"]
    rounds = t["rounds"]
    assert rounds == 3 and (t["size"], t["depth"]) == (4096, 100)
    from agnoshm import _native

    expected = ["agnoshm", *(["agnoshm-native"] if _native.MISSING is None else []),
                *(["iceoryx2"] if _installed("iceoryx2") else [])]
    assert [(r["transport"], r["round"]) for r in t["runs"]] == [
        (name, n) for n in range(1, rounds + 1) for name in expected]
    for run in t["runs"]:
        assert _positive(run["received_per_s"]) and run["received"] <= run["published"]
    assert t["received_per_s"] in [r["received_per_s"] for r in t["runs"]
                                   if r["transport"] == "agnoshm"]  # its median round
    assert re.search(r"\| +round 1 \| +round 2 \| +round 3 \| +median \|", proc.stdout)
    if not _installed("iceoryx2"):
        assert t["versus"] == {}
        return
    if "agnoshm-native" in expected:
        native = t["native"]["versus"]["iceoryx2"]
        assert len(native["ratios"]) == rounds and _positive(native["ratio"])
        assert re.search(r"\n  throughput at 4 KiB: agnoshm-native is .*iceoryx2 \(", proc.stdout)
    versus = t["versus"]["iceoryx2"]
    assert len(versus["ratios"]) == rounds and _positive(versus["ratio"])
    assert re.search(r"\n  throughput at 4 KiB: agnoshm is .*iceoryx2 \(", proc.stdout)
    assert "throughput at 4 KiB / iceoryx2's (median of rounds)" in {
        target["name"] for target in json.loads(out.read_text())["targets"]}


def test_busy_poll_rows_show_the_cpu_cost_beside_iceoryx2s_receive_loop(quick):
    proc, out, _, _ = quick
    results = json.loads(out.read_text())
    rows = results["busy_poll"]
    for row in rows:
        assert row["receiver_cpu_per_message_us"] > 0 and row["receiver_cpu_per_s"] >= 0
    cases = {(interval, size) for interval in (0.002, 0.0) for size in (64, 1 << 20)}
    agnoshm = {(r["interval_s"], r["size"]) for r in rows if r["transport"] == "agnoshm"
               and r["busy_poll_us"] == 100 and r["mode"] == "busy-poll 100 us"}
    assert agnoshm == cases
    assert "CPU us/msg" in proc.stdout
    from agnoshm import _native

    native = [r for r in rows if r["transport"] == "agnoshm-native"]
    if _native.MISSING is None:
        assert {(r["interval_s"], r["size"]) for r in native} == cases
        assert all(r["mode"] == "busy-poll 100 us" and r["count"] == 200 for r in native)
    else:
        assert native == []
        assert {s["size"] for s in results["skipped"]
                if s["transport"] == "agnoshm-native busy-poll"} == {64, 1 << 20}
        assert "  agnoshm-native busy-poll at 64 B, 1 MiB: skipped: agnoshm's native" in proc.stdout
    if not _installed("iceoryx2"):
        return
    peer = [r for r in rows if r["transport"] == "iceoryx2"]
    assert {(r["interval_s"], r["size"]) for r in peer} == cases
    assert all(r["mode"] == "busy-poll, receive() in a loop" and r["count"] == 200 for r in peer)
    busy = [r["transport"] for r in rows if r["busy_poll_us"] != 0]
    paths = ["agnoshm", *(["agnoshm-native"] if native else [])]
    assert busy == [*paths, "iceoryx2"] * 4  # alternated row by row
    assert re.search(r"\n  busy-poll at 64 B, no pause: agnoshm \(busy-poll 100 us\) is .*"
                     r"iceoryx2's receive\(\) loop \(p50 .*subscriber CPU .* us per message\)",
                     proc.stdout)
    names = {target["name"] for target in results["targets"]}
    assert "busy-poll p50 / iceoryx2's busy-poll p50, 64 B, pause 0 ms" in names
    if native:
        assert re.search(r"\n  busy-poll at 64 B, no pause: agnoshm-native \(busy-poll 100 us\) "
                         r"is .*iceoryx2's receive\(\) loop \(p50 .*subscriber CPU .* us per "
                         r"message\)", proc.stdout)
        target = {t["name"]: t for t in results["targets"]}[
            "agnoshm-native busy-poll p50 / iceoryx2's busy-poll p50, 64 B, pause 0 ms"]
        assert target["target"] == 1.0 and _positive(target["value"])


def test_json_has_the_executor_dispatch_against_the_raw_path(quick):
    _, out, _, _ = quick
    dispatch = json.loads(out.read_text())["dispatch"]
    assert (dispatch["size"], dispatch["batch"], dispatch["rounds"]) == (64, 200, 5)
    assert _positive(dispatch["callbacks_per_s"]) and _positive(dispatch["raw_takes_per_s"])
    for path in ("latency_spin", "latency_raw"):
        row = dispatch[path]
        assert row["count"] == 200 and 0 < row["p50_us"] <= row["p90_us"] <= row["p99_us"]
    assert dispatch["latency_ratio_p50"] == pytest.approx(
        dispatch["latency_spin"]["p50_us"] / dispatch["latency_raw"]["p50_us"])


def _mapped_by_live_processes() -> set[str]:
    """Files under /dev/shm that some running process maps (another run's live segments)."""
    mapped = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/maps") as maps:
                mapped.update(line.split()[-1] for line in maps if " /dev/shm/" in line)
        except OSError:  # gone, or not ours to read
            continue
    return mapped


def test_nothing_is_left_in_dev_shm(quick):
    """No registry of the run's private domain (a worker that left its pool or queue would have
    left its record there: the parent never joins), none of the run's own iceoryx2 objects
    (named by its pid; other test runs' benches may be making or removing theirs meanwhile),
    and no new zenoh segment that no live process maps."""
    proc, out, before, after = quick
    domain = json.loads(out.read_text())["settings"]["ros_domain_id"]
    assert not os.path.exists(f"/dev/shm/agnoshm-registry-domain{domain}")
    own = re.compile(rf"/dev/shm/agnoshm_bench_{proc.pid}[a-z]*_")
    segments = [p for p in sorted(after - before) if p.endswith(".zenoh") or own.match(p)]
    live = _mapped_by_live_processes()
    leaked = [p for p in segments if os.path.exists(p) and p not in live]
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


def test_a_peer_that_is_not_installed_is_reported_not_raised(monkeypatch):
    from agnoshm.bench import Settings, peers

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in (
        "zenoh", "rclpy") else real_find_spec(name, *a))
    rows = []
    sut = peers.measure_peer("zenoh", Settings(sizes=(64,)), "0", rows.append)
    assert sut == {"transport": "zenoh", "status": "not installed", "reason": NOT_INSTALLED}
    assert peers.status_text(sut) == NOT_INSTALLED
    sut = peers.measure_peer("rclpy", Settings(sizes=(64,)), "0", rows.append)
    assert peers.status_text(sut) == "skipped: rclpy not importable (source ROS 2)"
    assert rows == []
