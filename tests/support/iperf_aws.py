"""Stand-ins for the iperf job's world: moto's EC2 server on loopback, a port bridge into a
network namespace, and an `iperf3 -s` on loopback. Fake credentials only, set by the tests."""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from tests.support.procs import free_port, stop_process, wait_until

REGION = "eu-west-2"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}
AMI = "ami-12c6146b"  # one of moto's built-in images


@contextlib.contextmanager
def moto_ec2() -> Iterator[str]:
    """moto's server on a free loopback port; yields its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def ec2_client(endpoint: str) -> Any:
    return boto3.client("ec2", region_name=REGION, endpoint_url=endpoint,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def new_instance(client: Any, *, running: bool = False) -> str:
    reply = client.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro")
    instance_id = reply["Instances"][0]["InstanceId"]
    if not running:
        client.stop_instances(InstanceIds=[instance_id])
    return instance_id


def state(client: Any, instance_id: str) -> str:
    reply = client.describe_instances(InstanceIds=[instance_id])
    return reply["Reservations"][0]["Instances"][0]["State"]["Name"]


# --- iperf3 -----------------------------------------------------------------------------------


@contextlib.contextmanager
def iperf3_server(port: int, bind: str = "127.0.0.1") -> Iterator[subprocess.Popen[Any]]:
    proc = subprocess.Popen(["iperf3", "-s", "-B", bind, "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _accepts(bind, port), 5, 0.05, what=f"iperf3 -s on {port}")
        time.sleep(0.3)  # iperf3 resets after our empty probe connection; let it finish
        yield proc
    finally:
        stop_process(proc, 3)


def _accepts(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def child_processes(name: str) -> list[int]:
    """PIDs of this process's children whose command name is `name`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            if comm == name and ppid == os.getpid():
                found.append(int(entry.name))
    return found


# --- a loopback port inside a namespace, forwarded to the host's loopback ---------------------

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def _listen_in(ns: str) -> socket.socket:
    """A listening socket on 127.0.0.1 inside `ns`. A network namespace is per thread and a
    socket keeps the namespace it was made in, so a throwaway thread enters `ns`, makes the
    socket and goes back; the rest of the process never leaves its own namespace."""
    box: dict[str, Any] = {}

    def make() -> None:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        other = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
        try:
            _setns(other)
            try:
                sock = socket.socket()
                sock.bind(("127.0.0.1", 0))
                sock.listen(16)
                box["sock"] = sock
            finally:
                _setns(own)
        except OSError as exc:
            box["error"] = exc
        finally:
            os.close(own)
            os.close(other)

    thread = threading.Thread(target=make)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["sock"]


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def forward_into_netns(ns: str, target_port: int) -> Iterator[int]:
    """127.0.0.1:<yielded port> inside namespace `ns` reaches 127.0.0.1:target_port here (so a
    process in the namespace can use moto running in the test process)."""
    listener = _listen_in(ns)
    closing = threading.Event()

    def serve() -> None:
        while not closing.is_set():
            try:
                inner, _ = listener.accept()
            except OSError:
                return
            outer = socket.create_connection(("127.0.0.1", target_port))
            for a, b in ((inner, outer), (outer, inner)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        closing.set()
        listener.close()
