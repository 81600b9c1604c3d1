from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.aqi_server import AqiServer, aqi_server


@pytest.fixture
def server() -> Iterator[AqiServer]:
    with aqi_server() as srv:
        yield srv
