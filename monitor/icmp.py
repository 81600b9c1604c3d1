"""Which ICMP socket the process may open: the unprivileged datagram kind or a raw one."""

from __future__ import annotations

import socket
from typing import Literal

from monitor.icmp_echo import open_socket

NO_ICMP_MESSAGE = (
    "cannot send ICMP: unprivileged ping sockets are not allowed for this group "
    "(set sysctl net.ipv4.ping_group_range, e.g. \"0 2147483647\") and raw sockets need "
    "CAP_NET_RAW (run as root or add the capability)"
)


class IcmpUnavailable(RuntimeError):
    def __init__(self) -> None:
        super().__init__(NO_ICMP_MESSAGE)


def _can_open(privileged: bool) -> bool:
    try:
        open_socket(socket.AF_INET, privileged).close()
    except PermissionError:
        return False
    return True


def resolve_privileged(mode: Literal["auto", True, False]) -> bool:
    """Raw sockets (True) or datagram ones (False)? `auto` prefers the unprivileged datagram
    socket.

    Raises IcmpUnavailable (naming ping_group_range and CAP_NET_RAW) if the mode cannot work.
    """
    candidates = [False, True] if mode == "auto" else [bool(mode)]
    for privileged in candidates:
        if _can_open(privileged):
            return privileged
    raise IcmpUnavailable
