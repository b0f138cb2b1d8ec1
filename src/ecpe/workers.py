"""Local worker processes (``--jobs N``) that end with the process that started them.

A pool's workers outlive a parent killed by a signal it cannot clean up after (``kill PID``, SIGKILL, the
out-of-memory killer): each would go on training its fold, on cores the user believes free. Every worker of
:func:`process_pool` watches its parent and exits as soon as it is gone; a fold it leaves unfinished has no
``result.json`` and is trained again by the next run into the same folder."""
from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

__all__ = ["ORPHANED_EXIT", "process_pool"]

ORPHANED_EXIT = 75  # a worker's exit status when its parent is gone
WATCH_SECONDS = 1.0


def process_pool(jobs: int) -> ProcessPoolExecutor:
    """``jobs`` fresh interpreters (spawn: no state of the parent's torch threads is inherited), each ending
    within about a second of its parent's death."""
    return ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"),
                               initializer=_watch_parent, initargs=(os.getpid(), WATCH_SECONDS))


def _watch_parent(parent: int, seconds: float) -> None:
    """In a worker: a daemon thread that ends the process once ``parent`` is no longer its parent (an orphan
    is handed to another process, so its parent id changes)."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(seconds)
        os._exit(ORPHANED_EXIT)

    threading.Thread(target=watch, name="ecpe-watch-parent", daemon=True).start()
