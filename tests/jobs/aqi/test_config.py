"""The aqi job's config: the issue's example parses; mistakes name the key."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.config import ConfigError, parse


def aqi(**keys: Any) -> dict[str, Any]:
    return {"jobs": {"latency": {"enabled": False}, "bandwidth": {"enabled": False},
                     "aqi": {"enabled": True} | keys}}


def test_the_issue_example_parses() -> None:
    config = parse(aqi(interval="5m", api_url="https://data.sensor.community",
                       sensors=[37765, 37766],
                       area={"latitude": 51.5, "longitude": -0.12, "radius_km": 3},
                       local=[{"name": "balcony", "url": "http://192.168.1.50/data.json"}],
                       scales=["uk_daqi"], stale_after="1h"), "t.yml").jobs.aqi
    assert config.sensors == [37765, 37766]
    assert config.area is not None
    assert config.area.radius_km == 3
    assert config.local[0].latitude is None
    assert (config.interval, config.stale_after, config.backoff_initial) == (300, 3600, 300)


@pytest.mark.parametrize(("keys", "problem"), [
    ({}, "jobs.aqi.sensors: the aqi job needs sensors"),
    ({"sensors": [1], "scales": ["aqi_cn"]}, "jobs.aqi.scales"),
    ({"sensors": [1], "api_url": "data.sensor.community"}, "jobs.aqi.api_url: expected an http"),
    ({"local": [{"name": "a", "url": "http://x/data.json"},
                {"name": "a", "url": "http://y/data.json"}]}, "share the name 'a'"),
    ({"sensors": [1], "backoff_initial": "2h"}, "jobs.aqi.backoff_max: must be at least"),
    ({"sensors": list(range(1, 18))}, "jobs.aqi.timeout: 17 sources"),
    ({"area": {"latitude": 95, "longitude": 0, "radius_km": 3}}, "jobs.aqi.area.latitude"),
])
def test_mistakes_name_the_key(keys: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(aqi(**keys), "t.yml")
    assert problem in str(caught.value)
