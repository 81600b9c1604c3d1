"""The pure parts of the iperf job, on iperf3 -J output.

tests/data/iperf3_{upload,download,busy,unreachable}.json and iperf3_*_omit*.json were
recorded with iperf3 3.12 on this machine (2 streams, or 1, over a tbf-shaped veth pair,
15 Mbit/s up, 30 down; *_omit with -t 2 -O 1, *_omit_lost with -t 1 -O 2).
iperf3_3.1.3_*, iperf3_3.9_* and iperf3_3.17_* are written by hand in the shape those versions
print (3.1 has no `sender` flags; 3.17 more start fields; an interrupted run has intervals, an
empty `end` and an `error`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from monitor.jobs.iperf.job import (
    DirectionResult,
    IperfError,
    IperfMeasurement,
    ServerBusy,
    iperf3_args,
    parse_result,
    record,
)
from monitor.jobs.iperf.metrics import IperfMetrics
from monitor.metrics import Metrics

DATA = Path(__file__).resolve().parents[2] / "data"


def recorded(name: str) -> str:
    return (DATA / f"iperf3_{name}.json").read_text()


@pytest.mark.parametrize(("name", "direction", "bps", "retransmits", "sent_bytes"), [
    ("upload", "upload", 14404702.690481573, 2167, 3647512),
    ("download", "download", 28755037.107105646, 623, 7189320),
])
def test_recorded_results(name: str, direction: str, bps: float, retransmits: int,
                          sent_bytes: int) -> None:
    result = parse_result(recorded(name), direction)
    assert result == DirectionResult(direction, pytest.approx(bps), retransmits, sent_bytes)


@pytest.mark.parametrize(("name", "error", "message"), [
    ("busy", ServerBusy, "server is busy"),
    ("unreachable", IperfError, "unable to connect to server: Connection refused"),
])
def test_recorded_errors(name: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        parse_result(recorded(name), "upload")


@pytest.mark.parametrize("error", [
    "unable to receive control message: Connection reset by peer",
    "control socket has closed unexpectedly",
])
def test_server_resetting_is_retried_like_busy(error: str) -> None:
    with pytest.raises(ServerBusy):
        parse_result(json.dumps({"start": {}, "end": {}, "error": error}), "upload")


def _edited(**end: object) -> str:
    data = json.loads(recorded("upload"))
    data["end"].update(end)
    return json.dumps(data)


@pytest.mark.parametrize(("text", "message"), [
    ("", "no output"),
    ("   \n", "no output"),
    ('{"start": {', "malformed JSON"),
    ("Segmentation fault", "malformed JSON"),
    ("[1, 2]", "is a list"),
    ('{"start": {}, "end": {}}', "no end.sum_received"),
    (_edited(sum_received={"bytes": 10}), "invalid end.sum_received.bits_per_second"),
    (_edited(sum_received={"bits_per_second": "fast"}), "invalid"),
    (_edited(sum_received={"bits_per_second": -1.0}), "invalid"),
    (_edited(sum_received={"bits_per_second": True}), "invalid"),
    ('{"error": "interrupt - the client has terminated"}', "interrupt"),
])
def test_bad_output(text: str, message: str) -> None:
    with pytest.raises(IperfError, match=message):
        parse_result(text, "upload")


def test_missing_retransmits_is_none_not_zero() -> None:
    data = json.loads(recorded("upload"))
    del data["end"]["sum_sent"]["retransmits"]
    assert parse_result(json.dumps(data), "upload").retransmits is None


@pytest.mark.parametrize(("duration", "omit", "download", "expected"), [
    (10.0, 1.0, False, ["-t", "10", "-O", "1", "-P", "4"]),
    (2.4, 0.0, True, ["-t", "2", "-O", "0", "-P", "4", "-R"]),
    (0.2, 0.0, False, ["-t", "1", "-O", "0", "-P", "4"]),
])
def test_args(duration: float, omit: float, download: bool, expected: list[str]) -> None:
    args = iperf3_args("fd77::2", 5201, duration=duration, omit=omit, streams=4,
                       download=download)
    assert args[:5] == ["-J", "-c", "fd77::2", "-p", "5201"]
    assert [a for a in args[5:] if a not in ("--connect-timeout", "5000")] == expected


def test_record_sets_each_direction_and_counts_bytes() -> None:
    metrics = Metrics(CollectorRegistry())
    measurement = IperfMeasurement("203.0.113.9", (
        DirectionResult("upload", 14e6, 12, 1000), DirectionResult("download", 28e6, None, 3000)))
    iperf = IperfMetrics(metrics.registry)
    record(measurement, iperf)
    record(measurement, iperf)
    value = metrics.registry.get_sample_value
    assert value("homemon_iperf_bits_per_second",
                 {"direction": "upload", "server": "203.0.113.9"}) == 14e6
    assert value("homemon_iperf_retransmits",
                 {"direction": "upload", "server": "203.0.113.9"}) == 12
    assert value("homemon_iperf_retransmits",
                 {"direction": "download", "server": "203.0.113.9"}) is None
    assert value("homemon_iperf_bytes_total", {"direction": "download"}) == 6000


def _omitted(data: dict[str, Any]) -> tuple[int, float]:
    sums = [i["sum"] for i in data["intervals"] if i["sum"]["omitted"]]
    return sum(i["bytes"] for i in sums), sum(i["seconds"] for i in sums)


@pytest.mark.parametrize("name", ["download_omit", "3.9_download", "3.17_download"])
def test_download_adds_the_omitted_seconds_as_received(name: str) -> None:
    data = json.loads(recorded(name))
    omitted, seconds = _omitted(data)
    assert seconds == pytest.approx(data["start"]["test_start"]["omit"], abs=0.05)
    result = parse_result(recorded(name), "download")
    assert result.bytes == data["end"]["sum_received"]["bytes"] + omitted


@pytest.mark.parametrize("name", ["upload_omit", "single_stream_omit", "3.1.3_upload"])
def test_upload_adds_the_omitted_seconds_at_most_at_the_link_rate(name: str) -> None:
    """The client's omitted upload intervals count what it wrote into its sockets; in slow
    start that runs ahead of what the link carries, so no more than the measured rate."""
    data = json.loads(recorded(name))
    omitted, _ = _omitted(data)
    received = data["end"]["sum_received"]
    limit = data["start"]["test_start"]["omit"] * received["bytes"] / received["seconds"]
    result = parse_result(recorded(name), "upload")
    assert result.bytes == round(received["bytes"] + min(omitted, limit))


@pytest.mark.parametrize(("name", "direction", "expected"), [
    ("3.1.3_upload", "upload", 900000 + 2400000 + 3000000 + 3100000 + 3050000 + 3080000),
    ("3.9_download", "download", 1800000 + 3700000 + 3750000 + 3740000),
    ("3.17_download", "download", 2100000 + 3600000 + 3720000 + 3710000 + 3690000),
])
def test_hand_built_versions(name: str, direction: str, expected: int) -> None:
    result = parse_result(recorded(name), direction)
    assert result.bytes == expected
    assert result.bits_per_second > 0


def test_upload_sends_more_into_sockets_than_arrives() -> None:
    """Recorded, without -O: the sender's count is ~1.5 MB above the receiver's (what a
    15 Mbit/s link carries in 2 s); the counter takes the receiver's."""
    data = json.loads(recorded("upload"))
    assert data["end"]["sum_sent"]["bytes"] > 1.3 * data["end"]["sum_received"]["bytes"]
    assert parse_result(recorded("upload"), "upload").bytes == (
        data["end"]["sum_received"]["bytes"])


