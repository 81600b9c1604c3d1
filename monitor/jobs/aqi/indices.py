"""Air quality indices from particulate means: UK DAQI, US EPA AQI, EU EAQI. Pure, no I/O.

Every function takes a concentration in µg/m³ (already averaged over the scale's window by the
caller: 24 h for DAQI and US EPA, 1 h for EAQI) and raises ValueError for a negative or
non-finite one, so a bad reading can never be banded as clean air.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PM25 = "pm2.5"
PM10 = "pm10"
SCALES = ("uk_daqi", "us_epa", "eu_eaqi")
# Which running mean each scale is defined on.
SCALE_WINDOW = {"uk_daqi": "24h", "us_epa": "24h", "eu_eaqi": "1h"}

_EPSILON = 1e-9  # a mean of 11.5 computed as 11.499999999 is still 11.5


def _check(concentration: float) -> float:
    if not math.isfinite(concentration) or concentration < 0:
        raise ValueError(f"expected a concentration >= 0 µg/m³, got {concentration!r}")
    return concentration


# --- UK DAQI (DEFRA / COMEAP) ----------------------------------------------------------------
# Upper bound (µg/m³, inclusive, after rounding the 24 h mean half-up) of index 1..9; above the
# last bound is index 10. https://uk-air.defra.gov.uk/air-pollution/daqi?view=more-info
DAQI_UPPER = {
    PM25: (11, 23, 35, 41, 47, 53, 58, 64, 70),
    PM10: (16, 33, 50, 58, 66, 75, 83, 91, 100),
}


@dataclass(frozen=True)
class DaqiBand:
    name: str
    colour: str  # hex colours for indices 1..10 are in DAQI_COLOURS
    advice_general: str
    advice_at_risk: str


DAQI_BANDS = {
    "Low": DaqiBand(
        "Low", "green",
        "Enjoy your usual outdoor activities.",
        "Enjoy your usual outdoor activities."),
    "Moderate": DaqiBand(
        "Moderate", "amber",
        "Enjoy your usual outdoor activities.",
        "Adults and children with lung problems, and adults with heart problems, who "
        "experience symptoms, should consider reducing strenuous physical activity, "
        "particularly outdoors."),
    "High": DaqiBand(
        "High", "red",
        "Anyone experiencing discomfort such as sore eyes, cough or sore throat should "
        "consider reducing activity, particularly outdoors.",
        "Adults and children with lung problems, and adults with heart problems, should reduce "
        "strenuous physical exertion, particularly outdoors, and particularly if they "
        "experience symptoms. People with asthma may find they need to use their reliever "
        "inhaler more often. Older people should also reduce physical exertion."),
    "Very High": DaqiBand(
        "Very High", "purple",
        "Reduce physical exertion, particularly outdoors, especially if you experience symptoms "
        "such as cough or sore throat.",
        "Adults and children with lung problems, adults with heart problems, and older people, "
        "should avoid strenuous physical activity. People with asthma may find they need to "
        "use their reliever inhaler more often."),
}
DAQI_COLOURS = ("#9CFF9C", "#31FF00", "#31CF00", "#FFFF00", "#FFCF00", "#FF9A00",
                "#FF6464", "#FF0000", "#990000", "#CE30FF")


def round_half_up(value: float) -> int:
    """DEFRA rounds the mean to a whole µg/m³ half-up (11.5 -> 12), not to even."""
    return math.floor(value + 0.5 + _EPSILON)


def daqi_index(pollutant: str, mean_24h: float) -> int:
    """DAQI 1..10 of one pollutant ("pm2.5" or "pm10") from its 24 h running mean."""
    upper = DAQI_UPPER[pollutant]
    rounded = round_half_up(_check(mean_24h))
    for index, bound in enumerate(upper, start=1):
        if rounded <= bound:
            return index
    return 10


def daqi_band(index: int) -> DaqiBand:
    if not 1 <= index <= 10:
        raise ValueError(f"a DAQI index is 1..10, got {index}")
    name = "Low" if index <= 3 else "Moderate" if index <= 6 else "High" if index <= 9 \
        else "Very High"
    return DAQI_BANDS[name]


def daqi_overall(means_24h: dict[str, float]) -> int | None:
    """The higher of the pollutants' indices; None when neither pollutant has a mean."""
    indices = [daqi_index(p, v) for p, v in means_24h.items() if p in DAQI_UPPER]
    return max(indices) if indices else None


