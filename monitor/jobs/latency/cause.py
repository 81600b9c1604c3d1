"""Where an outage broke, from what answered during it.

The discovered hops (the home router, role `home`; the ISP's first hop, role `isp`) are probed
every second like targets. When an outage ends, the requests *sent* during it decide:

    home      the router answered fewer than half of them
    isp       the router answered, the ISP's first hop did not
    upstream  the ISP's first hop answered too, no internet target did
    dns       (DNS outages) internet targets answered, name lookups failed
    unknown   a hop was not known (not discovered yet, or no public hop), or nothing was sent
              to it during the outage: never a guess

"Answered" is at least half of the requests, so the edges of an outage (a router coming back a
moment before the internet targets) do not flip the verdict.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass

CAUSES = ("home", "isp", "upstream", "dns", "unknown")
ROLES = ("home", "isp")
HOP_LOG_SIZE = 4000  # requests per role: an hour at one per second, plus margin


@dataclass(frozen=True)
class Cause:
    cause: str  # one of CAUSES
    detail: str  # the sentence for the outage report


class HopLog:
    """Per role: (send time, answered) of the hops' requests, oldest first. Thread-safe."""

    def __init__(self, size: int = HOP_LOG_SIZE) -> None:
        self._log: dict[str, collections.deque[tuple[float, bool]]] = {
            role: collections.deque(maxlen=size) for role in ROLES}
        self._lock = threading.Lock()

    def add(self, role: str, sent_at: float, answered: bool) -> None:
        with self._lock:
            self._log[role].append((sent_at, answered))

    def clear(self, role: str) -> None:
        with self._lock:
            self._log[role].clear()

    def answered(self, role: str, start: float, end: float) -> bool | None:
        """Did `role` answer at least half of its requests sent in [start, end)? None: none
        decided."""
        with self._lock:
            window = [ok for sent, ok in self._log[role] if start <= sent < end]
        if not window:
            return None
        return sum(window) * 2 >= len(window)


def decide(router: str | None, router_answered: bool | None,
           isp: str | None, isp_answered: bool | None) -> Cause:
    """The cause of an internet outage from what the hops did during it."""
    if router is None or router_answered is None:
        return Cause("unknown", "the home router is not known yet, so where it broke is unknown")
    if not router_answered:
        return Cause("home", f"your router ({router}) did not answer — the break was in your "
                             "home network (the router, or the monitor's own link to it)")
    if isp is None or isp_answered is None:
        return Cause("unknown", f"your router ({router}) answered; the ISP's first hop is not "
                                "known, so whether the break was at your ISP or beyond is unknown")
    if not isp_answered:
        return Cause("isp", f"your router answered, the ISP's first hop ({isp}) did not — the "
                            "break was at your ISP")
    return Cause("upstream", f"your router and the ISP's first hop ({isp}) answered, no internet "
                             "target did — the break was beyond your ISP")


DNS_CAUSE = Cause("dns", "pings to the internet answered, but names did not resolve — the "
                         "break was in DNS")
