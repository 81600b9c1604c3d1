import pytest

from monitor.units import format_duration, parse_duration, parse_size


@pytest.mark.parametrize(("text", "seconds"), [
    ("500ms", 0.5), ("15s", 15), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("1d", 86400),
    ("1.5s", 1.5), ("0s", 0), (" 2m ", 120),
])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "fast", "15", "-5s", "5 s", "1h-2m", "s", "5sm", "1w"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="."):
        parse_duration(text)


@pytest.mark.parametrize(("text", "size"), [
    ("200MB", 200_000_000), ("50GB", 50_000_000_000), ("1GiB", 2**30), ("1000", 1000),
    ("1.5kB", 1500), ("10 MB", 10_000_000),
])
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "big", "-1MB", "5 PB", "MB"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="."):
        parse_size(text)


@pytest.mark.parametrize(("seconds", "text"), [
    (0.5, "500ms"), (15, "15s"), (300, "5m"), (3600, "1h"), (90, "90s"), (86400, "1d"),
])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
