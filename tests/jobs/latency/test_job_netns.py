"""The latency job against ground truth: a responder in namespace b with known delay/jitter/loss.

The job runs as a real process in namespace a (`home-monitor once latency` or the daemon); the
responder records the delay it actually applied to every request and which ones it dropped,
and the job's figures are compared with that record, not with the configured values.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.latency_netns import (
    NOBODY_GID,
    LatencyLab,
    applied_delays,
    binomial_interval,
    consecutive_jitter,
    log_lines,
    mean,
    parse_ts,
)
from tests.support.netns import NetnsPair
from tests.support.procs import stop_process, wait_until

# (delay ms, jitter ms, loss share); each gets its own address on b's loopback
SCENARIOS = {"no-delay": (0, 0, 0.0), "30ms": (30, 3, 0.05), "120ms": (120, 20, 0.30),
             "v6-30ms": (30, 3, 0.05)}
MODES = {"raw": 1, "unprivileged": 2}  # third octet of the mode's target addresses
COUNT = 300
PACKET_INTERVAL = 0.05  # 20 requests a second per target: 15 s for COUNT
PACKET_TIMEOUT = 0.5  # well above the slowest reply (140 ms), so late replies are not lost
# mean RTT and jitter vs the responder's record (issue 13's bound). Both ends take the kernel's
# arrival times (SO_TIMESTAMPNS), so neither program's wake-up counts: within 0.05 ms idle and
# with three busy loops on the 2-core test machine (see docs/latency.md, "Accuracy")
ACCURACY_MS = 0.5


def scenario_address(mode: str, scenario: str) -> str:
    number = list(SCENARIOS).index(scenario) + 1
    if scenario.startswith("v6"):
        return f"fd77:77::{MODES[mode]}:{number}"
    return f"10.77.{MODES[mode]}.{number}"


def silent_address(mode: str) -> str:
    return f"10.77.{MODES[mode]}.99"  # on b, which does not answer it


@pytest.fixture(scope="module")
def ground_truth() -> Iterator[dict[str, Any]]:
    """Both socket modes measure all scenarios at once (300 requests each)."""
    addresses = [scenario_address(mode, name) for mode in MODES for name in SCENARIOS]
    addresses += [silent_address(mode) for mode in MODES]
    profiles = [f"{scenario_address(mode, name)}:{delay}:{jitter}:{loss}"
                for mode in MODES for name, (delay, jitter, loss) in SCENARIOS.items()]
    with NetnsPair("lat") as pair:
        lab = LatencyLab(pair, addresses)
        try:
            lab.wait_ipv6_ready()  # the v6 targets are measured from the first request
            lab.ping_group_range(NOBODY_GID, NOBODY_GID)  # nobody may, root (gid 0) may not
            outputs: dict[str, Any] = {}
            with lab.responder("truth", profiles) as responder:
                procs = {}
                for mode in MODES:
                    targets = [{"host": scenario_address(mode, name), "name": name,
                                "internet": True} for name in SCENARIOS]
                    targets += [{"host": silent_address(mode), "name": "silent"},
                                "no-such-host.invalid"]
                    config = lab.write_config(f"{mode}.yml", {
                        "interval": "60s", "timeout": "60s", "count": COUNT,
                        "packet_interval": f"{PACKET_INTERVAL * 1000:g}ms",
                        "packet_timeout": f"{PACKET_TIMEOUT * 1000:g}ms",
                        "privileged": True if mode == "raw" else "auto",
                        "targets": targets})
                    procs[mode] = lab.monitor_a(
                        ["once", "latency", "--config", str(config)],
                        as_nobody=mode == "unprivileged",
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for mode, proc in procs.items():
                    stdout, stderr = proc.communicate(timeout=180)
                    assert proc.returncode == 0, f"{mode}: {stdout}\n{stderr[-2000:]}"
                    outputs[mode] = json.loads(stdout[stdout.index("{\n"):])
                record = responder.stop()
            yield {"outputs": outputs, "record": record}
        finally:
            lab.close()


def _figures(truth: dict[str, Any], mode: str, scenario: str) -> tuple[dict[str, Any], list]:
    """The job's figures and the responder's entries for the same requests: the window holds
    the first `sent` requests the target got, in sending order (the job went on probing
    until it exited, so the responder saw a few more)."""
    figures = truth["outputs"][mode]["targets"][scenario]
    entries = truth["record"][scenario_address(mode, scenario)]
    return figures, entries[:figures["sent"]]


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("mode", MODES)
def test_rtt_loss_and_jitter_match_the_responders_record(ground_truth, mode, scenario):
    _, jitter_ms, loss_share = SCENARIOS[scenario]
    assert ground_truth["outputs"][mode]["socket"] == mode
    figures, entries = _figures(ground_truth, mode, scenario)
    delays = applied_delays(entries)
    base_figures, base_entries = _figures(ground_truth, mode, "no-delay")
    base_delays = applied_delays(base_entries)
    # the stack and both programs add this on top of the responder's delay
    baseline_ms = base_figures["avg_ms"] - mean(base_delays) * 1000
    truth_avg_ms = mean(delays) * 1000 + baseline_ms
    truth_jitter_ms = consecutive_jitter(delays) * 1000
    low, high = binomial_interval(figures["sent"], loss_share)
    lost = figures["sent"] - figures["received"]
    print(f"\n{mode:12} {scenario:8}: avg {figures['avg_ms']:8.3f} ms (truth {truth_avg_ms:8.3f},"
          f" baseline {baseline_ms:.3f}), jitter {figures['jitter_ms']:.3f} ms (truth "
          f"{truth_jitter_ms:.3f}), loss {figures['loss']:.3f} = {lost}/{figures['sent']} "
          f"(responder dropped {len(entries) - len(delays)}, 95% interval {low}..{high})")

    assert figures["sent"] >= COUNT
    assert len(entries) == figures["sent"], "the responder saw every request of the window"
    assert figures["received"] == len(delays), "every answer the responder sent is counted"
    assert low <= lost <= high
    assert figures["loss"] == pytest.approx(lost / figures["sent"], abs=1e-4)
    if scenario == "no-delay":
        assert 0 < baseline_ms < ACCURACY_MS
    else:
        assert figures["avg_ms"] == pytest.approx(truth_avg_ms, abs=ACCURACY_MS)
    assert figures["jitter_ms"] == pytest.approx(truth_jitter_ms, abs=ACCURACY_MS)
    if jitter_ms:  # the comparison is not vacuous: the responder really varied its delay
        assert truth_jitter_ms > jitter_ms / 2


@pytest.mark.parametrize("mode", MODES)
def test_a_silent_target_loses_every_request_and_others_are_measured_fully(ground_truth, mode):
    targets = ground_truth["outputs"][mode]["targets"]
    silent = targets["silent"]
    assert silent["sent"] >= COUNT
    assert silent["received"] == 0
    assert silent["avg_ms"] is None
    assert silent["loss"] == 1.0
    # the first window waits for COUNT requests per target, then packet_timeout at most
    output = ground_truth["outputs"][mode]
    assert output["round_seconds"] < COUNT * PACKET_INTERVAL + 2 * PACKET_TIMEOUT + 5


@pytest.mark.parametrize("mode", MODES)
def test_a_name_that_does_not_resolve_fails_alone(ground_truth, mode):
    targets = ground_truth["outputs"][mode]["targets"]
    dead = targets["no-such-host.invalid"]
    assert dead["error"].startswith("does not resolve")
    assert dead["sent"] >= COUNT
    assert (dead["received"], dead["loss"]) == (0, 1.0)
    assert dead["avg_ms"] is None
    assert dead["jitter_ms"] is None
    assert all(targets[name]["received"] > 0 for name in SCENARIOS)


def _runs(log: list[dict[str, Any]], result: str) -> list[dict[str, Any]]:
    return [line for line in log if line.get("msg") == f"job latency {result}"]


def test_no_icmp_permission_fails_the_job_and_the_daemon_keeps_running():
    with NetnsPair("latp") as pair:
        lab = LatencyLab(pair, [])
        try:
            lab.ping_group_range(1, 0)  # closed; and nobody has no CAP_NET_RAW
            config = lab.write_config("noperm.yml", {
                "interval": "1s", "timeout": "5s", "count": 1, "packet_interval": "10ms",
                "packet_timeout": "500ms", "targets": [pair.ip_b]}, port=10132)
            once = lab.monitor_a(["once", "latency", "--config", str(config)], as_nobody=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            stdout, _ = once.communicate(timeout=60)
            assert once.returncode == 1
            error = json.loads(stdout[stdout.index("{\n"):])["error"]
            assert "ping_group_range" in error
            assert "CAP_NET_RAW" in error

            log_path = lab.shared / "noperm.log"
            with open(log_path, "w") as log_file:
                daemon = lab.monitor_a(["run", "--config", str(config)], as_nobody=True,
                                       stdout=log_file, stderr=subprocess.STDOUT)
                try:
                    wait_until(lambda: len(_runs(log_lines(log_path), "failure")) >= 2, 30,
                               what="two failed latency runs")
                    assert daemon.poll() is None, "the daemon must keep running"
                    status, body = lab.http_a("http://127.0.0.1:10132/healthz")
                    assert (status, body.strip()) == (200, "ok")
                    samples = lab.metrics_a(10132)
                    failures = samples[("homemon_job_runs_total",
                                        (("job", "latency"), ("result", "failure")))]
                    assert failures >= 2
                    assert not any(name == "homemon_ping_rtt_avg_seconds"
                                   for name, _ in samples), "a failed round exports no RTT"
                    assert math.isnan(samples[("homemon_internet_up", ())])
                    assert "CAP_NET_RAW" in _runs(log_lines(log_path), "failure")[0]["error"]
                finally:
                    stop_process(daemon)
        finally:
            lab.close()


OUTAGE_TARGETS = {"raw": "10.77.1.1", "unprivileged": "10.77.2.1"}
OUTAGE_PORTS = {"raw": 10133, "unprivileged": 10134}
OUTAGE_AFTER = 3
SILENCE = 6.0


def test_outages_at_second_resolution_in_both_socket_modes():
    """Two daemons (raw as root, unprivileged as nobody) probe one responder once a second:
    one lost request and a 2 s silence are no outage, a 6 s silence is exactly one, as long
    as the silence to within a second; a dead router is never an outage."""
    with NetnsPair("lato") as pair:
        lab = LatencyLab(pair, [*OUTAGE_TARGETS.values(), "10.77.3.1"])
        try:
            lab.ping_group_range(NOBODY_GID, NOBODY_GID)
            profiles = [f"{address}:2:0:0" for address in OUTAGE_TARGETS.values()]
            with lab.responder("isp", profiles) as responder:
                daemons, logs = {}, {}
                try:
                    for mode, address in OUTAGE_TARGETS.items():
                        config = lab.write_config(f"outage-{mode}.yml", {
                            "interval": "5s", "timeout": "10s", "count": 3,
                            "packet_interval": "1s", "packet_timeout": "1s",
                            "outage_after": OUTAGE_AFTER,
                            "privileged": True if mode == "raw" else "auto",
                            "targets": [{"host": address, "name": "isp", "internet": True},
                                        {"host": "10.77.3.1", "name": "router"}]},
                            port=OUTAGE_PORTS[mode])
                        logs[mode] = lab.shared / f"outage-{mode}.log"
                        with open(logs[mode], "w") as log_file:
                            daemons[mode] = lab.monitor_a(
                                ["run", "--config", str(config)], as_nobody=mode == "unprivileged",
                                stdout=log_file, stderr=subprocess.STDOUT)
                    _outage_scenarios(lab, responder, logs)
                finally:
                    for daemon in daemons.values():
                        stop_process(daemon)
                record = responder.stop()
            _check_outage(lab, logs, record)
        finally:
            lab.close()


def _sample(lab: LatencyLab, mode: str, name: str, **labels: str) -> float:
    samples = lab.metrics_a(OUTAGE_PORTS[mode])
    return samples[(name, tuple(sorted(labels.items())))]


def _lost(lab: LatencyLab, mode: str) -> float:
    samples = lab.metrics_a(OUTAGE_PORTS[mode])
    isp = (("target", "isp"),)
    return (samples[("homemon_ping_sent_total", isp)]
            - samples[("homemon_ping_received_total", isp)])


def _outage_scenarios(lab: LatencyLab, responder: Any, logs: dict[str, Path]) -> None:
    for mode in OUTAGE_TARGETS:
        wait_until(lambda mode=mode: _sample(lab, mode, "homemon_ping_sent_total",
                                             target="isp") >= 5, 30, what=f"{mode} probing")
    # once a second, every second
    before = {mode: (time.monotonic(), _sample(lab, mode, "homemon_ping_sent_total",
                                                target="isp")) for mode in OUTAGE_TARGETS}
    time.sleep(6)
    for mode, (then, sent) in before.items():
        now, sent_now = time.monotonic(), _sample(lab, mode, "homemon_ping_sent_total",
                                                  target="isp")
        rate = (sent_now - sent) / (now - then)
        print(f"\n{mode}: {rate:.2f} requests per second")
        assert rate == pytest.approx(1.0, abs=0.3)
        samples = lab.metrics_a(OUTAGE_PORTS[mode])
        assert samples[("homemon_internet_up", ())] == 1
        assert samples[("homemon_ping_up", (("target", "router"),))] == 0  # dead router...
        assert samples[("homemon_internet_outages_total", ())] == 0  # ...is no outage

    for drops in (1, 2):  # one lost request, then a 2 s silence: no outage
        lost = {mode: _lost(lab, mode) for mode in OUTAGE_TARGETS}
        for _ in range(drops):
            responder.drop_next()
            time.sleep(0.3)  # signals do not queue
        for mode in OUTAGE_TARGETS:
            want = lost[mode] + drops
            wait_until(lambda mode=mode, want=want: _lost(lab, mode) >= want, 15,
                       what=f"{mode}: {drops} lost")
        time.sleep(2)
        for mode in OUTAGE_TARGETS:
            assert _lost(lab, mode) == lost[mode] + drops
            assert _sample(lab, mode, "homemon_internet_outages_total") == 0

    responder.silence()
    silenced = time.monotonic()
    time.sleep(SILENCE - 1.5)
    for mode in OUTAGE_TARGETS:  # the outage is known, counted and growing while it lasts
        samples = lab.metrics_a(OUTAGE_PORTS[mode])
        print(f"{mode} during the outage: outage_seconds_total "
              f"{samples[('homemon_internet_outage_seconds_total', ())]}, current "
              f"{samples[('homemon_internet_current_outage_seconds', ())]:.2f} s")
        assert samples[("homemon_internet_up", ())] == 0
        assert samples[("homemon_internet_outages_total", ())] == 1
        assert samples[("homemon_internet_outage_seconds_total", ())] > 0
        assert samples[("homemon_internet_current_outage_seconds", ())] > OUTAGE_AFTER - 1
    time.sleep(max(0.0, SILENCE - (time.monotonic() - silenced)))
    responder.silence()
    for mode in OUTAGE_TARGETS:
        wait_until(lambda mode=mode: any(line["msg"].startswith("internet back after")
                                         for line in log_lines(logs[mode])), 15,
                   what=f"{mode}: internet back")
        samples = lab.metrics_a(OUTAGE_PORTS[mode])
        assert samples[("homemon_internet_current_outage_seconds", ())] == 0
        assert samples[("homemon_internet_up", ())] == 1
        logs[mode].with_suffix(".metrics").write_text(json.dumps({
            "outages": samples[("homemon_internet_outages_total", ())],
            "seconds": samples[("homemon_internet_outage_seconds_total", ())],
            "recent": [value for (name, _), value in samples.items()
                       if name == "homemon_internet_recent_outage_seconds"]}))


def _check_outage(lab: LatencyLab, logs: dict[str, Path], record: dict[str, Any]) -> None:
    (silence,) = record["silences"]
    true_length = silence[1] - silence[0]
    for mode, path in logs.items():
        log = log_lines(path)
        down = [line for line in log if line["msg"] == "internet down"]
        back = [line for line in log if line["msg"].startswith("internet back after")]
        counted = json.loads(path.with_suffix(".metrics").read_text())
        detected_after = parse_ts(down[0]["ts"]) - silence[0]
        print(f"{mode}: silence {true_length:.2f} s, outage logged {back[0]['outage_seconds']} s"
              f" from {back[0]['start'] - silence[0]:+.2f} s, counted {counted['seconds']:.2f}"
              f" s; down logged {detected_after:.2f} s after the silence began")
        assert len(down) == 1
        assert len(back) == 1
        assert counted["outages"] == 1
        assert back[0]["outage_seconds"] == pytest.approx(true_length, abs=1.0)
        assert counted["seconds"] == pytest.approx(back[0]["outage_seconds"], abs=0.01)
        assert counted["recent"] == [pytest.approx(back[0]["outage_seconds"], abs=0.01)]
        assert -0.05 <= back[0]["start"] - silence[0] <= 1.05  # the first silent slot
        # N slots, the last one's timeout, and slack for a loaded machine
        assert 0 < detected_after <= OUTAGE_AFTER + 1 + 2


def test_names_are_resolved_per_round_and_a_hanging_dns_fails_only_its_target():
    """`ip netns exec` mounts /etc/netns/<ns>/{hosts,resolv.conf} over /etc: a name from the
    hosts file resolves, the DNS server is a black hole (routed to b, which drops it)."""
    with NetnsPair("latd") as pair:
        lab = LatencyLab(pair, ["10.77.1.1"])
        etc = Path("/etc/netns") / pair.ns_a
        try:
            etc.mkdir(parents=True)
            (etc / "hosts").write_text("10.77.1.1 isp.test\n")
            (etc / "resolv.conf").write_text("nameserver 10.77.9.53\noptions timeout:3 "
                                             "attempts:1\n")
            config = lab.write_config("dns.yml", {
                "timeout": "10s", "count": 3, "packet_interval": "20ms",
                "packet_timeout": "500ms",
                "targets": ["isp.test", "slow.example", {"host": "10.77.1.1", "name": "lit"}]})
            with lab.responder("dns", ["10.77.1.1:5:0:0"]):
                started = time.monotonic()
                once = lab.monitor_a(["once", "latency", "--config", str(config)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                stdout, stderr = once.communicate(timeout=60)
                elapsed = time.monotonic() - started
            assert once.returncode == 0, stderr[-2000:]
            output = json.loads(stdout[stdout.index("{\n"):])
        finally:
            shutil.rmtree(etc, ignore_errors=True)
            lab.close()
    targets = output["targets"]
    assert targets["isp.test"]["received"] >= 3
    assert targets["lit"]["received"] >= 3
    assert targets["slow.example"]["error"] == "does not resolve: no DNS answer within 0.5 s"
    assert targets["slow.example"]["sent"] >= 3
    # the hanging look-up neither delays the round nor keeps the process from exiting
    assert output["round_seconds"] < 2.0
    assert elapsed < 3.0, f"`once` took {elapsed:.1f} s (the resolver waits 3 s)"
