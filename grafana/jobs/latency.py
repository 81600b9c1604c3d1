"""The latency job's panels: the Internet dashboard it owns (state now, outages and where each
broke, RTT, loss, jitter per target, the path's hops, DNS); other jobs add theirs to it by its
file name."""

from __future__ import annotations

from dashkit import (
    PROM,
    UP_DOWN,
    Board,
    Placed,
    job_runs_panel,
    panel,
    stat,
    target,
    timeseries,
    variable,
    with_probe,
)

SEL = 'target=~"$target"'
OUTAGE = "probe, start, end, cause, detail"  # one outage's labels (monitor/outages.py)
BOARD = Board(
    "internet.json", "homemon-internet", "Internet",
    description="Latency, loss, outages and bandwidth as home-monitor measures them.",
    annotations=[
        # the cause known so far while it is down (a daemon without causes: homemon_internet_up)
        {"name": "Internet down", "enable": True, "iconColor": "red", "datasource": PROM,
         "expr": with_probe("max by (probe, cause) (homemon_internet_outage_cause == 1) "
                            "or on (probe) (min by (probe) (homemon_internet_up) == 0)"),
         "step": "15s", "titleFormat": "Internet down", "tagKeys": "probe,cause",
         "textFormat": "where it broke (so far): {{cause}}", "useValueForTime": False},
        {"name": "DNS down", "enable": True, "iconColor": "orange", "datasource": PROM,
         "expr": with_probe("max by (probe) (homemon_dns_current_outage_seconds) > 0"),
         "step": "15s", "titleFormat": "DNS down (pings answered)", "tagKeys": "probe",
         "textFormat": "", "useValueForTime": False}],
    variables=[variable("target", "Ping target",
                        'label_values(homemon_ping_up{probe=~"$probe"}, target)')],
    footer=[job_runs_panel()])


def panels() -> list[Placed]:
    return [*_internet_now(SEL), *_outage_panels(SEL), *_ping_panels(SEL), *_path_panels()]


def _internet_now(sel: str) -> list[Placed]:
    """The stat row: up now, outages and time down, loss, RTT, jitter."""
    return [
        (stat("Internet now", "homemon_internet_up", mappings=UP_DOWN,
              description="1 if any internet ping target answered in the last window."), 4, 5),
        (stat("Outages", "sum(increase(homemon_internet_outages_total[$__range]))",
              description="Up-to-down transitions seen by the daemon in the time range.",
              steps=[{"color": "green", "value": None}, {"color": "red", "value": 1}]), 4, 5),
        (stat("Time down", "sum(increase(homemon_internet_outage_seconds_total[$__range]))",
              unit="s", description="Time without internet in the range, to the probe "
              "slot."), 4, 5),
        (stat("Loss (1 h)", f"avg(homemon:ping_loss_ratio:1h{{{sel}}})", unit="percentunit",
              steps=[{"color": "green", "value": None}, {"color": "#FFBF00", "value": 0.01},
                     {"color": "red", "value": 0.05}]), 4, 5),
        (stat("Median RTT (5 min)", f"avg(homemon:ping_rtt_seconds:p50_5m{{{sel}}})",
              unit="s", steps=[{"color": "green", "value": None},
                               {"color": "#FFBF00", "value": 0.05},
                               {"color": "red", "value": 0.1}]), 4, 5),
        (stat("Jitter (last window)", f"avg(homemon_ping_jitter_seconds{{{sel}}})",
              unit="s"), 4, 5),
    ]


def _outage_panels(sel: str) -> list[Placed]:
    """When it was down: timeline, the outage list with exact edges, lengths."""
    return [
        (panel("state-timeline", "Outage timeline",
               [target("homemon_internet_up", "internet {{probe}}"),
                target(f"homemon_ping_up{{{sel}}}", "{{target}} {{probe}}", "B")],
               description="Green: answered; red: no reply in that window. The exact edges of "
               "each outage are in the list below; red marks on every panel show the same "
               "down time.",
               defaults={"mappings": UP_DOWN, "thresholds": {"mode": "absolute", "steps": [
                   {"color": "red", "value": None}, {"color": "green", "value": 1}]}},
               options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8,
                        "legend": {"showLegend": False}}), 24, 6),
        (panel("table", "Outages (start, end, duration)", [target(
            f"max by ({OUTAGE}) (max_over_time("
            "homemon_internet_recent_outage_seconds[$__range]))", instant=True, fmt="table")],
               unit="s", description="Every outage the daemon counted in the time range, with "
               "its exact edges (local time of the box), length and where it broke (cause: "
               "home, isp, upstream, dns or unknown; detail: what answered), newest first. The "
               "daemon keeps each one for an hour; Prometheus keeps the history.",
               options={"sortBy": [{"displayName": "start", "desc": True}],
                        "cellHeight": "sm", "showHeader": True},
               transformations=[{"id": "organize", "options": {
                   "excludeByName": {"Time": True},
                   "indexByName": {"start": 0, "end": 1, "Value": 2, "cause": 3, "detail": 4,
                                   "probe": 5},
                   "renameByName": {"Value": "duration"}}}]), 12, 8),
        (timeseries("Outage lengths", [target(
            f"max by ({OUTAGE}) (homemon_internet_recent_outage_seconds) unless "
            f"max by ({OUTAGE}) ("
            "homemon_internet_recent_outage_seconds offset $__interval)",
            "{{start}} – {{end}} ({{cause}})")], unit="s", points=True,
            description="One point per outage, when the internet came back; its height is "
            "how long it was down.",
            defaults={"custom": {"drawStyle": "points", "pointSize": 8, "showPoints": "always",
                                 "fillOpacity": 0, "lineWidth": 0, "spanNulls": False}},
            legend=False), 12, 8),
    ]


