"""Which of a host's addresses a probe uses: the first IPv4 one, else the first IPv6 one."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any


def pick(host: str, addresses: Sequence[str]) -> str:
    """The first IPv4 address, else the first (IPv6) one, as icmplib and ping choose.
    Raises OSError when there is none."""
    if not addresses:
        raise OSError(f"{host} has no address")
    return next((address for address in addresses if ":" not in address), addresses[0])


def from_getaddrinfo(infos: Sequence[Any]) -> list[str]:
    """The address strings of a socket.getaddrinfo() answer, in its order."""
    return [str(info[4][0]) for info in infos]


def resolve(host: str) -> str:
    """Look `host` up (blocking) and pick its address; OSError when it does not resolve."""
    return pick(host, from_getaddrinfo(socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)))
