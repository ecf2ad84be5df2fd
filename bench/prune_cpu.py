"""Who used the machine's two cores during each phase of bench/prune.py: this driver (the
webhook client), the relay, the prune process, the PostgreSQL server, and everything else
(another engineer's test run, say); and waiting for the machine to be quiet before measuring.

Read from /proc: the machine's busy time (/proc/stat) and each process's utime + stime.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass

from bench.processes import busy_cpu_seconds, postgres_cpu_seconds, proc_stat, say


def tree_cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of a live process (0 once it is gone)."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        stat = proc_stat(pid)
        return sum(int(x) for x in stat[11:15]) / os.sysconf("SC_CLK_TCK")
    return 0.0


def own_seconds(pids: tuple[int, ...]) -> float:
    """This driver, its reaped children, and the live ones in ``pids``."""
    times = os.times()
    own = times.user + times.system + times.children_user + times.children_system
    return own + sum(tree_cpu_seconds(pid) for pid in pids)


@dataclass
class CpuSample:
    at: float
    machine: float
    own: float
    relay: float
    postgres: float


@dataclass(frozen=True)
class CpuUse:
    """Cores used on average over a phase (1.0 = one core busy all the time)."""

    seconds: float
    machine: float
    relay: float
    bench: float  # the client and the prune process (this driver and its children, not relay)
    postgres: float
    others: float

    def text(self) -> str:
        return (
            f"machine {self.machine:.2f} cores: relay {self.relay:.2f}, client and prune "
            f"process {self.bench:.2f}, PostgreSQL server {self.postgres:.2f}, "
            f"other processes {self.others:.2f}"
        )


class CpuMeter:
    def __init__(self, postmaster: int | None) -> None:
        self.postmaster = postmaster

    def sample(self, relay_pid: int, live: tuple[int, ...] = ()) -> CpuSample:
        return CpuSample(
            time.monotonic(),
            busy_cpu_seconds(),
            own_seconds(live),
            tree_cpu_seconds(relay_pid),
            postgres_cpu_seconds(self.postmaster),
        )

    @staticmethod
    def between(first: CpuSample, last: CpuSample) -> CpuUse:
        span = max(last.at - first.at, 1e-9)
        machine = (last.machine - first.machine) / span
        relay = (last.relay - first.relay) / span
        bench = (last.own - first.own) / span
        postgres = (last.postgres - first.postgres) / span
        return CpuUse(
            span, machine, relay, bench, postgres, max(machine - relay - bench - postgres, 0.0)
        )

    def others_now(self, relay_pid: int = 0, seconds: float = 3.0) -> float:
        """Cores used over ``seconds`` by processes other than this run's (the PostgreSQL
        server's counted as others': nothing of this run uses it between phases)."""
        first = self.sample(relay_pid)
        time.sleep(seconds)
        last = self.sample(relay_pid)
        use = self.between(first, last)
        return use.others + use.postgres

    def wait_for_quiet(self, limit: float, relay_pid: int = 0, most: float = 0.1) -> float:
        """Wait (up to ``limit`` seconds) until other processes use under ``most`` of a core;
        returns what they used at the last look."""
        deadline = time.monotonic() + limit
        while True:
            others = self.others_now(relay_pid)
            if others < most or time.monotonic() >= deadline:
                return others
            say(f"waiting for a quiet machine: other processes use {others:.2f} cores")
            time.sleep(10)