def _ping_panels(sel: str) -> list[Placed]:
    """RTT distribution and quantiles, loss and jitter per target."""
    return [
        (panel("heatmap", "RTT heatmap",
               [target(f"sum by (le) (increase(homemon_ping_rtt_seconds_bucket{{{sel}}}"
                       "[$__rate_interval]))", "{{le}}", fmt="heatmap")],
               unit="s", description="Every ping reply, from the RTT histogram.",
               options={"calculate": False, "yAxis": {"unit": "s"},
                        "cellGap": 1, "color": {"mode": "scheme", "scheme": "Spectral",
                                                "steps": 64, "reverse": True},
                        "rowsFrame": {"layout": "auto"}, "tooltip": {"mode": "single"}}),
         12, 9),
        (timeseries("RTT quantiles (5 min)", [
            target(f"homemon:ping_rtt_seconds:p50_5m{{{sel}}}", "{{target}} p50"),
            target(f"homemon:ping_rtt_seconds:p90_5m{{{sel}}}", "{{target}} p90", "B"),
            target(f"homemon:ping_rtt_seconds:p99_5m{{{sel}}}", "{{target}} p99", "C"),
        ], unit="s"), 12, 9),
        (timeseries("Packet loss", [
            target(f"homemon:ping_loss_ratio:5m{{{sel}}}", "{{target}} (5 min)"),
            target(f"homemon_ping_loss_ratio{{{sel}}}", "{{target}} (window)", "B"),
        ], unit="percentunit", calcs=["mean", "max"]), 12, 8),
        (timeseries("Jitter", [target(f"homemon_ping_jitter_seconds{{{sel}}}", "{{target}}")],
                    unit="s", calcs=["mean", "max"]), 12, 8),
    ]


def _path_panels() -> list[Placed]:
    """Where it breaks: the home router and the ISP's first hop (role), and DNS look-ups."""
    return [
        (timeseries("Path hops RTT", [
            target("homemon_path_rtt_avg_seconds", "{{role}} {{probe}} (window)"),
            target("histogram_quantile(0.9, sum by (probe, role, le) "
                   "(rate(homemon_path_rtt_seconds_bucket[5m])))", "{{role}} {{probe}} p90",
                   "B"),
        ], unit="s", calcs=["mean", "max"],
            description="RTT to the home router (role home) and the ISP's first hop (role "
            "isp), probed every second beside the targets. A jump at isp but not at home is "
            "the ISP's line; at home too, the home network."), 12, 8),
        (timeseries("Path hops loss", [
            target("1 - sum by (probe, role) (rate(homemon_path_received_total[5m])) / "
                   "sum by (probe, role) (rate(homemon_path_sent_total[5m]))",
                   "{{role}} {{probe}} (5 min)"),
            target("homemon_path_loss_ratio", "{{role}} {{probe}} (window)", "B"),
        ], unit="percentunit", calcs=["mean", "max"],
            description="Share of requests to each hop without a reply. Hops may rate-limit "
            "echo: loss here with none at the targets is the hop, not the path."), 12, 8),
        (panel("table", "Path hops", [target(
            "max by (probe, role, address) (homemon_path_hop_info)", instant=True,
            fmt="table")],
               description="The discovered (or pinned) hops: role home is the home router, isp "
                           "the ISP's first hop.",
               options={"cellHeight": "sm", "showHeader": True},
               transformations=[{"id": "organize", "options": {
                   "excludeByName": {"Time": True, "Value": True},
                   "indexByName": {"role": 0, "address": 1, "probe": 2}}}]), 6, 8),
        (timeseries("DNS look-up time", [
            target("histogram_quantile(0.5, sum by (probe, resolver, le) "
                   "(rate(homemon_dns_lookup_seconds_bucket[5m])))", "{{resolver}} {{probe}} p50"),
            target("histogram_quantile(0.99, sum by (probe, resolver, le) "
                   "(rate(homemon_dns_lookup_seconds_bucket[5m])))",
                   "{{resolver}} {{probe}} p99", "B"),
        ], unit="s", calcs=["mean", "max"],
            description="Successful look-ups of the configured name through the system "
            "resolver (system) and each configured resolver."), 9, 8),
        (timeseries("DNS failures", [
            target("sum by (probe, resolver) "
                   "(increase(homemon_dns_lookup_failures_total[$__rate_interval]))",
                   "{{resolver}} {{probe}}"),
        ], calcs=["sum"],
            description="Look-ups that failed or timed out. Failures while pings answer are a "
            "DNS outage (cause dns, alert DnsDown)."), 9, 8),
    ]
