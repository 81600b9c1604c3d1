"""The speedtest backend's upload body."""

from __future__ import annotations

from monitor.jobs.bandwidth.speedtest import _PatternReader


def test_pattern_reader_streams_a_fixed_length():
    seen = []
    reader = _PatternReader(200_000, seen.append)
    chunks = []
    while chunk := reader.read(65536):
        chunks.append(chunk)
    body = b"".join(chunks)
    assert len(body) == 200_000 == sum(seen)
    assert body.startswith(b"content1=0123456789ABC")
    assert max(len(c) for c in chunks) <= 65536
