"""What the live tests share: a check that a test left no thread or file descriptor behind."""
from __future__ import annotations

import contextlib
import os
import threading
import time


def open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def threads() -> set[threading.Thread]:
    return set(threading.enumerate())


@contextlib.contextmanager
def no_leaks(settle: float = 1.0):
    """Fails if the block leaves a thread or descriptor that was not there before (after up to
    ``settle`` seconds for closes to land)."""
    fds_before, threads_before = open_fds(), threads()
    yield
    deadline = time.monotonic() + settle
    while True:
        new_threads = {t for t in threads() - threads_before if t.is_alive()}
        new_fds = open_fds() - fds_before
        if not new_threads and not new_fds or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not new_threads, f"threads left behind: {sorted(t.name for t in new_threads)}"
    assert not new_fds, f"file descriptors left behind: {sorted(new_fds)} " \
                        f"({[os.readlink(f'/proc/self/fd/{fd}') for fd in new_fds if os.path.exists(f'/proc/self/fd/{fd}')]})"
