"""The report's throughput and busy-poll rows from hand-made results: tables, verdict lines,
targets and the plot's throughput panel.  No processes, no timing."""

from __future__ import annotations

import pytest

from agnoshm.bench import report
from agnoshm.bench.throughput import summarize_runs

TIMES = "\u00d7"


def _run(transport: str, number: int, rate: float) -> dict:
    return {"transport": transport, "round": number, "size": 4096, "depth": 100,
            "published": 1000, "published_per_s": 2 * rate, "received": 900,
            "received_per_s": rate, "dropped": 100}


RUNS = [_run("agnoshm", 1, 100.0), _run("iceoryx2", 1, 200.0),
        _run("agnoshm", 2, 300.0), _run("iceoryx2", 2, 300.0),
        _run("agnoshm", 3, 50.0), _run("iceoryx2", 3, 400.0)]


def test_a_peers_ratio_is_the_median_of_the_per_round_ratios():
    sut = summarize_runs(RUNS)
    assert sut["received_per_s"] == 100.0 and sut["rounds"] == 3  # agnoshm's median round
    assert "round" not in sut and sut["runs"] == RUNS
    versus = sut["versus"]["iceoryx2"]
    assert versus["ratios"] == [0.5, 1.0, 0.125]
    assert versus["ratio"] == 0.5 and versus["received_per_s"] == 300.0


def test_a_peer_that_failed_is_named_with_its_reason():
    sut = summarize_runs(RUNS[:1], {"iceoryx2": "failed: boom"})
    assert sut["versus"] == {"iceoryx2": {"status": "failed: boom"}}
    assert report.verdict_more({"throughput": sut}) == []


def test_the_throughput_table_verdict_and_target():
    t = summarize_runs(RUNS)
    table = report.throughput_table(t).splitlines()
    assert table[0].split() == ["transport", "|", "round", "1", "|", "round", "2", "|", "round",
                                "3", "|", "median", "|", "agnoshm", "is"]
    assert table[2].split("|")[-1].strip() == ""
    assert table[3].split("|")[-1].strip() == f"2.0{TIMES} slower"
    assert report.verdict_more({"throughput": t}) == [
        f"  throughput at 4 KiB: agnoshm is 2.0{TIMES} slower than iceoryx2 (100 against 300 "
        "msgs/s, median of 3 alternated rounds)"]
    targets = {r["name"]: r for r in report.check_targets(
        {"latency": [], "throughput": t})}
    ratio = targets["throughput at 4 KiB / iceoryx2's (median of rounds)"]
    assert (ratio["value"], ratio["target"], ratio["met"]) == (0.5, 1.0, False)


def _busy(transport: str, interval_s: float, p50: float, cpu: float, mode: str) -> dict:
    return {"transport": transport, "size": 64, "interval_s": interval_s, "p50_us": p50,
            "p99_us": 2 * p50, "count": 10, "receiver_cpu_per_s": 0.5,
            "receiver_cpu_per_message_us": cpu, "mode": mode,
            "busy_poll_us": {"default": 0, "busy-poll 100 us": 100}.get(mode)}


def test_busy_poll_is_compared_in_ping_pong_with_the_cpu_per_message():
    rows = [_busy("agnoshm", 0.002, 90.0, 100.0, "default"),
            _busy("agnoshm", 0.002, 80.0, 120.0, "busy-poll 100 us"),
            _busy("iceoryx2", 0.002, 20.0, 2000.0, "busy-poll, receive() in a loop"),
            _busy("agnoshm", 0.0, 30.0, 60.0, "busy-poll 100 us"),
            _busy("iceoryx2", 0.0, 10.0, 50.0, "busy-poll, receive() in a loop")]
    assert report.verdict_more({"busy_poll": rows}) == [
        f"  busy-poll at 64 B, no pause: agnoshm (busy-poll 100 us) is 3.0{TIMES} slower than "
        "iceoryx2's receive() loop (p50 30.0 against 10.0 us; subscriber CPU 60.0 against "
        "50.0 us per message)"]
    targets = {r["name"]: r["value"] for r in report.check_targets(
        {"latency": [], "busy_poll": rows})}
    assert targets["busy-poll p50 / iceoryx2's busy-poll p50, 64 B, pause 0 ms"] == 3.0
    assert targets["busy-poll p50 / iceoryx2's busy-poll p50, 64 B, pause 2 ms"] == 4.0
    text = report.text({"latency": [], "settings": {"sizes": []}, "busy_poll": rows})
    assert "| CPU us/msg" in text and "busy-poll, receive() in a loop" in text


@pytest.mark.parametrize("ratio, words", [(2.0, f"2.0{TIMES} faster"), (0.25, f"4.0{TIMES} slower"),
                                          (1.05, "about as fast")])
def test_compared_speed_never_says_a_factor_below_one(ratio, words):
    assert report.compared_speed(ratio) == words
    assert report.compared(10.0, 10.0 * ratio) == words