# --- US EPA AQI -------------------------------------------------------------------------------
# (C_lo, C_hi, I_lo, I_hi). PM2.5 from the 2024 PM NAAQS revision (Federal Register 2024-01910,
# in force 6 May 2024); PM10 unchanged since 2016 (AirNow Technical Assistance Document).
US_EPA_BREAKPOINTS = {
    PM25: ((0.0, 9.0, 0, 50), (9.1, 35.4, 51, 100), (35.5, 55.4, 101, 150),
           (55.5, 125.4, 151, 200), (125.5, 225.4, 201, 300), (225.5, 325.4, 301, 500)),
    PM10: ((0, 54, 0, 50), (55, 154, 51, 100), (155, 254, 101, 150), (255, 354, 151, 200),
           (355, 424, 201, 300), (425, 604, 301, 500)),
}


def us_epa_truncate(pollutant: str, concentration: float) -> float:
    """The TAD truncates (never rounds) PM2.5 to 0.1 µg/m³ and PM10 to 1 µg/m³."""
    _check(concentration)
    if pollutant == PM25:
        return math.floor(concentration * 10 + _EPSILON) / 10
    if pollutant == PM10:
        return float(math.floor(concentration + _EPSILON))
    raise KeyError(pollutant)


def us_epa_aqi(pollutant: str, mean_24h: float) -> int:
    """US AQI of one pollutant: truncate, find the segment, interpolate, round to an integer.
    Above the top breakpoint the top segment is extended ("beyond the AQI", > 500)."""
    c = us_epa_truncate(pollutant, mean_24h)
    segments = US_EPA_BREAKPOINTS[pollutant]
    chosen = segments[-1]
    for segment in segments:
        if c <= segment[1]:
            chosen = segment
            break
    c_lo, c_hi, i_lo, i_hi = chosen
    aqi = (i_hi - i_lo) / (c_hi - c_lo) * (c - c_lo) + i_lo
    return round_half_up(aqi)


def us_epa_overall(means_24h: dict[str, float]) -> int | None:
    values = [us_epa_aqi(p, v) for p, v in means_24h.items() if p in US_EPA_BREAKPOINTS]
    return max(values) if values else None


# --- EU EAQI (European Environment Agency) -------------------------------------------------
# The revised index the EEA serves since 2024/25, aligned with the WHO 2021 guidelines and
# Directive (EU) 2024/2881: ETC HE Report 2024/17, table 5.2, 1-hour values; shown at
# https://airindex.eea.europa.eu/AQI/index.html. Upper bounds of levels 1..5 (a value equal to
# a bound is in the lower level); above the last bound is level 6.
EAQI_UPPER = {
    PM25: (5, 15, 50, 90, 140),
    PM10: (15, 45, 120, 195, 270),
}


def eaqi_level(pollutant: str, mean_1h: float) -> int:
    """EAQI level 1 (Good) .. 6 (Extremely poor) of one pollutant from its 1 h mean."""
    c = _check(mean_1h)
    for level, bound in enumerate(EAQI_UPPER[pollutant], start=1):
        if c <= bound:
            return level
    return 6


def eaqi_overall(means_1h: dict[str, float]) -> int | None:
    levels = [eaqi_level(p, v) for p, v in means_1h.items() if p in EAQI_UPPER]
    return max(levels) if levels else None


def overall_index(scale: str, means: dict[str, float]) -> int | None:
    """The index of `scale` from the means of its window (see SCALE_WINDOW)."""
    if scale == "uk_daqi":
        return daqi_overall(means)
    if scale == "us_epa":
        return us_epa_overall(means)
    if scale == "eu_eaqi":
        return eaqi_overall(means)
    raise KeyError(scale)
