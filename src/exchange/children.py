"""Child processes that end with the process that started them.

``exchange up --workers N`` starts the mock departments as a child, ``exchange up
--federation`` the provincial platform, ``exchange load`` an exchange and Locust. A parent
stopped with Ctrl-C or SIGTERM stops its children in a ``finally``; a parent killed with
SIGKILL (or by the OOM killer) runs no ``finally``, and its children used to live on,
holding their ports, so that the next ``exchange up`` failed with "address in use". On
Linux the kernel can send a child a signal when its parent dies (``PR_SET_PDEATHSIG``):
each child asks for SIGTERM, which its own shutdown handles like a Ctrl-C. uvicorn's
worker processes (``--workers``), started by multiprocessing rather than here, ask for it
themselves when their app is built (:func:`follow_parent`).

The signal fires when the *thread* that started the child ends, so start children from a
thread that lives as long as they should (all call sites start them from the main thread).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

__all__ = ["end_with_parent", "follow_parent"]

#: prctl(2) option: the signal the kernel sends this process when its parent dies
_PR_SET_PDEATHSIG = 1


def follow_parent(parent: int) -> bool:
    """Ask the kernel to send this process SIGTERM when its parent dies; if ``parent`` has
    already died (this process was reparented meanwhile), send it now. ``False`` where the
    kernel cannot (not Linux): the caller's children then outlive a killed parent."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        return False
    # The parent may have died before prctl: then nobody would send the signal.
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)
    return True


def end_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for :class:`subprocess.Popen` that makes the child receive SIGTERM
    when the calling process dies; ``None`` (nothing to run) where the kernel cannot."""
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()

    def arrange() -> None:
        follow_parent(parent)

    return arrange