def test_omitted_second_lost_by_iperf3_is_filled_in_at_the_measured_rate() -> None:
    """Recorded: iperf3 3.12 -t 1 -O 2 -R whose omit timer fired before its stats timer, so
    the omitted intervals cover 1 of the 2 omitted seconds."""
    data = json.loads(recorded("download_omit_lost"))
    omitted, covered = _omitted(data)
    assert covered < 1.5
    received = data["end"]["sum_received"]
    rate = received["bytes"] / received["seconds"]
    expected = received["bytes"] + omitted + (2 - covered) * rate
    assert parse_result(recorded("download_omit_lost"), "download").bytes == round(expected)


def test_interrupted_run_is_an_error_not_a_count() -> None:
    with pytest.raises(IperfError, match="the server has terminated"):
        parse_result(recorded("3.17_interrupted"), "download")


def test_without_intervals_the_omit_period_is_filled_in_at_the_measured_rate() -> None:
    data = json.loads(recorded("download_omit"))
    del data["intervals"]
    received = data["end"]["sum_received"]
    expected = received["bytes"] * (1 + 1 / received["seconds"])  # -O 1
    assert parse_result(json.dumps(data), "download").bytes == round(expected)


def test_upload_with_a_lost_omitted_second_stays_within_the_link_rate() -> None:
    """Recorded: the same race on an upload (omitted intervals cover ~1 of 2 s)."""
    data = json.loads(recorded("upload_omit_lost"))
    omitted, covered = _omitted(data)
    received = data["end"]["sum_received"]
    rate = received["bytes"] / received["seconds"]
    assert covered < 1.5
    assert omitted + (2 - covered) * rate > 2 * rate  # the cap applies
    assert parse_result(recorded("upload_omit_lost"), "upload").bytes == round(
        received["bytes"] + 2 * rate)
