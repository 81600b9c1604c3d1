"""Continuous ICMP echo: every target once per `interval`, on a fixed schedule.

One thread, one icmplib socket per address family (shared by all targets), a fixed schedule: in
slot k, the n targets take turns (at most one turn per 100 ms, so with more targets than turns
a few go out together), whether earlier requests were answered or not; a request is lost if no
reply came within `timeout`. Each decided request (answered or lost) goes to `on_probe` and
into the target's window, which the job takes every run; each decided slot (did any internet
target answer it?) goes to `on_slot`, in slot order, except that an answered slot is reported
as soon as it is read while the internet is down (`down()` returns True), so an outage ends
at its first reply, not `timeout` later. Replies carry the kernel's arrival time
(monitor/icmp_echo.py), so the thread reads them on its send and deadline wake-ups, at most
READ_EVERY later, instead of waking up for each (without kernel times: for each).

Names are looked up in the background (every `resolve_every` seconds, each look-up limited to
`timeout`); a target is probed from its first address on, and a name that does not resolve
loses every slot until it does.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import random
import selectors
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor import addresses
from monitor.errors import describe
from monitor.icmp_echo import PAYLOAD_SIZE, EchoSocket, Reply, canonical, family_of

log = logging.getLogger("monitor.jobs.latency.prober")

DRAIN = 32  # packets read per wake-up at most
MIN_STEP = 0.1  # seconds between two send wake-ups at least
# sockets with the kernel's receive times are read on the send and deadline wake-ups (and at
# least this often while requests are out) instead of waking up for every reply: a late read
# no longer changes the RTT, and a wake-up costs more than the read
READ_EVERY = 0.25
LAZY_DRAIN = 1024

SlotCallback = Callable[[int, float, float | None], None]  # (slot, sent at, first reply at)
ProbeCallback = Callable[[str, float | None], None]  # (label, RTT or None)


@dataclass(frozen=True)
class ProbeTarget:
    label: str
    host: str
    internet: bool


@dataclass
class TargetState:
    target: ProbeTarget
    index: int
    literal: bool
    address: str | None = None
    error: str | None = None
    looked_up: bool = False  # a look-up ended (or the host is a literal)
    lookup_running: bool = False
    next_lookup: float = 0.0
    # requests sent, oldest first, as [slot, RTT, decided]; decided ones move to the window
    # in sending order, so a window never skips a request that is still out
    order: collections.deque[list[Any]] = field(default_factory=collections.deque)
    window: list[tuple[int, float | None]] = field(default_factory=list)  # (slot, RTT)


@dataclass
class Slot:
    at: float  # time.time() when the slot's first request was due
    pending: int  # internet targets whose request is still out; -1: no verdict
    reply_at: float | None = None
    counted: bool = False  # an internet target took part (sent, or failed)
    complete: bool = False  # every target had its turn


def _is_literal(host: str) -> bool:
    try:
        socket.inet_pton(family_of(host), host.partition("%")[0])
    except OSError:
        return False
    return True


class Prober:
    def __init__(self, targets: Sequence[ProbeTarget], *, interval: float, timeout: float,
                 privileged: bool, resolve_every: float = 60.0,
                 on_probe: ProbeCallback | None = None, on_slot: SlotCallback | None = None,
                 down: Callable[[], bool] = lambda: False) -> None:
        self.interval = interval
        self.timeout = timeout
        self.privileged = privileged
        self.resolve_every = resolve_every
        self.on_probe = on_probe or (lambda label, rtt: None)
        self.on_slot = on_slot or (lambda slot, at, reply_at: None)
        self.down = down
        self.targets = [TargetState(target, index, _is_literal(target.host))
                        for index, target in enumerate(targets)]
        for state in self.targets:
            if state.literal:
                state.address, state.looked_up = canonical(state.target.host), True
        self.has_internet = any(target.internet for target in targets)
        self.lock = threading.Lock()  # guards the windows and the look-up results
        self.identifier = random.getrandbits(16)
        self.first_sequence = random.getrandbits(16)
        self.payload = os.urandom(PAYLOAD_SIZE)
        self.sockets: dict[int, EchoSocket] = {}
        self.socket_errors: dict[int, str] = {}
        # (family, address, sequence) -> (target index, slot, sent at, identifier on the wire)
        self.pending: dict[tuple[int, str, int], tuple[int, int, float, int]] = {}
        self.deadlines: collections.deque[tuple[float, tuple[int, str, int]]] = (
            collections.deque())
        self.slots: dict[int, Slot] = {}
        self.next_verdict = 0  # the first slot not yet handed to on_slot
        self.slots_sent = 0
        self.sending: tuple[int, Slot] | None = None
        self.selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self.selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="latency-prober", daemon=True)

    # --- control (any thread) ------------------------------------------------------------

    def start(self) -> None:
        self.thread.start()

    def stop(self, wait: float = 2.0) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self.thread.is_alive():
            self.thread.join(wait)

    def take(self) -> list[tuple[TargetState, list[tuple[int, float | None]]]]:
        """Every target's decided requests since the previous call, in sending order."""
        with self.lock:
            taken = []
            for state in self.targets:
                window, state.window = state.window, []
                taken.append((state, window))
            return taken

    def decided(self) -> list[int]:
        with self.lock:
            return [len(state.window) for state in self.targets]

    # --- the probing thread --------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except Exception:  # logged; the job's next run fails with "the prober stopped"
            log.exception("latency prober failed")
            raise
        finally:
            for echo in self.sockets.values():
                echo.close()
            self.selector.close()
            self._wake_r.close()
            self._wake_w.close()

    def _loop(self) -> None:
        # the targets take turns, `interval / n` apart: a burst of requests would make the
        # replies to the first ones wait for the sends of the others (RTT too high)
        count = len(self.targets)
        # at most one send wake-up per MIN_STEP: with many targets they go out in small groups
        # (a group of a few requests takes tens of microseconds, far below any real RTT)
        turns = min(count, max(1, int(self.interval / MIN_STEP)))
        start = time.monotonic()

        def due(turn: int) -> float:
            slot, index = divmod(turn, count)
            return start + (slot + index * turns // count / turns) * self.interval

        turn = 0  # slot x count + target index
        next_send = start
        while not self._stop.is_set():
            now = time.monotonic()
            self._lookups(now)
            while next_send <= now:  # every request that is due (a busy machine: all at once)
                slot, index = divmod(turn, count)
                self._send(slot, index)
                turn += 1
                next_send = due(turn)
                if next_send < now - self.interval:  # a whole slot behind (suspend): skip
                    turn = (int((now - start) / self.interval) + 1) * count
                    next_send = due(turn)
                    self._complete(slot)
            for echo in self.sockets.values():
                if echo.kernel_time:  # before _expire: a reply in the buffer is not lost
                    for reply in echo.receive_all(LAZY_DRAIN):
                        self._match(echo, reply)
            self._expire(now)
            wake = next_send
            while self.deadlines and self.deadlines[0][1] not in self.pending:
                self.deadlines.popleft()  # answered: no need to wake up for its deadline
            if self.deadlines:
                wake = min(wake, self.deadlines[0][0], time.monotonic() + READ_EVERY)
            for key, _ in self.selector.select(max(0.0, wake - time.monotonic())):
                if key.data is None:
                    with contextlib.suppress(OSError):
                        self._wake_r.recv(64)
                    continue
                ready: EchoSocket = key.data
                for reply in ready.receive_all(DRAIN):
                    self._match(ready, reply)

    def _socket(self, family: int) -> EchoSocket:
        echo = self.sockets.get(family)
        if echo is None:
            if family in self.socket_errors:
                raise OSError(self.socket_errors[family])
            try:
                echo = EchoSocket(family, self.privileged)
            except OSError as exc:
                self.socket_errors[family] = describe(exc)
                raise OSError(self.socket_errors[family]) from None
            self.sockets[family] = echo
            if not echo.kernel_time:  # else read on the loop's own wake-ups
                self.selector.register(echo.fileno, selectors.EVENT_READ, echo)
        return echo

    def _send(self, slot: int, index: int) -> None:
        """Target `index`'s request of `slot`."""
        if index == 0:
            self.sending = (slot, Slot(time.time(), 0))
            self.slots[slot] = self.sending[1]
            self.slots_sent = slot + 1
        # the slot's record, even once its verdict is out (a reply came before every target
        # had its turn); None if the prober skipped this slot's start
        verdict = self.sending[1] if self.sending and self.sending[0] == slot else None
        state = self.targets[index]
        if verdict is not None and state.looked_up:  # else: first look-up still running
            self._request(state, slot, verdict)
        if index == len(self.targets) - 1:
            self._complete(slot)

    def _request(self, state: TargetState, slot: int, verdict: Slot) -> None:
        internet = state.target.internet
        verdict.counted = verdict.counted or internet
        address = state.address
        state.order.append([slot, None, False])
        if address is None:
            self._decide(state, slot, None)
            return
        family = family_of(address)
        # one sequence number per request, so two targets with the same address (two names for
        # one host) still tell their replies apart
        sequence = (self.first_sequence + slot * len(self.targets) + state.index) & 0xFFFF
        try:
            sent_at, identifier = self._socket(family).send(address, self.identifier,
                                                            sequence, self.payload)
        except OSError as exc:
            with self.lock:
                state.error = str(exc)
            self._decide(state, slot, None)
            return
        key = (family, address, sequence)
        self.pending[key] = (state.index, slot, sent_at, identifier)
        self.deadlines.append((time.monotonic() + self.timeout, key))
        verdict.pending += int(internet)

    def _complete(self, slot: int) -> None:
        """Every target had its turn in `slot` (or was skipped)."""
        verdict = self.slots.get(slot)
        if verdict is None:
            return
        verdict.complete = True
        # a slot no internet target took part in (none configured, or all still being looked
        # up) has no verdict
        if not (self.has_internet and verdict.counted):
            verdict.pending = -1
        self._verdicts()

    def _match(self, echo: EchoSocket, reply: Reply) -> None:
        key = (echo.family, reply.source, reply.sequence)
        request = self.pending.get(key)
        if request is None:
            return  # late, duplicate, or not ours
        index, slot, sent_at, identifier = request
        if echo.privileged and reply.identifier != identifier:
            return  # another pinger's: raw sockets see every echo reply
        del self.pending[key]
        rtt = reply.received - sent_at
        state = self.targets[index]
        if rtt < 0 or rtt > self.timeout:  # the wall clock stepped: no trustworthy RTT
            self._decide(state, slot, None)
            self._internet_decided(state, slot, None)
            return
        self._decide(state, slot, rtt)
        self._internet_decided(state, slot, reply.received)

    def _expire(self, now: float) -> None:
        while self.deadlines and self.deadlines[0][0] <= now:
            _, key = self.deadlines.popleft()
            request = self.pending.pop(key, None)
            if request is None:
                continue  # answered
            index, slot, _, _ = request
            state = self.targets[index]
            self._decide(state, slot, None)
            self._internet_decided(state, slot, None)

    def _decide(self, state: TargetState, slot: int, rtt: float | None) -> None:
        for entry in state.order:
            if entry[0] == slot:
                entry[1], entry[2] = rtt, True
                break
        if state.order[0][2]:
            with self.lock:
                while state.order and state.order[0][2]:
                    done = state.order.popleft()
                    state.window.append((done[0], done[1]))
        self.on_probe(state.target.label, rtt)

    def _internet_decided(self, state: TargetState, slot: int, reply_at: float | None) -> None:
        if not state.target.internet:
            return
        verdict = self.slots.get(slot)
        if verdict is None:
            return
        verdict.pending -= 1
        if reply_at is not None and verdict.reply_at is None:
            verdict.reply_at = reply_at
            if self.down():  # the first reply ends an outage: report it now
                self.on_slot(slot, verdict.at, reply_at)
                for old in [s for s in self.slots if s <= slot]:
                    del self.slots[old]
                self.next_verdict = max(self.next_verdict, slot + 1)
        self._verdicts()

    def _verdicts(self) -> None:
        """Hand decided slots to on_slot in order; stop at the first undecided one."""
        while self.next_verdict < self.slots_sent:
            slot = self.next_verdict
            verdict = self.slots.get(slot)
            if verdict is not None and verdict.pending >= 0:
                if verdict.reply_at is None and (verdict.pending > 0 or not verdict.complete):
                    return  # undecided: later slots wait for it
                self.on_slot(slot, verdict.at, verdict.reply_at)
            # skipped slots (the prober fell behind) and slots without verdict pass
            self.slots.pop(slot, None)
            self.next_verdict += 1

    # --- names -----------------------------------------------------------------------------

    def _lookups(self, now: float) -> None:
        for state in self.targets:
            if state.literal or state.lookup_running or now < state.next_lookup:
                continue
            state.lookup_running = True
            state.next_lookup = now + self.resolve_every
            threading.Thread(target=self._lookup, args=(state,), daemon=True,
                             name=f"latency-dns-{state.target.host}").start()

    def _lookup(self, state: TargetState) -> None:
        """getaddrinfo in a daemon thread of its own, abandoned if it hangs past `timeout`
        (a stuck resolver holds neither the probing nor the shutdown)."""
        box: dict[str, object] = {}

        def work() -> None:
            try:
                box["address"] = canonical(addresses.resolve(state.target.host))
            except (OSError, UnicodeError) as exc:  # gaierror; idna refuses e.g. "a..b"
                box["error"] = f"does not resolve: {exc}"

        worker = threading.Thread(target=work, daemon=True, name="latency-getaddrinfo")
        worker.start()
        worker.join(self.timeout)
        with self.lock:
            if "address" in box:
                state.address, state.error = str(box["address"]), None
            elif state.address is None:  # keep pinging the last good address
                state.error = str(box.get("error") or "does not resolve: no DNS answer "
                                  f"within {self.timeout:g} s")
            state.looked_up = True
            state.lookup_running = False
