"""Why a backend failed: the `reason` label of homemon_bandwidth_backend_failures_total."""

from __future__ import annotations

import re

# (reason, pattern in the failure's message), first match wins; messages are ours (http.py,
# speedtest.py, public.py), so the set of reasons stays small and fixed
REASONS: tuple[tuple[str, str], ...] = (
    ("forbidden", r"http (error )?403|forbidden"),
    ("rate_limited", r"http (error )?429|rate limit|too many requests"),
    ("no_server", r"no server|server selection|cannot connect|server list"),
    ("stopped", r"stopped \(job timeout"),
    ("timeout", r"timed out|timeout"),
    ("bad_response", r"html page|malformed|truncated|empty response|not well-formed|"
                     r"no data moved"),
    ("rejected", r"rejected|dropped by the server|http (error )?413"),
    ("http_error", r"http [45]\d\d"),
    ("connection", r"connection|reset|refused|unreachable|name or service"),
)


def failure_reason(message: str) -> str:
    """The `reason` label for a failed backend's message: one of REASONS' names, or `other`."""
    text = message.lower()
    for reason, pattern in REASONS:
        if re.search(pattern, text):
            return reason
    return "other"
