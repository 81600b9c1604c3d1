"""Table tests of the index functions: every DAQI boundary, US EPA and EAQI breakpoints."""

from __future__ import annotations

import math

import pytest

from monitor.jobs.aqi import indices

# (upper bound of the index, index) straight from the DEFRA table
DAQI_PM25 = [(11, 1), (23, 2), (35, 3), (41, 4), (47, 5), (53, 6), (58, 7), (64, 8), (70, 9)]
DAQI_PM10 = [(16, 1), (33, 2), (50, 3), (58, 4), (66, 5), (75, 6), (83, 7), (91, 8), (100, 9)]


def _daqi_cases(table: list[tuple[int, int]]) -> list[tuple[float, int]]:
    """At every bound: the bound itself and +0.4 stay, +0.5 (half-up) and +1 go up a band."""
    cases: list[tuple[float, int]] = [(0.0, 1), (0.49, 1)]
    for bound, index in table:
        cases += [(bound, index), (bound + 0.4, index), (bound + 0.49, index),
                  (bound + 0.5, index + 1), (bound + 1, index + 1)]
    return cases


@pytest.mark.parametrize(("mean", "index"), _daqi_cases(DAQI_PM25))
def test_daqi_pm25_every_boundary(mean: float, index: int) -> None:
    assert indices.daqi_index("pm2.5", mean) == index


@pytest.mark.parametrize(("mean", "index"), _daqi_cases(DAQI_PM10))
def test_daqi_pm10_every_boundary(mean: float, index: int) -> None:
    assert indices.daqi_index("pm10", mean) == index


@pytest.mark.parametrize(("pollutant", "mean", "index"), [
    ("pm2.5", 11.4, 1), ("pm2.5", 11.5, 2), ("pm2.5", 70.49, 9), ("pm2.5", 70.5, 10),
    ("pm2.5", 500.0, 10), ("pm10", 16.5, 2), ("pm10", 100.4, 9), ("pm10", 100.5, 10),
    ("pm10", 1500.0, 10),
    # a mean that float arithmetic lands just below .5 is still rounded up
    ("pm2.5", sum([11.0, 12.0]) / 2, 2), ("pm2.5", (0.1 + 0.2) * 10 / 3 * 11.5, 2),
])
def test_daqi_fractional_means(pollutant: str, mean: float, index: int) -> None:
    assert indices.daqi_index(pollutant, mean) == index


@pytest.mark.parametrize(("index", "band", "at_risk_phrase"), [
    (1, "Low", "Enjoy your usual"), (3, "Low", "Enjoy your usual"),
    (4, "Moderate", "should consider reducing strenuous"), (6, "Moderate", "should consider"),
    (7, "High", "should reduce strenuous"), (9, "High", "Older people should also reduce"),
    (10, "Very High", "should avoid strenuous")])
def test_daqi_band_names_and_advice(index: int, band: str, at_risk_phrase: str) -> None:
    found = indices.daqi_band(index)
    assert found.name == band
    assert at_risk_phrase in found.advice_at_risk


def test_daqi_overall_is_the_higher_pollutant() -> None:
    assert indices.daqi_overall({"pm2.5": 40.0, "pm10": 20.0}) == 4
    assert indices.daqi_overall({"pm2.5": 5.0, "pm10": 60.0}) == 5
    assert indices.daqi_overall({"pm10": 17.0}) == 2
    assert indices.daqi_overall({}) is None


# US EPA: expected AQIs worked by hand from the 2024 table; truncation before interpolation
@pytest.mark.parametrize(("pollutant", "conc", "aqi"), [
    ("pm2.5", 0.0, 0), ("pm2.5", 4.5, 25), ("pm2.5", 9.0, 50), ("pm2.5", 9.09, 50),
    ("pm2.5", 9.1, 51), ("pm2.5", 12.0, 56), ("pm2.5", 35.4, 100), ("pm2.5", 35.49, 100),
    ("pm2.5", 35.5, 101), ("pm2.5", 55.4, 150), ("pm2.5", 55.5, 151), ("pm2.5", 125.4, 200),
    ("pm2.5", 125.5, 201), ("pm2.5", 225.4, 300), ("pm2.5", 225.5, 301), ("pm2.5", 325.4, 500),
    ("pm10", 0, 0), ("pm10", 54, 50), ("pm10", 54.9, 50), ("pm10", 55, 51), ("pm10", 100, 73),
    ("pm10", 154, 100), ("pm10", 155, 101), ("pm10", 254, 150), ("pm10", 255, 151),
    ("pm10", 354, 200), ("pm10", 355, 201), ("pm10", 424, 300), ("pm10", 425, 301),
    ("pm10", 604, 500),
])
def test_us_epa_breakpoints(pollutant: str, conc: float, aqi: int) -> None:
    assert indices.us_epa_aqi(pollutant, conc) == aqi


@pytest.mark.parametrize(("pollutant", "conc", "truncated"), [
    ("pm2.5", 9.19, 9.1), ("pm2.5", 35.45, 35.4), ("pm2.5", 0.7, 0.7), ("pm2.5", 12.0, 12.0),
    ("pm10", 54.99, 54.0), ("pm10", 155.0, 155.0)])
def test_us_epa_truncates_not_rounds(pollutant: str, conc: float, truncated: float) -> None:
    assert indices.us_epa_truncate(pollutant, conc) == truncated


def test_us_epa_beyond_the_index_and_overall() -> None:
    assert indices.us_epa_aqi("pm2.5", 400.0) > 500
    assert indices.us_epa_overall({"pm2.5": 9.1, "pm10": 155}) == 101


@pytest.mark.parametrize(("pollutant", "conc", "level"), [
    ("pm2.5", 0, 1), ("pm2.5", 5, 1), ("pm2.5", 5.01, 2), ("pm2.5", 15, 2), ("pm2.5", 15.1, 3),
    ("pm2.5", 50, 3), ("pm2.5", 50.1, 4), ("pm2.5", 90, 4), ("pm2.5", 90.1, 5),
    ("pm2.5", 140, 5), ("pm2.5", 140.1, 6), ("pm2.5", 800, 6),
    ("pm10", 0, 1), ("pm10", 15, 1), ("pm10", 15.1, 2), ("pm10", 45, 2), ("pm10", 45.1, 3),
    ("pm10", 120, 3), ("pm10", 120.1, 4), ("pm10", 195, 4), ("pm10", 195.1, 5),
    ("pm10", 270, 5), ("pm10", 270.1, 6),
])
def test_eaqi_2024_levels(pollutant: str, conc: float, level: int) -> None:
    assert indices.eaqi_level(pollutant, conc) == level


def test_eaqi_overall() -> None:
    assert indices.eaqi_overall({"pm2.5": 16, "pm10": 10}) == 3


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf])
def test_bad_concentrations_are_refused_not_banded(bad: float) -> None:
    for func in (indices.daqi_index, indices.us_epa_aqi, indices.eaqi_level):
        with pytest.raises(ValueError, match="concentration"):
            func("pm2.5", bad)
