"""Which charts the page shows, built from the history tables."""

from __future__ import annotations

import math

from monitor.history import History
from monitor.jobs.indices import DAQI_COLOURS, DAQI_UPPER
from monitor.webpage.charts import Band, Chart, Line, legend, render


def daqi_bands(pollutant: str) -> list[Band]:
    """One band per DAQI index, in its official colour (bounds are whole µg/m³, inclusive)."""
    bands, low = [], 0.0
    for index, bound in enumerate((*DAQI_UPPER[pollutant], math.inf), start=1):
        high = bound + 0.5
        bands.append(Band(low, high, DAQI_COLOURS[index - 1], f"DAQI {index}"))
        low = high
    return bands


def build(history: History, start: float, end: float) -> list[str]:
    """The charts' HTML (figure with SVG and legend), for the jobs that have data."""
    with history.lock:
        charts = _charts(history)
    return [f'<figure><figcaption>{chart.title}</figcaption>{render(chart, start, end)}'
            f'{legend(chart)}</figure>' for chart in charts]


def _charts(history: History) -> list[Chart]:
    tables, charts = history.tables, []
    if "latency" in tables:
        table = tables["latency"]
        labels = sorted({name.split("\0")[0] for name in table.names() if "\0" in name})
        lines = [Line(label, f"s{i % 6}", table.points(f"{label}\0avg_ms"))
                 for i, label in enumerate(labels)]
        marks: dict[float, float] = {}
        for label in labels:
            for at, loss in table.points(f"{label}\0loss", how="max"):
                if loss > 0:
                    marks[at] = max(marks.get(at, 0.0), loss)
        charts.append(Chart("Round-trip time (red marks: packet loss)", "ms", lines,
                            marks=sorted(marks.items()), floor_max=5.0))
    speed: list[Line] = []
    for job, prefix, offset in (("bandwidth", "speed test", 0), ("iperf", "iperf", 2)):
        if job in tables:
            speed += [Line(f"{prefix} {d}", f"s{offset + i}", tables[job].points(f"{d}_mbps"),
                           dots=True) for i, d in enumerate(("download", "upload"))]
    if speed:
        charts.append(Chart("Throughput per test", "Mbit/s", speed, floor_max=10.0))
    if "aqi" in tables:
        for size, title in (("pm2.5", "PM2.5"), ("pm10", "PM10")):
            charts.append(Chart(f"{title} (bands: DAQI index)", "µg/m³",
                                [Line(title, "s0", tables["aqi"].points(size))],
                                bands=daqi_bands(size), floor_max=DAQI_UPPER[size][2] + 0.5))
    return charts
