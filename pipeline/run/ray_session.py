"""Joining a Ray cluster, or starting a local Ray that ends with the run (`connect`)."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import ray

from pipeline.run.watchdog import Watchdog


def connect(address: str | None, num_cpus: int | None = None) -> Watchdog | None:
    """Join `address` (or RAY_ADDRESS), or start an embedded local Ray; reuse one already up.

    A local Ray started here comes with its `Watchdog` (returned: stop it after `ray.shutdown`), so
    that none of its processes outlives this one, even killed with SIGKILL. SIGTERM and Ctrl-C
    take effect once `ray.init` has returned (`_signals_after_start`); what the caller's handler
    raises then (KeyboardInterrupt, say) shuts down what was started, and is raised again.
    """
    if ray.is_initialized():
        return None
    target = address or os.environ.get("RAY_ADDRESS")
    if target:
        with _signals_after_start():
            ray.init(address=target, log_to_driver=False)
        return None
    watchdog = Watchdog.start()
    try:
        with _signals_after_start():
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    except BaseException:
        ray.shutdown()
        if watchdog is not None:
            watchdog.stop()
        raise
    return watchdog


@contextmanager
def _signals_after_start() -> Iterator[None]:
    """Hold SIGTERM and SIGINT while Ray starts, then hand them to the caller's handlers.

    Interrupted halfway through `ray.init` (while its driver connects), the process aborts at exit
    (SIGABRT, not the caller's exit code); and `ray.init` puts in SIGTERM handlers of its own
    (``sys.exit(15)``; for a local Ray, a drain of up to 30 s and ``sys.exit(1)``). So while it runs
    a signal is only noted (a second one is handed on at once: no waiting longer), and once it has
    returned or failed the first one noted goes to the caller's handler (for Ctrl-C, Python's:
    KeyboardInterrupt). A signal whose handler is not a Python function (SIG_DFL, SIG_IGN) is left
    alone, and so are Ray's SIGTERM handlers when the caller has none.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous: dict[int, Any] = {}

    def hold(number: int, frame: FrameType | None) -> None:
        if held:
            previous[number](number, frame)
        held.append(number)

    for kind in (signal.SIGTERM, signal.SIGINT):
        if callable(signal.getsignal(kind)):
            previous[kind] = signal.signal(kind, hold)
    utils = ray._private.utils
    install = utils.set_sigterm_handler  # what ray.init calls to put in its handlers
    if signal.SIGTERM in previous:
        utils.set_sigterm_handler = lambda handler: None
    try:
        yield
    finally:
        utils.set_sigterm_handler = install
        for number, handler in previous.items():
            signal.signal(number, handler)
        if held:
            previous[held[0]](held[0], None)
