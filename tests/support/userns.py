"""Write net.ipv4.ping_group_range the way the OCI runtime does for a container in a user
namespace (rootless Docker, userns-remap), and try an unprivileged ICMP socket there.

    python -m tests.support.userns GID VALUE [VALUE ...]   (as root) -> JSON on stdout

A child unshares a user and a network namespace; the parent writes a uid/gid map like
Docker's (65536 ids from 100000, the size `dockerd-rootless-setuptool.sh` and userns-remap's
"default" ask for). The child then writes each VALUE to the sysctl and reports what the kernel
said, and finally whether a process with group GID may open a ping socket.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import socket
import sys

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MAP = "0 100000 65536"
SYSCTL = "/proc/sys/net/ipv4/ping_group_range"


def _ping_socket(gid: int) -> str:
    os.setegid(gid)
    try:
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP).close()
        return "ok"
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc))
    finally:
        os.setegid(0)


def _child(gid: int, values: list[str]) -> dict[str, object]:
    result: dict[str, object] = {"before": _ping_socket(gid), "writes": {}}
    for value in values:
        try:
            with open(SYSCTL, "w", encoding="ascii") as handle:
                handle.write(value)
            result["writes"][value] = "ok"  # type: ignore[index]
        except OSError as exc:
            result["writes"][value] = errno.errorcode.get(exc.errno or 0, str(exc))  # type: ignore[index]
    with open(SYSCTL, encoding="ascii") as handle:
        result["range"] = handle.read().split()
    result["after"] = _ping_socket(gid)
    return result


def main(gid: int, values: list[str]) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "unshare")
            os.write(ready_w, b"1")
            os.read(go_r, 1)
            os.setresgid(0, 0, 0)
            os.write(out_w, json.dumps(_child(gid, values)).encode())
        except BaseException as exc:  # noqa: BLE001 - report anything to the parent
            os.write(out_w, json.dumps({"error": repr(exc)}).encode())
            code = 1
        os._exit(code)
    os.close(out_w)
    if not os.read(ready_r, 1):
        os.waitpid(pid, 0)
        print(os.read(out_r, 65536).decode())
        return 1
    for kind in ("uid_map", "gid_map"):
        with open(f"/proc/{pid}/{kind}", "w", encoding="ascii") as handle:
            handle.write(MAP)
    os.write(go_w, b"1")
    chunks = []
    while chunk := os.read(out_r, 65536):
        chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    print(b"".join(chunks).decode())
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), sys.argv[2:]))