def test_the_plot_gets_a_throughput_panel_below_the_latency_axes(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (pip install matplotlib)")
    import matplotlib.pyplot as plt

    rows = [{"transport": t, "size": 64, "p50_us": 10.0, "p99_us": 20.0}
            for t in ("agnoshm", "iceoryx2")]
    results = {"latency": rows, "machine": {"cpu_model": "test"},
               "throughput": summarize_runs(RUNS)}
    saved = []
    monkeypatch.setattr(plt, "close", lambda fig: saved.append(fig))
    assert report.write_plot(results, tmp_path / "sut.png").is_file()
    latency, bars = saved[0].axes
    assert [line.get_label() for line in latency.get_lines()][:2] == ["agnoshm p50", "agnoshm p99"]
    assert [t.get_text() for t in bars.get_yticklabels()] == ["agnoshm", "iceoryx2"]
    assert [p.get_width() for p in bars.patches] == [100.0, 300.0]
    plt.close(saved[0])


NATIVE_RUNS = [*RUNS, _run("agnoshm-native", 1, 400.0), _run("agnoshm-native", 2, 600.0),
               _run("agnoshm-native", 3, 800.0)]


def test_the_native_path_is_compared_with_the_peers_in_its_own_rounds():
    sut = summarize_runs(NATIVE_RUNS)
    assert sut["received_per_s"] == 100.0 and set(sut["versus"]) == {"iceoryx2"}
    native = sut["native"]
    assert native["transport"] == "agnoshm-native" and native["received_per_s"] == 600.0
    assert native["versus"]["iceoryx2"]["ratios"] == [2.0, 2.0, 2.0]
    table = report.throughput_table(sut).splitlines()
    assert [c.strip() for c in table[0].split("|")[-2:]] == ["agnoshm is", "agnoshm-native is"]
    assert [line.split("|")[0].strip() for line in table[2:]] == ["agnoshm", "iceoryx2",
                                                                  "agnoshm-native"]
    assert table[3].split("|")[-1].strip() == f"2.0{TIMES} faster"
    assert report.verdict_more({"throughput": sut})[1] == (
        f"  throughput at 4 KiB: agnoshm-native is 2.0{TIMES} faster than iceoryx2 (600 against "
        "300 msgs/s, median of 3 alternated rounds)")
    targets = {r["name"]: r for r in report.check_targets({"latency": [], "throughput": sut})}
    ratio = targets["agnoshm-native throughput at 4 KiB / iceoryx2's (median of rounds)"]
    assert (ratio["value"], ratio["target"], ratio["met"]) == (2.0, 1.5, True)


def test_a_native_path_that_failed_is_named_with_its_reason():
    sut = summarize_runs(RUNS, {"agnoshm-native": "failed: boom"})
    assert sut["native"] == {"status": "failed: boom"} and set(sut["versus"]) == {"iceoryx2"}
    assert "agnoshm-native is" not in report.throughput_table(sut)


def _latency(transport: str, size: int, p50: float, p99: float) -> dict:
    return {"transport": transport, "size": size, "p50_us": p50, "p99_us": p99}


PATH_ROWS = [_latency("agnoshm", 64, 100.0, 400.0), _latency("agnoshm-native", 64, 40.0, 100.0),
             _latency("iceoryx2", 64, 50.0, 200.0), _latency("ring-floor", 64, 45.0, 90.0),
             _latency("c-floor", 64, 10.0, 20.0),
             _latency("agnoshm", 4096, 60.0, 150.0), _latency("iceoryx2", 4096, 60.0, 100.0),
             _latency("c-floor", 4096, 12.0, 30.0)]


def test_the_paths_table_puts_both_paths_iceoryx2_and_the_floors_side_by_side():
    table = report.paths_table({"settings": {"sizes": [64, 4096]}, "latency": PATH_ROWS})
    header, _rule, small, large = table.splitlines()
    assert [c.strip() for c in header.split("|")] == [
        "size", "agnoshm", "agnoshm-native", "iceoryx2", "ring-floor", "c-floor", "agnoshm is",
        "agnoshm-native is"]
    assert [c.strip() for c in small.split("|")] == [
        "64 B", "100.0 / 400.0", "40.0 / 100.0", "50.0 / 200.0", "45.0 / 90.0", "10.0 / 20.0",
        f"2.0{TIMES} slower", f"1.2{TIMES} faster"]
    assert [c.strip() for c in large.split("|")] == [
        "4 KiB", "60.0 / 150.0", "-", "60.0 / 100.0", "-", "12.0 / 30.0", "about as fast", "-"]


def test_the_paths_verdict_and_the_ratio_targets_of_issues_16_and_19():
    results = {"settings": {"sizes": [64, 4096]}, "latency": PATH_ROWS}
    assert report.paths_verdict(results) == [
        f"  agnoshm-native against iceoryx2, p50: 1.2{TIMES} faster at 64 B",
        "  the C floor (a futex ping-pong between two C processes), p50 10.0-12.0 us: "
        f"agnoshm's is 5.0{TIMES}-10{TIMES} it, agnoshm-native's is 4.0{TIMES} it"]
    targets = {r["name"]: (r["value"], r["target"]) for r in report.check_targets(results)}
    assert targets["agnoshm p50 / iceoryx2's p50, 64 B"] == (2.0, 1.0)
    assert targets["agnoshm p99 / iceoryx2's p99, 4 KiB"] == (1.5, 1.0)
    assert targets["agnoshm-native p50 / iceoryx2's p50, 64 B"] == (0.8, 0.8)
    assert targets["agnoshm-native p99 / iceoryx2's p99, 64 B"] == (0.5, 0.8)
    assert "agnoshm-native p50 / iceoryx2's p50, 4 KiB" not in targets
    verdict = report.verdict(results)
    assert verdict[0].startswith("  at 64 B:  iceoryx2 is fastest")  # no floor, no own path


NATIVE_BUSY = [_busy("agnoshm", 0.0, 30.0, 60.0, "busy-poll 100 us"),
               _busy("agnoshm-native", 0.0, 12.0, 40.0, "busy-poll 100 us"),
               _busy("iceoryx2", 0.0, 10.0, 50.0, "busy-poll, receive() in a loop"),
               _busy("agnoshm", 0.002, 80.0, 120.0, "busy-poll 100 us"),
               _busy("agnoshm-native", 0.002, 40.0, 90.0, "busy-poll 100 us"),
               _busy("iceoryx2", 0.002, 20.0, 2000.0, "busy-poll, receive() in a loop")]


def test_native_busy_poll_is_compared_with_iceoryx2s_loop_never_taken_for_a_peer():
    lines = report.verdict_more({"busy_poll": NATIVE_BUSY})
    assert lines == [
        f"  busy-poll at 64 B, no pause: agnoshm (busy-poll 100 us) is 3.0{TIMES} slower than "
        "iceoryx2's receive() loop (p50 30.0 against 10.0 us; subscriber CPU 60.0 against "
        "50.0 us per message)",
        f"  busy-poll at 64 B, no pause: agnoshm-native (busy-poll 100 us) is 1.2{TIMES} slower "
        "than iceoryx2's receive() loop (p50 12.0 against 10.0 us; subscriber CPU 40.0 against "
        "50.0 us per message)"]


def test_native_busy_poll_has_issue_19s_target_beside_issue_16s():
    targets = {r["name"]: r for r in report.check_targets(
        {"latency": [], "busy_poll": NATIVE_BUSY})}
    native = targets["agnoshm-native busy-poll p50 / iceoryx2's busy-poll p50, 64 B, pause 0 ms"]
    assert (native["value"], native["target"], native["met"]) == (1.2, 1.0, False)
    paused = targets["agnoshm-native busy-poll p50 / iceoryx2's busy-poll p50, 64 B, pause 2 ms"]
    assert (paused["value"], paused["met"]) == (2.0, False)
    pure = targets["busy-poll p50 / iceoryx2's busy-poll p50, 64 B, pause 0 ms"]
    assert (pure["value"], pure["target"]) == (3.0, 1.2)
    assert len(targets) == 4


def test_the_wake_up_table_has_the_native_rows_with_their_cpu_and_the_paths_note():
    text = report.text({"latency": [], "settings": {"sizes": []}, "busy_poll": NATIVE_BUSY})
    table = text.split("busy-poll rows alternated row by row):\n", 1)[1].splitlines()
    assert [c.strip() for c in table[3].split("|")] == [
        "agnoshm-native", "busy-poll 100 us", "0 ms", "64 B", "12.0", "24.0", "50.0 %", "40.0"]
    assert [line.split("|")[0].strip() for line in table[2:8]] == [
        "agnoshm", "agnoshm-native", "iceoryx2"] * 2
    assert table[8] == report.NOTES["agnoshm-native"]


def test_the_wake_up_table_has_no_paths_note_without_native_rows():
    rows = [r for r in NATIVE_BUSY if r["transport"] != "agnoshm-native"]
    text = report.text({"latency": [], "settings": {"sizes": []}, "busy_poll": rows})
    assert report.NOTES["agnoshm-native"] not in text


def test_busy_poll_verdict_lines_go_size_by_size_pure_then_native():
    large = [{**r, "size": 1 << 20} for r in NATIVE_BUSY]
    lines = report.verdict_more({"busy_poll": large + NATIVE_BUSY})
    assert [line.split(": ")[1].split(" (")[0] for line in lines] == [
        "agnoshm", "agnoshm-native", "agnoshm", "agnoshm-native"]
    assert [line.split(",")[0] for line in lines] == [
        "  busy-poll at 64 B", "  busy-poll at 64 B", "  busy-poll at 1 MiB", "  busy-poll at 1 MiB"]
