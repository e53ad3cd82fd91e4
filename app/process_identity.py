"""Who a process is: a name `identity:pid:thread:incarnation` for chunk leases and uploads.

The identity is stable across restarts (RAC_JOBS__WORKER_ID, else the host name); the
incarnation is new every time a process starts. That lets a restarted worker tell, without
waiting for a lease to run out (600 s by default), which chunks were held by a dead incarnation
of itself:

* a chunk held under the same identity by a process that is gone (or is a zombie) is dead;
* so is one held under our own pid by another incarnation: a container restarted with the same
  host name (RAC_JOBS__WORKER_ID where host names change) and the same pid, e.g. 1.

A live process is never judged dead, so several workers may share one identity (`rac serve
--workers 2`, two `rac worker` on one host).

A wrong guess costs only repeated work, never a duplicate: a worker keeps a slice of labels only
while it still holds the chunk's lease, and a job writes at most one annotation per item.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from dataclasses import dataclass

INCARNATION = secrets.token_hex(4)
"""This process's incarnation: new at every start."""


@dataclass(frozen=True)
class WorkerName:
    identity: str
    pid: int
    thread: int
    incarnation: str

    def __str__(self) -> str:
        return f"{self.identity}:{self.pid}:{self.thread}:{self.incarnation}"


def default_identity() -> str:
    # Host names may hold dots and dashes but not colons (the separator).
    return socket.gethostname().replace(":", "-")[:100] or "localhost"


def worker_name(worker_id: str | None = None) -> str:
    """The name this thread of this process claims chunks under."""
    return str(WorkerName(worker_id or default_identity(), os.getpid(),
                          threading.get_ident() % 100_000, INCARNATION))


def parse(name: str | None) -> WorkerName | None:
    parts = (name or "").rsplit(":", 3)
    if len(parts) != 4 or not parts[1].isdigit() or not parts[2].isdigit():
        return None  # a name from an older version or another scheme: leave it to its lease
    return WorkerName(parts[0], int(parts[1]), int(parts[2]), parts[3])


def held_by_dead_incarnation(holder: str | None, worker_id: str | None) -> bool:
    """Whether a chunk held under `holder` belongs to a dead incarnation of this worker."""
    held = parse(holder)
    identity = worker_id or default_identity()
    if held is None or held.identity != identity or held.incarnation == INCARNATION:
        return False
    if held.pid == os.getpid():
        return True
    return not process_alive(held.pid)


def process_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this machine (a zombie does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, and not ours to judge
    except OverflowError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in (b"Z", b"X")
