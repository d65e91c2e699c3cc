"""A part started by ``epic.shared.launcher`` stops when its supervisor is gone.

The demo's parts run in their own sessions (so that Ctrl-C reaches the supervisor only, which
then stops them in order); a supervisor killed hard (SIGKILL, or a closed terminal) can stop
nothing, and its parts would go on holding their ports. So each part watches its parent: the
launcher names itself in ``EPIC_SUPERVISOR_PID``, and when the part's parent is no longer
that process it sends itself SIGTERM (its own clean stop), then SIGKILL if that has not
ended it within ``GRACE_S``.

Why not ``prctl(PR_SET_PDEATHSIG)``: it fires when the *thread* that started the child ends,
not the process, so a supervisor that starts parts from a worker thread (the benchmark's
runs) would kill healthy parts when that thread finishes; it is also Linux-only.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import MutableMapping

__all__ = ["ENV", "watch_supervisor"]

ENV = "EPIC_SUPERVISOR_PID"
POLL_S = 0.2
GRACE_S = 3.0


def watch_supervisor(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Start the watch if this process was started by a supervisor; whether it was.

    The variable is taken out of the environment: it names this process's parent only, and a
    program this part starts must not read it as its own.
    """
    value = environ.pop(ENV, None)
    if value is None:
        return False
    try:
        supervisor = int(value)
    except ValueError:
        return False
    if os.getppid() != supervisor and _alive(supervisor):
        return False  # passed down by a part that is not an `epic` command: not our parent
    thread = threading.Thread(
        target=_watch, args=(supervisor,), name="epic-supervisor-watch", daemon=True
    )
    thread.start()
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _watch(supervisor: int) -> None:
    # An orphan is adopted by init (or a subreaper): its parent id changes.
    while os.getppid() == supervisor:
        time.sleep(POLL_S)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(GRACE_S)
    os.kill(os.getpid(), signal.SIGKILL)  # its clean stop hung (say, on a broker also gone)
