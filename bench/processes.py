"""The processes a run starts, and what /proc says about them.

``relay serve`` is started with tests/support's :class:`RelayProcess` (clean environment,
free port, log to a file, ready once ``/readyz`` answers 200); ``relay worker``, the bare
Starlette endpoint and the VTEX stand-in are plain :class:`Proc` processes. Each is stopped by
its own pid, never by name. CPU time and peak memory are read from ``/proc``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import httpx

from bench.config import BIN, ROOT
from tests.support.relay_process import RELAY, RelayProcess, free_port


def command_output(argv: list[str], cwd: Path = ROOT) -> str:
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, check=False, timeout=30, cwd=cwd
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("RELAY_")}


class Running:
    """A process this run started: by pid, with its log file. Every one still running is in
    :attr:`all`, so that the end of the run stops it and counts its CPU time."""

    all: ClassVar[list[Running]] = []
    name: str
    log_path: Path
    started: float  # time.monotonic() at its start

    @property
    def pid(self) -> int:
        raise NotImplementedError

    def alive(self) -> bool:
        raise NotImplementedError

    def _stop(self, timeout: float) -> int | None:
        raise NotImplementedError

    def stop(self, timeout: float = 20.0) -> int | None:
        code = self._stop(timeout)
        with contextlib.suppress(ValueError):
            Running.all.remove(self)
        return code

    def status_kib(self, key: str) -> int | None:
        """A ``/proc/<pid>/status`` field in KiB (VmHWM: peak resident set)."""
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return None

    def log_problems(self) -> list[str]:
        """Log lines at error level or above (the relay logs one JSON object a line)."""
        problems = []
        with contextlib.suppress(OSError):
            for line in self.log_path.read_text(errors="replace").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    if "Traceback" in line or "ERROR" in line:
                        problems.append(line[:300])
                    continue
                if isinstance(record, dict) and record.get("level") in ("error", "critical"):
                    # The event, where, and the exception's last line (not the whole traceback).
                    exception = str(record.get("exception") or "").strip().splitlines()
                    summary = f"{record.get('logger')}: {str(record.get('event')).strip()}"
                    if record.get("path"):
                        summary += f" {record['path']}"
                    if exception:
                        summary += f" ({exception[-1]})"
                    problems.append(summary[:300])
        return problems

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


class Proc(Running):
    """A server this script started with its own argv (``relay worker``, uvicorn)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.name = name
        cwd.mkdir(parents=True, exist_ok=True)
        self.log_path = cwd / f"{name}.log"
        with self.log_path.open("ab") as log:
            self.started = time.monotonic()
            self.popen = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C of the driver reaches it through stop() only
            )
        Running.all.append(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def _stop(self, timeout: float) -> int | None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                say(f"{self.name} (pid {self.pid}) ignored SIGTERM for {timeout}s: SIGKILL")
                self.popen.kill()
                self.popen.wait(timeout=10)
        return self.popen.returncode


class Relay(Running):
    """``relay serve`` on 127.0.0.1, started by tests/support's :class:`RelayProcess` in
    ``workdir`` (so no stray .env is read); ``ready_s`` is the time from its start to the
    first 200 of ``/readyz``, asked every 5 ms."""

    def __init__(self, name: str, workdir: Path, env: dict[str, str]) -> None:
        self.name = name
        workdir.mkdir(parents=True, exist_ok=True)
        self.process = RelayProcess(workdir, env)
        self.url = self.process.url
        self.client = self.process.client  # an httpx.Client on self.url
        self.log_path = self.process.log_path
        try:
            self.process.start(ready_timeout=30.0, poll_interval=0.005)
        except BaseException:
            self.stop()
            raise
        self.started = self.process.started_at
        self.ready_s = self.process.ready_seconds
        Running.all.append(self)

    @property
    def pid(self) -> int:
        assert self.process.process is not None
        return self.process.process.pid

    def alive(self) -> bool:
        return self.process.process is not None and self.process.process.poll() is None

    def _stop(self, timeout: float) -> int | None:
        popen = self.process.process
        if popen is None:
            return None
        try:
            code: int | None = self.process.stop(timeout=timeout)
        except subprocess.TimeoutExpired:
            say(f"{self.name} (pid {self.pid}) ignored SIGTERM for {timeout}s: SIGKILL")
            popen.kill()
            code = popen.wait(timeout=10)
        self.client.close()
        return code


def relay_worker(name: str, env: dict[str, str], workdir: Path) -> Proc:
    """``relay worker`` (no HTTP port: it only delivers)."""
    return Proc(name, [str(RELAY), "worker"], env, workdir)


def wait_until_ok(proc: Running, url: str, timeout: float = 30.0) -> float:
    """Seconds from the process start to the first 200 from ``url`` (polled every 5 ms)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
            try:
                if client.get(url).status_code == 200:
                    return time.monotonic() - proc.started
            except httpx.TransportError:
                pass
            time.sleep(0.005)
    raise RuntimeError(f"{proc.name} did not answer 200 on {url} within {timeout}s:\n{proc.tail()}")


def start_uvicorn(name: str, app: str, health: str, workdir: Path) -> tuple[Proc, str]:
    """A Starlette app of bench/ (``bench.<module>:app``) under uvicorn, configured as
    ``relay serve`` runs its app (uvloop and httptools, one process) but without an access
    log."""
    port = free_port()
    argv = [str(BIN / "python"), "-m", "uvicorn", "--app-dir", str(ROOT), app]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--loop", "auto", "--http", "auto"]
    argv += ["--no-access-log", "--log-level", "warning"]
    proc = Proc(name, argv, clean_env(), workdir)
    url = f"http://127.0.0.1:{port}"
    ready = wait_until_ok(proc, url + health)
    say(f"{name}: uvicorn pid {proc.pid} ready in {ready:.2f}s")
    return proc, url


def start_standin(workdir: Path) -> tuple[Proc, str]:
    """The VTEX stand-in (bench/standin.py) in a process of its own."""
    port = free_port()
    env = clean_env() | {"PYTHONPATH": str(ROOT)}
    argv = [str(BIN / "python"), "-m", "bench.standin", str(port)]
    proc = Proc("vtex-standin", argv, env, workdir)
    url = f"http://127.0.0.1:{port}"
    ready = wait_until_ok(proc, url + "/_bench/stats")
    say(f"vtex-standin: pid {proc.pid} ready in {ready:.2f}s")
    return proc, url


# -- CPU time (/proc) -----------------------------------------------------------------------


def proc_stat(pid: int) -> list[str]:
    """``/proc/<pid>/stat`` from field 3 (state) on: field n is at index n - 3."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def parent_pid(pid: int) -> int | None:
    with contextlib.suppress(OSError, IndexError, ValueError):
        return int(proc_stat(pid)[1])
    return None


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of one process (0 if it is gone)."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        stat = proc_stat(pid)
        return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def postgres_cpu_seconds(postmaster: int | None) -> float:
    """CPU time of the whole PostgreSQL server: the postmaster with the children it has reaped
    (ended backends), plus every live child (backends, WAL writer, checkpointer...). It
    counts every client's queries, not only the relay's. 0 when the server is not local."""
    if postmaster is None:
        return 0.0
    ticks = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = proc_stat(int(entry.name))
            if int(entry.name) == postmaster or int(stat[1]) == postmaster:
                ticks += sum(int(x) for x in stat[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy since boot (/proc/stat, all cores)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU time of this driver and everything it started (waited for, or still running)."""
    times = os.times()
    total = times.user + times.system + times.children_user + times.children_system
    ticks = os.sysconf("SC_CLK_TCK")
    for proc in Running.all:
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = proc_stat(proc.pid)
            total += sum(int(x) for x in stat[11:15]) / ticks  # utime stime cutime cstime
    return total


def loadavg() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"
