"""The local Ray that a run starts ends with the run, however the run ends.

`ray.init` starts its processes under the driver: gcs_server, the raylet, the autoscaler monitor,
the dashboard head and the log monitor, and under the raylet its dashboard agent, its runtime-env
agent and the workers. When the driver is killed with SIGKILL, Ray takes most of them down (they
are bound to their parent), but not the raylet's two agents: they stay for good, under PID 1, and
they ignore SIGTERM.

`Watchdog.start` (called before `ray.init`) starts ``python -m pipeline.run.watchdog``: a small
process in a session of its own (so that a Ctrl-C at the terminal, meant for the driver, does not
reach it) that looks four times a second at the processes the driver has started since (its
descendants, noted by PID and start time, so that a reused PID is never taken for one of them).
Until `Watchdog.stop`, the driver is also a "child subreaper" (prctl(2)): a process of its Ray
whose parent dies first (an agent whose raylet was stopped in the middle of its start-up) becomes
the driver's child instead of PID 1's, and so stays in view.
When the driver is gone (SIGKILL included) or says that it is done with its Ray (`Watchdog.stop`,
after `ray.shutdown`), the watchdog sends SIGTERM to those still alive, SIGKILL to those left
`GRACE` seconds later, and exits. It looks at no other process: another Ray on the machine, or a
cluster joined with ``--address``, is never touched. Linux only (it reads /proc); elsewhere
`Watchdog.start` returns None.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PERIOD = 0.25  # seconds between two looks at the driver's processes
GRACE = 2.0  # seconds between SIGTERM and SIGKILL
PROC = Path("/proc")
PR_SET_CHILD_SUBREAPER = 36  # from <linux/prctl.h>


@dataclass(frozen=True)
class Process:
    pid: int
    ppid: int
    start: int  # clock ticks after boot: with the PID, names one process for good
    zombie: bool


def read_process(pid: int) -> Process | None:
    """The process `pid` from /proc/PID/stat, or None when there is none."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after the command name, which may hold spaces
    return Process(pid, ppid=int(fields[1]), start=int(fields[19]), zombie=fields[0] in "ZX")


def processes() -> dict[int, Process]:
    """Every process of the machine (that this user may see), by PID."""
    table = {}
    for entry in os.listdir(PROC):
        if entry.isdigit() and (process := read_process(int(entry))) is not None:
            table[process.pid] = process
    return table


def descendants(root: int, table: dict[int, Process]) -> list[Process]:
    """The children of `root` in `table`, their children, and so on."""
    children: dict[int, list[Process]] = defaultdict(list)
    for process in table.values():
        children[process.ppid].append(process)
    found: list[Process] = []
    parents = [root]
    while parents:
        for child in children.get(parents.pop(), []):
            found.append(child)
            parents.append(child.pid)
    return found


def alive(process: Process) -> bool:
    """Whether `process` still runs (a zombie does not; a new process with its PID is another one)."""
    now = read_process(process.pid)
    return now is not None and now.start == process.start and not now.zombie


def end(targets: Iterable[Process], grace: float = GRACE) -> None:
    """SIGTERM to each of `targets` still alive, then SIGKILL to those left after `grace` seconds."""
    left = [process for process in targets if alive(process)]
    deadline = time.monotonic() + grace
    for number in (signal.SIGTERM, signal.SIGKILL):
        for process in left:
            try:
                os.kill(process.pid, number)
            except OSError:  # gone meanwhile, or not ours to signal
                pass
        while left and number == signal.SIGTERM and time.monotonic() < deadline:
            time.sleep(0.1)
            left = [process for process in left if alive(process)]


def watch(driver: int, done: int, period: float = PERIOD) -> None:
    """Note the processes `driver` starts until it is gone or `done` (a pipe) ends; then end them."""
    me = read_process(os.getpid())
    since = me.start if me is not None else 0
    seen: dict[int, Process] = {}

    def look(roots: list[int]) -> None:
        table = processes()
        for root in roots:
            for process in descendants(root, table):
                if process.pid != os.getpid() and process.start >= since:
                    seen[process.pid] = process

    while os.getppid() == driver:
        look([driver])
        readable, _, _ = select.select([done], [], [], period)
        if readable and not os.read(done, 4096):
            break  # the driver closed the pipe (or died): it is done with its Ray
    roots = [process.pid for process in seen.values() if alive(process)]
    look(roots + ([driver] if os.getppid() == driver else []))  # and what was started since the last look
    end(seen.values())


class Watchdog:
    """The watchdog process of one local Ray; `stop` it after `ray.shutdown`."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process

    @classmethod
    def start(cls) -> Watchdog | None:
        """Start watching this process's children (before `ray.init`); None where there is no /proc."""
        if not (PROC / "self" / "stat").exists():
            return None
        root = str(Path(__file__).resolve().parents[2])  # where `pipeline` is, whatever the working folder
        path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
        command = [sys.executable, "-m", "pipeline.run.watchdog", str(os.getpid())]
        _adopt_orphans(True)
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, "PYTHONPATH": path},
            )
        except OSError:  # no watchdog is no reason not to run: Ray ends most of its processes itself
            _adopt_orphans(False)
            return None
        return cls(process)

    def stop(self, timeout: float = GRACE + 5.0) -> None:
        """Tell the watchdog this process is done with its Ray; wait until it has ended what is left."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:  # it is busy ending processes: it carries on by itself
            pass
        _adopt_orphans(False)


def _adopt_orphans(adopt: bool) -> None:
    """Make this process a child subreaper (or no longer one), where Linux allows it."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, int(adopt), 0, 0, 0)
    except (OSError, AttributeError):  # no prctl here: orphans go to PID 1 as usual
        pass


def main(argv: list[str]) -> None:
    """``python -m pipeline.run.watchdog DRIVER_PID``, with a pipe from the driver on stdin."""
    watch(int(argv[0]), sys.stdin.fileno())


if __name__ == "__main__":
    main(sys.argv[1:])
